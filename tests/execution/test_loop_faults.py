"""Failure modes of the running loop, driven by the simulator's fault injection and a transport
that loses executor calls: exchange downtime while running, partial fills, insufficient balance at start, and a
timeout on every call Django makes to the executor — each asserting that nothing happened twice (no second job,
no second order id, no fill booked twice) and that the order is left in a state the next beat resumes from."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from devnet.exchange.faults import Fault, FaultEvent, FaultKind
from devnet.exchange.fixtures import RunningExchange, make_ccxt
from execution import accounts, jobs, services
from execution.errors import ExecutorUnavailable
from execution.executor_client import ExecutorClient
from execution.models import ExecutionReport, LedgerPosting, MMOrder
from mrmarket.exchanges.errors import ExchangeUnavailable
from tests.execution.executor_thread import manager_of
from tests.execution.running_job import executor_reports, stop_and_check, wait

# The test executor runs no TD: its keys pass through the gate stand-in (conftest.py).
pytestmark = [pytest.mark.django_db, pytest.mark.timeout(180), pytest.mark.usefixtures("gate_stand_in")]


def account_id(sim: RunningExchange, order: MMOrder) -> str:
    creds = accounts.exchange_account_credentials(account=order.exchange_account)
    key = sim.sim.keys.get(creds.api_key)
    assert key is not None
    return key.account_id


def ccxt_for(sim: RunningExchange, order: MMOrder) -> Any:
    creds = accounts.exchange_account_credentials(account=order.exchange_account)
    return make_ccxt(sim.base_url, creds.api_key, creds.secret)


# The jobs here poll by REST; test_loop_faults_streams.py runs the same tests with the jobs on the exchange's
# streams (orders over its WebSocket API). The stream faults themselves are tests/executor/test_stream_faults.py.
EXECUTOR_STREAMS = False


def fault(sim: RunningExchange, order: MMOrder, kind: FaultKind, **fields: Any) -> Fault:
    return sim.sim.faults.add(Fault(kind=kind, account=account_id(sim, order), **fields))


def seen(sim: RunningExchange, rule: Fault) -> list[FaultEvent]:
    """The requests the simulator recorded this rule acting on, oldest first."""
    return list(sim.sim.faults.events(fault_id=rule.fault_id))


def runner_of(executor: tuple[str, dict[str, Any]], order: MMOrder) -> Any:
    return manager_of(executor[1]).get(order.job_id)


def start_quoting(order: MMOrder, executor: tuple[str, dict[str, Any]]) -> tuple[MMOrder, Any]:
    """Start the order's job and wait until it quotes both sides; the order and the executor's runner."""
    order = jobs.mm_order_start_job(order_id=order.pk)
    runner = runner_of(executor, order)
    wait(lambda: len(runner.tracker.resting()) >= 2)
    return order, runner


# --- the exchange fails while the job runs ---------------------------------------------------------------------


def test_exchange_down_while_running_holds_the_order_and_it_resumes(
    order: MMOrder, sim: RunningExchange, executor: tuple[str, dict[str, Any]]
) -> None:
    order, runner = start_quoting(order, executor)
    down = fault(sim, order, FaultKind.MAINTENANCE)  # until the test lifts it, however slow the machine
    wait(lambda: runner.status()["exchange_reachable"] is False, timeout=15)
    for _ in range(3):  # the beat keeps following the job while the exchange is away
        refused = len(seen(sim, down))
        assert jobs.mm_order_sync_job(order_id=order.pk).state == "running"
        wait(lambda n=refused: len(seen(sim, down)) > n, timeout=15)  # the executor tried again, refused
        assert runner.status()["exchange_reachable"] is False
    sim.sim.faults.remove(down.fault_id)
    wait(lambda: runner.status()["exchange_reachable"] is True and len(runner.tracker.resting()) >= 2, timeout=30)
    assert jobs.mm_order_sync_job(order_id=order.pk).state == "running"
    assert MMOrder.objects.get(pk=order.pk).transitions.filter(event="pause").count() == 0
    stop_and_check(order)


def test_partial_fills_are_booked_exactly_and_once(
    order: MMOrder, sim: RunningExchange, executor: tuple[str, dict[str, Any]]
) -> None:
    order, runner = start_quoting(order, executor)
    fault(sim, order, FaultKind.PARTIAL_FILL_ONLY, fraction=Decimal("0.3"), count=50)
    wait(lambda: any(0 < o.filled < o.amount for o in runner.tracker.orders.values()), timeout=60)
    jobs.mm_order_pull_reports(order_id=order.pk)
    jobs.mm_order_pull_reports(order_id=order.pk)  # a second pull of the same reports books nothing more
    stopped = stop_and_check(order)
    trades = ccxt_for(sim, stopped).fetch_my_trades("MMT/USDT", limit=1000)
    assert trades
    net_base = sum(
        (Decimal(str(t["amount"])) if t["side"] == "buy" else -Decimal(str(t["amount"]))) * 10**18 for t in trades
    )
    booked = sum(
        int(p.amount)
        for p in LedgerPosting.objects.filter(
            transaction__key__startswith=f"o{order.pk}-fill-",
            account=f"exchange:a{order.exchange_account_id}:free:MMT",
        )
    )
    assert booked == int(net_base), "the ledger's base position from fills is the exchange's, to the base unit"


def test_insufficient_balance_at_start_runs_what_it_can_and_never_spins(
    make_order: Callable[..., MMOrder], sim: RunningExchange, executor: tuple[str, dict[str, Any]]
) -> None:
    order = make_order({"MMT": Decimal(0), "USDT": Decimal(40)})  # no base to sell; too little quote for 200 MMT
    creates = fault(
        sim, order, FaultKind.LATENCY, endpoint="/api/v3/order", method="POST", count=1_000_000, latency_ms=0
    )
    # On the exchange's streams the creates go over its WebSocket API instead.
    ws_creates = fault(
        sim, order, FaultKind.LATENCY, endpoint="/ws-api/v3/order.place", method="WS", count=1_000_000, latency_ms=0
    )
    order = jobs.mm_order_start_job(order_id=order.pk)
    assert order.state == "running"
    runner = runner_of(executor, order)
    start = runner.ticks
    wait(lambda: runner.ticks >= start + 12, timeout=60)  # twelve passes of the job's loop (ticks or stream passes)
    sent = len(seen(sim, creates)) + len(seen(sim, ws_creates))
    assert runner.state == "running"
    orders = list(runner.tracker.orders.values())
    placed = [o for o in orders if o.exchange_order_id]
    # Never spinning: every create that went out became an order on the exchange (one may be in flight now);
    # new orders follow fills, not refusals.
    assert sent - len(placed) <= 1, f"{sent} creates sent, {len(placed)} became orders"
    assert not [o for o in orders if o.status == "rejected"], "nothing was sent that the exchange had to refuse"
    assert placed, "the side it can pay for is quoted"
    assert all(o.amount < 200 for o in placed), "orders shrank to what the account holds (200 MMT configured)"
    bought = sum((o.filled for o in orders if o.side == "buy"), Decimal(0))
    assert all(o.amount <= bought for o in placed if o.side == "sell"), "sells only of base that takers sold us"
    assert jobs.mm_order_sync_job(order_id=order.pk).state == "running"
    stop_and_check(order)


def test_an_exchange_timeout_before_the_start_changes_nothing(
    order: MMOrder, sim: RunningExchange, settings, executor: tuple[str, dict[str, Any]]
) -> None:
    """The start prices its ladder from the exchange's book: when that call times out, nothing is chosen."""
    settings.OUTBOUND_HTTP_TIMEOUT_SECONDS = 0.5
    # Every book read hangs past the client's timeout until the test lifts the rule.
    hang = sim.sim.faults.add(Fault(kind=FaultKind.HANG, endpoint="/api/v3/depth", hang_ms=2000))
    with pytest.raises(ExchangeUnavailable):
        jobs.mm_order_start_job(order_id=order.pk)
    assert seen(sim, hang), "the start's book read hung (the simulator recorded it)"
    unchanged = MMOrder.objects.get(pk=order.pk)
    assert (unchanged.state, unchanged.job_spec, unchanged.job_id) == ("deposit_confirmed", None, "")
    assert not unchanged.transitions.exists()
    settings.OUTBOUND_HTTP_TIMEOUT_SECONDS = 10
    sim.sim.faults.remove(hang.fault_id)
    started = jobs.mm_order_start_job(order_id=order.pk)
    assert started.state == "running"
    assert list(manager_of(executor[1]).jobs).count(started.job_id) == 1
    stop_and_check(started)


# --- every call to the executor times out -----------------------------------------------------------------------


class LosingTransport(httpx.BaseTransport):
    """Forwards to the executor, except for requests matching `path_part`: those time out — before reaching it
    (`hang`) or after it acted, the answer lost (`lost_answer`) — while `failures` lasts."""

    def __init__(self, path_part: str, mode: str, failures: int) -> None:
        self.inner = httpx.HTTPTransport()
        self.path_part, self.mode, self.failures = path_part, mode, failures
        self.lost = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.failures > 0 and self.path_part in request.url.raw_path.decode():
            self.failures -= 1
            self.lost += 1
            if self.mode == "lost_answer":
                self.inner.handle_request(request).read()
            raise httpx.ReadTimeout("timed out", request=request)
        return self.inner.handle_request(request)


def losing(monkeypatch: pytest.MonkeyPatch, path_part: str, mode: str, failures: int = 3) -> LosingTransport:
    transport = LosingTransport(path_part, mode, failures)

    def client_for(order: MMOrder) -> ExecutorClient:
        return ExecutorClient(order.executor_url, client=httpx.Client(transport=transport), sleep=lambda s: None)

    monkeypatch.setattr(jobs, "client_for", client_for)
    return transport


@pytest.mark.parametrize("mode", ["hang", "lost_answer"])
@pytest.mark.parametrize("call", ["/v1/health", "/v1/jobs/start", "/credentials", "/status"])
def test_a_timed_out_start_changes_nothing_and_the_retry_starts_once(
    order: MMOrder, executor: tuple[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch, call: str, mode: str
) -> None:
    transport = losing(monkeypatch, call, mode)
    with pytest.raises(ExecutorUnavailable):
        jobs.mm_order_start_job(order_id=order.pk)
    assert transport.lost == 3  # every retry of the client timed out
    order.refresh_from_db()
    assert order.state == "starting"  # recorded; the next beat resumes here
    transport.failures = 0
    started = jobs.mm_order_start_job(order_id=order.pk)
    assert started.state == "running"
    assert list(manager_of(executor[1]).jobs).count(order.job_id) == 1
    assert [t.event for t in started.transitions.all()] == ["start", "job_running"]
    stop_and_check(started)


@pytest.mark.parametrize("mode", ["hang", "lost_answer"])
def test_a_timed_out_report_pull_stores_nothing_and_the_retry_stores_each_once(
    order: MMOrder, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    order = jobs.mm_order_start_job(order_id=order.pk)
    wait(lambda: ExecutionReport.objects.filter(order=order).count() > 0 or _pull(order) > 0, timeout=40)
    before = ExecutionReport.objects.filter(order=order).count()
    wait(lambda: len(executor_reports(order)) > before, timeout=30)  # something new for the pulls to fetch
    transport = losing(monkeypatch, "/report", mode)
    with pytest.raises(ExecutorUnavailable):
        jobs.mm_order_pull_reports(order_id=order.pk)
    assert ExecutionReport.objects.filter(order=order).count() == before
    transport.failures = 0
    jobs.mm_order_pull_reports(order_id=order.pk)
    sequences = list(
        ExecutionReport.objects.filter(order=order).order_by("sequence").values_list("sequence", flat=True)
    )
    assert sequences == list(range(len(sequences)))
    stop_and_check(order)


def _pull(order: MMOrder) -> int:
    return jobs.mm_order_pull_reports(order_id=order.pk)


@pytest.mark.parametrize("mode", ["hang", "lost_answer"])
def test_a_timed_out_stop_keeps_the_job_and_the_retry_releases_it(
    order: MMOrder, sim: RunningExchange, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    order = jobs.mm_order_start_job(order_id=order.pk)
    services.mm_order_stop(order_id=order.pk)
    transport = losing(monkeypatch, "/v1/jobs/stop", mode)
    with pytest.raises(ExecutorUnavailable):
        jobs.mm_order_wind_down(order_id=order.pk)
    stopping = MMOrder.objects.get(pk=order.pk)
    assert stopping.state == "stopping"
    assert stopping.job_id == order.job_id  # not released: its orders may still rest
    transport.failures = 0
    stop_and_check(order)
