"""Network partitions around an executor, through a loopback proxy that blackholes, delays or cuts mid-run
(`tests/chaos/proxy.py`): between Django and the executor (the order's executor URL is the proxy's), and between
the executor and the exchange (the executor's exchange base URL is the proxy's). After each heal: no client order id
reached the exchange twice, every report was stored exactly once with its hash chain intact, every trade is one
booked fill, and the job is where docs/executor.md says (a partition from Django is an outage, never a lost job;
a partition from the exchange holds the job, and past `dead_man_seconds` trips its dead-man switch, which cancels
everything on the first answer, then quoting resumes)."""

# The fixtures are imported from a module of this package (a conftest here would override the matrix tests'
# own devnet): pytest takes them from the module namespace, ruff sees the arguments as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from devnet.exchange.fixtures import RunningExchange
from execution import accounts, jobs
from execution.errors import ExecutorUnavailable
from execution.models import Alert, ExecutionReport, MMOrder
from tests.chaos.proxy import Mode, Proxy, proxied
from tests.execution.conftest import gate_stand_in, make_order, sim  # noqa: F401 (fixtures)
from tests.execution.executor_thread import manager_of, running_executor
from tests.execution.running_job import executor_reports, stop_and_check, wait
from wire.reports import SignedReport, verify_chain

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.slow,
    pytest.mark.django_db,
    pytest.mark.timeout(240),
    pytest.mark.usefixtures("gate_stand_in"),
]

# The partition acts on TCP: the job polls by REST, so each exchange call is a connection the proxy sees.
STREAMS = False


def chain_intact(order: MMOrder) -> list[ExecutionReport]:
    """Every stored report of the order's job once, sequences 0..n, each signed and linked to the one before."""
    rows = list(ExecutionReport.objects.filter(order=order).order_by("job_id", "sequence"))
    by_job: dict[str, list[ExecutionReport]] = {}
    for row in rows:
        by_job.setdefault(row.job_id, []).append(row)
    for job_id, reports in by_job.items():
        assert [r.sequence for r in reports] == list(range(len(reports))), f"job {job_id}: a report lost or doubled"
        verify_chain(
            [SignedReport.from_json(json.loads(r.envelope)) for r in reports],
            signing_key=reports[0].signing_key,
        )
    return rows


def held_reports(runner: Any) -> list[SignedReport]:
    return list(runner.reporter.after(None, limit=1000)) if runner.reporter is not None else []


def venue_of(sim: RunningExchange, order: MMOrder) -> str:
    key = sim.sim.keys.get(accounts.exchange_account_credentials(account=order.exchange_account).api_key)
    assert key is not None
    return key.account_id


# --- Django ↔ executor -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def django_link(sim: RunningExchange) -> Iterator[tuple[Proxy, dict[str, Any]]]:
    holder: dict[str, Any] = {}
    with running_executor(sim.base_url, holder=holder, streams=STREAMS) as url, proxied(url) as proxy:
        holder["proxy"] = proxy
        yield proxy, holder


class TestDjangoToExecutor:
    @pytest.fixture
    def executor(self, django_link: tuple[Proxy, dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
        proxy, holder = django_link
        proxy.set(Mode.PASS)
        yield proxy.url, holder  # make_order routes the order's executor calls through the proxy
        proxy.set(Mode.PASS)

    @pytest.mark.parametrize("mode", [Mode.BLACKHOLE, Mode.CUT])
    def test_a_partition_from_django_is_an_outage_the_job_trades_on_and_nothing_is_pulled_twice(
        self,
        make_order,
        executor,
        sim: RunningExchange,
        settings,
        mode: Mode,
    ) -> None:
        proxy: Proxy = executor_proxy(executor)
        order = jobs.mm_order_start_job(order_id=make_order().pk)
        assert order.state == "running"
        manager = manager_of(executor[1])
        runner = manager.get(order.job_id)
        wait(lambda: jobs.mm_order_pull_reports(order_id=order.pk) > 0 or ExecutionReport.objects.filter(
            order=order).exists(), timeout=40)  # fmt: skip
        stored = ExecutionReport.objects.filter(order=order).count()

        settings.OUTBOUND_HTTP_TIMEOUT_SECONDS = 1.0
        proxy.set(mode)
        for _ in range(2):  # two beats meet the partition
            with pytest.raises(ExecutorUnavailable):
                jobs.mm_order_sync_job(order_id=order.pk)
        during = MMOrder.objects.get(pk=order.pk)
        # An executor that does not answer is still the one listed: no lost job, no second job, nothing paused.
        assert (during.state, during.job_id) == ("running", order.job_id)
        assert ExecutionReport.objects.filter(order=order).count() == stored
        assert runner.state == "running", "the job trades on without Django"
        # Reports pile up on the executor meanwhile (its windows are 10 s): the pull after the heal must take each.
        wait(lambda: len(held_reports(runner)) > stored, timeout=40)

        proxy.set(Mode.PASS)
        settings.OUTBOUND_HTTP_TIMEOUT_SECONDS = 10
        healed = jobs.mm_order_sync_job(order_id=order.pk)
        assert (healed.state, healed.job_id) == ("running", order.job_id)
        jobs.mm_order_pull_reports(order_id=order.pk)  # a second pull of the same page stores nothing more
        rows = chain_intact(order)
        assert len(rows) == len(executor_reports(order)), "every report the executor holds is stored once"
        assert [j for j in manager.jobs if j.startswith(f"mmo{order.pk}-")] == [order.job_id]
        assert not Alert.objects.filter(kind__in=["job_lost", "report_rejected"]).exists()
        stop_and_check(order)
        chain_intact(order)

    def test_a_slow_link_delays_the_beat_and_changes_nothing(
        self,
        make_order,
        executor,
        settings,
    ) -> None:
        proxy = executor_proxy(executor)
        order = jobs.mm_order_start_job(order_id=make_order().pk)
        proxy.set(Mode.DELAY, delay_ms=300)
        for _ in range(3):
            assert jobs.mm_order_sync_job(order_id=order.pk).state == "running"
        proxy.set(Mode.PASS)
        chain_intact(order)
        stop_and_check(order)


def executor_proxy(executor: tuple[str, dict[str, Any]]) -> Proxy:
    proxy = executor[1].get("proxy")
    assert isinstance(proxy, Proxy)
    return proxy


# --- executor ↔ exchange -----------------------------------------------------------------------------------------

DEAD_MAN_SECONDS = 2


@pytest.fixture(scope="module")
def exchange_link(sim: RunningExchange) -> Iterator[tuple[Proxy, str, dict[str, Any]]]:
    holder: dict[str, Any] = {}
    with (
        proxied(sim.base_url) as proxy,
        running_executor(proxy.url, holder=holder, streams=STREAMS, request_timeout_ms=1500) as url,
    ):
        holder["proxy"] = proxy
        yield proxy, url, holder


class TestExecutorToExchange:
    @pytest.fixture
    def executor(self, exchange_link: tuple[Proxy, str, dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
        proxy, url, holder = exchange_link
        proxy.set(Mode.PASS)
        yield url, holder  # Django talks to the executor directly, and to the exchange directly
        proxy.set(Mode.PASS)

    @pytest.mark.parametrize("mode", [Mode.BLACKHOLE, Mode.CUT])
    def test_a_partition_from_the_exchange_trips_the_dead_man_switch_and_nothing_is_placed_twice(
        self,
        make_order,
        executor,
        sim: RunningExchange,
        mode: Mode,
    ) -> None:
        proxy = executor_proxy(executor)
        made = make_order()
        strategy = {**made.strategy, "risk": {"dead_man_seconds": DEAD_MAN_SECONDS}}
        MMOrder.objects.filter(pk=made.pk).update(strategy=strategy)
        order = jobs.mm_order_start_job(order_id=made.pk)
        assert order.state == "running"
        runner = manager_of(executor[1]).get(order.job_id)
        wait(lambda: len(runner.tracker.resting()) >= 2, timeout=40)
        venue = venue_of(sim, order)
        before = {o.client_order_id for o in sim.sim.engine.open_orders(venue, "MMTUSDT")}
        assert before

        proxy.set(mode)
        wait(lambda: runner.status()["exchange_reachable"] is False, timeout=30)
        wait(lambda: runner.dead_man_tripped, timeout=30)  # unreachable past dead_man_seconds with orders live
        # Django's beat still follows the job: the executor answers, its job holds; nothing is lost or paused.
        assert jobs.mm_order_sync_job(order_id=order.pk).state == "running"

        proxy.set(Mode.PASS)
        # The first answer cancels everything the job had resting, then quoting resumes with new orders.
        wait(lambda: not runner.dead_man_tripped and runner.status()["exchange_reachable"] is True, timeout=40)
        wait(lambda: not before & {o.client_order_id for o in sim.sim.engine.open_orders(venue, "MMTUSDT")},
             timeout=20)  # fmt: skip
        wait(lambda: len(runner.tracker.resting()) >= 2, timeout=40)
        assert runner.state == "running"
        assert jobs.mm_order_sync_job(order_id=order.pk).state == "running"
        assert MMOrder.objects.get(pk=order.pk).job_id == order.job_id
        stop_and_check(order)  # no client order id twice on the exchange; each trade one booked fill
        chain_intact(order)
