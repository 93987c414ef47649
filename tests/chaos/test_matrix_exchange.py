"""The chaos matrix, exchange side (1): every simulator fault that can meet a step of an MM order's job — the job's
start (Django reads the book to price it), the credentials (the executor's first calls with the key), running, the
stop (cancels) and the report pull — on one executor quoting on the exchange's streams, as in production.

Each fault is a rule of the simulator's registry, scoped to the order's own account where the step uses it (so the
market's takers are not affected), and the test waits for the simulator to have recorded the fault acting instead
of sleeping through it. After each: no client order id reached the exchange twice, nothing rests after the stop,
every report is stored once, every trade on the exchange is one booked fill, the ledger balances and holds what the
exchange holds, and the order went on by itself once the fault was lifted (docs/reliability.md, section 1)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from devnet.exchange.faults import Fault, FaultKind
from devnet.exchange.fixtures import RunningExchange
from execution import jobs, services
from execution.executor_client import ExecutorClient
from execution.models import ExecutionReport, MMOrder
from mrmarket.exchanges.errors import ExchangeUnavailable
from tests.chaos import invariants
from tests.execution import conftest as execution_fixtures
from tests.execution.executor_thread import manager_of
from tests.execution.running_job import executor_reports, stop_and_check, wait
from tests.execution.test_loop_faults import account_id, runner_of, seen, start_quoting

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.slow,
    pytest.mark.django_db,
    pytest.mark.timeout(180),
    pytest.mark.usefixtures("gate_stand_in"),
]

# The job half's own fixtures (tests/execution/conftest.py): the simulator with its market, one executor (on the
# exchange's streams), the gate stand-in, and orders whose deposit is confirmed.
sim, executor, gate_stand_in, make_order, order = (
    execution_fixtures.sim,
    execution_fixtures.executor,
    execution_fixtures.gate_stand_in,
    execution_fixtures.make_order,
    execution_fixtures.order,
)
SYMBOL = "MMT/USDT"

# The request faults, as each answers: held past the client's timeout, refused by a load balancer, rate limited
# with Retry-After, under maintenance; a slow answer (within the timeout) is the fifth.
REQUEST_FAULTS: dict[str, dict[str, Any]] = {
    "latency": {"kind": FaultKind.LATENCY, "latency_ms": 700},
    "hang": {"kind": FaultKind.HANG, "hang_ms": 2_500},
    "5xx": {"kind": FaultKind.HTTP_5XX, "status": 502},
    "429": {"kind": FaultKind.RATE_LIMIT, "retry_after": 1},
    "maintenance": {"kind": FaultKind.MAINTENANCE},
}
STREAM_FAULTS: dict[str, dict[str, Any]] = {
    "disconnect": {"kind": FaultKind.STREAM_DISCONNECT, "endpoint": "/ws*", "count": 4},
    "stall": {"kind": FaultKind.STREAM_STALL, "endpoint": "/ws*"},
    "drop": {"kind": FaultKind.STREAM_DROP, "endpoint": "/ws*", "event": "executionReport", "count": 3},
    "delay": {"kind": FaultKind.STREAM_DELAY, "endpoint": "/ws*", "latency_ms": 1_500},
    "gap": {"kind": FaultKind.STREAM_GAP, "endpoint": "/ws*", "symbol": "MMTUSDT", "count": 1},
    "expire": {"kind": FaultKind.STREAM_EXPIRE, "endpoint": "/ws*", "count": 1},
}


def add(sim: RunningExchange, fields: dict[str, Any], *, account: str | None = None, **more: Any) -> Fault:
    return sim.sim.faults.add(Fault(**{**fields, **more}, account=account))


def lift(sim: RunningExchange, rule: Fault) -> None:
    sim.sim.faults.remove(rule.fault_id)  # a counting rule may have removed itself already


def acted(sim: RunningExchange, rule: Fault, times: int = 1, timeout: float = 30) -> None:
    wait(lambda: len(seen(sim, rule)) >= times, timeout=timeout)


def settled_once(order: MMOrder) -> MMOrder:
    """The common ending: the order stops by itself (the beat's wind-down), and every invariant holds."""
    try:
        stopped = stop_and_check(order)  # nothing rests, client ids once, reports once, every trade one fill
    except pytest.fail.Exception:
        now = MMOrder.objects.get(pk=order.pk)
        with ExecutorClient(now.executor_url) as client:
            status = client.status(now.job_id) if now.job_id else None
        pytest.fail(f"the order did not wind down: {now.state} {now.job_id!r} {status}")
    invariants.assert_ledger_balanced()
    invariants.assert_no_duplicates([stopped])
    invariants.assert_exchange_orders_once(stopped.exchange_account, SYMBOL)
    invariants.assert_exchange_agrees(stopped.exchange_account)
    return stopped


def quoting_again(runner: Any, timeout: float = 40) -> None:
    """The job is back: the exchange answers its own calls, and both sides are quoted."""
    try:
        wait(lambda: runner.status()["exchange_reachable"] is True and len(runner.tracker.resting()) >= 2, timeout)
    except pytest.fail.Exception:
        pytest.fail(f"the job is not quoting again: {runner.state} {runner.reason!r} {runner.status()}")


# ---------------------------------------------------------------------------------------------- job start


@pytest.mark.parametrize("fault", list(REQUEST_FAULTS))
def test_job_start_x_request_fault(
    order: MMOrder, sim: RunningExchange, settings, executor: tuple[str, dict[str, Any]], fault: str
) -> None:
    """The start prices its ladder from the exchange's book: a failing read chooses nothing and starts nothing; a
    slow one starts once. The next beat starts it once."""
    settings.OUTBOUND_HTTP_TIMEOUT_SECONDS = 1.5
    rule = add(sim, REQUEST_FAULTS[fault], endpoint="/api/v3/depth", count=1_000)
    if fault == "latency":
        started = jobs.mm_order_start_job(order_id=order.pk)
    else:
        with pytest.raises(ExchangeUnavailable):
            jobs.mm_order_start_job(order_id=order.pk)
        unchanged = MMOrder.objects.get(pk=order.pk)
        assert (unchanged.state, unchanged.job_spec, unchanged.job_id) == ("deposit_confirmed", None, "")
        assert not unchanged.transitions.exists()
        lift(sim, rule)
        started = jobs.mm_order_start_job(order_id=order.pk)
    assert seen(sim, rule), "the fault acted on the start's book read"
    lift(sim, rule)
    assert started.state == "running"
    assert list(manager_of(executor[1]).jobs).count(started.job_id) == 1
    assert [t.event for t in started.transitions.all()] == ["start", "job_running"]
    settled_once(started)


# ---------------------------------------------------------------------------------------------- credentials


@pytest.mark.parametrize("fault", list(REQUEST_FAULTS))
def test_credentials_x_request_fault(
    order: MMOrder, sim: RunningExchange, executor: tuple[str, dict[str, Any]], fault: str
) -> None:
    """The credentials reach the executor while its first calls with the key (balances, open orders) fail: the job
    waits, quoting nothing it cannot account for, and quotes once the exchange answers."""
    rule = add(sim, REQUEST_FAULTS[fault], account=account_id(sim, order))
    order = jobs.mm_order_start_job(order_id=order.pk)
    assert order.state == "running"  # the executor holds the job (it starts when the exchange answers)
    runner = runner_of(executor, order)
    acted(sim, rule, times=2)
    if fault != "latency":
        assert not runner.tracker.resting(), "nothing quoted while the account's own calls fail"
    lift(sim, rule)
    quoting_again(runner)
    assert jobs.mm_order_sync_job(order_id=order.pk).state == "running"
    settled_once(order)


# ---------------------------------------------------------------------------------------------- running


@pytest.mark.parametrize("fault", list(REQUEST_FAULTS))
def test_running_x_request_fault(
    order: MMOrder, sim: RunningExchange, executor: tuple[str, dict[str, Any]], fault: str
) -> None:
    order, runner = start_quoting(order, executor)
    rule = add(sim, REQUEST_FAULTS[fault], account=account_id(sim, order))
    acted(sim, rule, times=2)
    for _ in range(2):  # the beat keeps following the job while the exchange misbehaves
        assert jobs.mm_order_sync_job(order_id=order.pk).state == "running"
    lift(sim, rule)
    quoting_again(runner)
    assert MMOrder.objects.get(pk=order.pk).transitions.filter(event="pause").count() == 0
    settled_once(order)


def test_running_x_partial_fill_only(
    order: MMOrder, sim: RunningExchange, executor: tuple[str, dict[str, Any]]
) -> None:
    order, runner = start_quoting(order, executor)
    rule = add(sim, {"kind": FaultKind.PARTIAL_FILL_ONLY}, account=account_id(sim, order), fraction=Decimal("0.3"))
    wait(lambda: any(0 < o.filled < o.amount for o in runner.tracker.orders.values()), timeout=60)
    jobs.mm_order_pull_reports(order_id=order.pk)
    jobs.mm_order_pull_reports(order_id=order.pk)  # the same reports pulled twice book nothing more
    lift(sim, rule)
    settled_once(order)


def test_running_x_insufficient_balance(
    order: MMOrder, sim: RunningExchange, executor: tuple[str, dict[str, Any]]
) -> None:
    """The exchange refuses the job's new orders for balance while it runs: it keeps running, and quotes again
    once they are accepted."""
    order, runner = start_quoting(order, executor)
    rule = add(sim, {"kind": FaultKind.INSUFFICIENT_BALANCE}, account=account_id(sim, order))
    wait(lambda: any(o.status == "rejected" for o in runner.tracker.orders.values()), timeout=60)
    assert jobs.mm_order_sync_job(order_id=order.pk).state == "running"
    lift(sim, rule)
    quoting_again(runner, timeout=60)
    settled_once(order)


@pytest.mark.parametrize("mode", ["hang", "5xx"])
def test_running_x_lost_cancel_ack(
    order: MMOrder, sim: RunningExchange, executor: tuple[str, dict[str, Any]], mode: str
) -> None:
    """The job's cancels (its requotes) happen on the exchange but their answers are lost: it finds out what
    became of each order instead of cancelling or placing twice, and every fill is booked once."""
    strategy = {**order.strategy, "params": {**order.strategy["params"], "max_order_age_seconds": 1}}
    MMOrder.objects.filter(pk=order.pk).update(strategy=strategy)  # its orders are replaced every second
    order, runner = start_quoting(MMOrder.objects.get(pk=order.pk), executor)
    fields = {"kind": FaultKind.LOST_CANCEL_ACK, "mode": mode, "hang_ms": 2_000}
    rule = add(sim, fields, account=account_id(sim, order), count=2)
    acted(sim, rule, times=2, timeout=30)
    quoting_again(runner)
    assert jobs.mm_order_sync_job(order_id=order.pk).state == "running"
    settled_once(order)


@pytest.mark.parametrize("fault", list(STREAM_FAULTS))
def test_running_x_stream_fault(
    order: MMOrder, sim: RunningExchange, executor: tuple[str, dict[str, Any]], fault: str
) -> None:
    """The job's streams fail under it: it falls back to polling or resynchronises, keeps quoting, and every fill
    is booked once whichever path delivered it."""
    order, runner = start_quoting(order, executor)
    wait(lambda: runner.feed is not None and runner.feed.live, timeout=30)
    scoped = {} if fault == "gap" else {"account": account_id(sim, order)}
    rule = add(sim, STREAM_FAULTS[fault], **scoped)
    acted(sim, rule)
    lift(sim, rule)
    wait(lambda: runner.feed is not None and runner.feed.live, timeout=40)
    quoting_again(runner)
    assert jobs.mm_order_sync_job(order_id=order.pk).state == "running"
    settled_once(order)


# ---------------------------------------------------------------------------------------------- stop


STOP_FAULTS: dict[str, dict[str, Any]] = dict(REQUEST_FAULTS)


@pytest.mark.parametrize("fault", list(STOP_FAULTS))
def test_stop_x_fault(order: MMOrder, sim: RunningExchange, executor: tuple[str, dict[str, Any]], fault: str) -> None:
    """The stop's cancels fail, or happen with their answers lost: the order is not released while anything may
    rest, nothing is cancelled twice into a second order, and the wind-down completes once the exchange answers."""
    order, _ = start_quoting(order, executor)
    rule = add(sim, STOP_FAULTS[fault], account=account_id(sim, order))
    services.mm_order_stop(order_id=order.pk)
    acted(sim, rule)
    held = jobs.mm_order_wind_down(order_id=order.pk)
    assert held.state == "stopping"
    lift(sim, rule)
    settled_once(order)


# ---------------------------------------------------------------------------------------------- report pull


def test_report_pull_x_exchange_down(
    order: MMOrder, sim: RunningExchange, executor: tuple[str, dict[str, Any]]
) -> None:
    """The pull asks the executor, never the exchange: while the account's exchange is down the reports the job
    signs (saying so) are pulled and stored once, and the pulls after it store each new one once."""
    order, runner = start_quoting(order, executor)
    rule = add(sim, REQUEST_FAULTS["maintenance"], account=account_id(sim, order))
    acted(sim, rule, times=2)
    before = ExecutionReport.objects.filter(order=order).count()
    wait(lambda: len(executor_reports(order)) > before, timeout=40)
    for _ in range(2):
        jobs.mm_order_pull_reports(order_id=order.pk)
    assert ExecutionReport.objects.filter(order=order).count() > before
    invariants.assert_no_duplicates([order])
    lift(sim, rule)
    quoting_again(runner)
    settled_once(order)
