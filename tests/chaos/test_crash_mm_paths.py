"""A worker killed (SIGKILL) at the MM order's transitions off its happy path, each reached the way the product
reaches it, just before it is written and just after it committed (tests/chaos/crash_driver.py); then the system
does what it does after a worker died (the beats, Celery redelivering the task, the operator asking again) and
the order either went on by itself or is parked with an open alert, with every step once and nothing twice.

- `pause` (running → paused): the exchange withdrew the key's right to trade, the job fails on the executor, and
  the sync_jobs beat pauses the order with an alert; then the operator's stop of the paused order (paused → stopping)
  and the wind-down.
- `job_lost` (running → starting): the executor forgot the job (restarted, as tests/execution/test_job_lost.py loses
  it); the beat records it lost and starts a successor (its `job_running`).
- withdrawal `refused` (requesting → failed): the exchange refuses the withdraw-back's request for balance (the
  simulator's fault); the operator asks again.
- withdrawal `failed` (sent → failed), the order's `fail` (withdrawing_back → failed, its funds back on the
  exchange) and the operator's stop of the failed order (failed → stopping): the exchange accepts the withdrawal and
  then fails it (refunded); the operator stops the order again and asks for the withdraw-back again.
- the order's `fail` on the way out (withdrawing_to_exchange → failed): the custody wallet's tokens left it on
  chain, so the order's transfer reverts and the track_deposits beat books the funds back into custody. The order
  is left failed with its reason and its `mm_order_failed` alert, committed with the failure.

`resume` and `refund` are not here: no product code applies them (no service, API, admin action or task does; only
the state machine lists them), so no real path reaches them. Nor is reconciliation's pause: it pauses running
orders of a mismatched account, but an account with a job (every running order has one) is never reconciled. Nor
is `fail` at a job's start (the executor refusing the job, or reporting it ended): the test executor refuses only a
spec or market it cannot run, which a real order's spec never is, and the devnet cannot delist a market."""

# The fixtures are imported from a module of this package (a conftest here would override the matrix tests' own
# devnet): pytest takes them from the module namespace, ruff sees the arguments as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from eth_typing import HexStr
from web3 import Web3

from devnet.chain import dev_accounts, token, transfer
from devnet.exchange.faults import Fault, FaultKind
from devnet.exchange.fixtures import RunningExchange
from devnet.exchange.funds import WithdrawStatus
from devnet.exchange.keys import Permission
from execution import accounts, alert_rules, homeward, jobs, operations, outbound, selectors, services
from execution.domain import mm_order as mm
from execution.domain import withdrawal as wd
from execution.domain.ledger import asset_totals
from execution.executor_client import ExecutorClient
from execution.models import Alert, CustodyTransfer, ExchangeWithdrawal, MMOrder
from executor.engine.runner import TERMINAL
from mrmarket.exchanges.credentials import ExchangeCredentials
from tests.chaos import invariants
from tests.chaos.crash_fixtures import (  # noqa: F401 (fixtures)
    CUSTODY,
    CUSTODY_SEED,
    FUNDING,
    Flow,
    anvil,
    flow,
    sim,
    usdt,
    w3,
)
from tests.chaos.crash_invariants import resume_money_flow, wait
from tests.chaos.driver_plugin import Driver, DriverRun
from tests.execution.conftest import BALANCES, gate_stand_in  # noqa: F401 (fixtures)
from tests.execution.executor_thread import manager_of, running_executor
from tests.execution.gate_stand_in import GateStandIn
from tests.executor.harness import live_exchange
from tests.factories import user_with
from tests.fixtures.orders import deposited_order
from tests.plugins.require import require_postgresql

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(240),
]

APPLY = "/sapi/v1/capital/withdraw/apply"
JOB_SETTINGS = ["EXCHANGE_API_URLS", "EXECUTOR_URLS", "CUSTODY_ASSETS", "CHAIN_RPC_URL"]

# Each flow's transitions in the order the worker applies them (its census checks them), and the ones killed at:
# those no other crash test kills at (the rest are test_crash_mm_order.py's and test_crash_mm_job.py's).
PAUSED = [("mm_order", "pause"), ("mm_order", "stop")]
LOST = [("mm_order", "job_lost"), ("mm_order", "job_running")]
REFUSED = [
    ("withdrawal", "refused"),
    ("withdrawal", "accepted"),
    ("mm_order", "orders_settled"),
    ("withdrawal", "arrived"),
    ("mm_order", "withdrawal_arrived"),
]
FAILED = [
    ("withdrawal", "accepted"),
    ("mm_order", "orders_settled"),
    ("withdrawal", "failed"),
    ("mm_order", "fail"),
    ("mm_order", "stop"),
    ("withdrawal", "accepted"),
    ("mm_order", "orders_settled"),
    ("withdrawal", "arrived"),
    ("mm_order", "withdrawal_arrived"),
]
FAILED_KILLS = {"withdrawal-failed": 3, "mm_order-fail": 4, "mm_order-stop-of-failed": 5}


def _killed_at(run: DriverRun, transitions: list[tuple[str, str]], kill_at: int) -> None:
    assert run.killed, f"the driver was not killed (rc {run.returncode}): {run.output}"
    last = run.steps[-1]
    assert (last["machine"], last["event"]) == transitions[kill_at - 1]


def _census(run: DriverRun, transitions: list[tuple[str, str]]) -> None:
    assert run.returncode == 0, run.output
    assert run.done, run.output
    assert [(s["machine"], s["event"]) for s in run.steps] == transitions


# ------------------------------------------------------------------------------------------ the job leg


@pytest.fixture(scope="module")
def market() -> Iterator[RunningExchange]:
    """The job tests' simulator, with its market of takers (tests/execution/conftest.py's `sim`)."""
    with live_exchange() as ex:
        yield ex


@pytest.fixture(scope="module")
def job_executor(market: RunningExchange) -> Iterator[tuple[str, dict[str, Any]]]:
    """One executor for the module, its jobs polling the simulator by REST (as test_crash_mm_job.py's)."""
    holder: dict[str, Any] = {}
    with running_executor(market.base_url, holder=holder, streams=False) as url:
        yield url, holder


def _deposited(settings: Any, market: RunningExchange, job_executor: tuple[str, dict[str, Any]]) -> MMOrder:
    """An order whose deposit is confirmed (tests/execution/conftest.py's `make_order`), on a key of its own that
    may trade, the settings pointing at the module's simulator and executor."""
    settings.EXCHANGE_API_URLS = {"binance": market.base_url}
    settings.EXECUTOR_URLS = [job_executor[0]]
    settings.CUSTODY_ASSETS = {
        "USDT": {"token": "0x" + "ab" * 20, "decimals": 6},
        "MMT": {"token": "0x" + "cd" * 20, "decimals": 18},
    }
    key = market.sim.create_account(permissions=frozenset({Permission.TRADE}), balances=dict(BALANCES))
    account = accounts.exchange_account_enrol(
        owner_id=user_with().pk, exchange="binance", label="mm", role="trading",
        credentials=ExchangeCredentials(key.key, key.secret),
    )  # fmt: skip
    holdings = {"MMT": int(BALANCES["MMT"] * 10**18), "USDT": int(BALANCES["USDT"] * 10**6)}
    return deposited_order(account, funding_amount=1_000 * 10**6, holdings=holdings)


@pytest.fixture
def running(
    settings: Any, market: RunningExchange, job_executor: tuple[str, dict[str, Any]], gate_stand_in: GateStandIn
) -> Iterator[MMOrder]:
    """An order whose deposit is confirmed (tests/execution/conftest.py's `make_order`), started by the drive_jobs
    beat in this process: running its job on the executor."""
    order = _deposited(settings, market, job_executor)
    started = jobs.mm_order_start_job(order_id=order.pk)
    assert started.state == mm.State.RUNNING, started.failure_reason
    yield started
    # A case that failed half-way leaves a job quoting on the shared executor: stop it.
    for job_id in {started.job_id, MMOrder.objects.get(pk=order.pk).job_id} - {""}:
        with contextlib.suppress(Exception), ExecutorClient(job_executor[0]) as client:
            client.stop(job_id)


def _job_settings(settings: Any) -> dict[str, Any]:
    return json.loads(json.dumps({name: getattr(settings, name) for name in JOB_SETTINGS}))


def _timeline(order_id: int) -> list[str]:
    return list(MMOrder.objects.get(pk=order_id).transitions.order_by("pk").values_list("event", flat=True))


def _beats(order_id: int, stand_in: GateStandIn, done: Callable[[], bool], what: str) -> None:
    """The drive_jobs and sync_jobs beats (start_job while deposit_confirmed or starting, sync_job while running or
    paused, wind_down while stopping with a job) until `done`."""

    def tick() -> None:
        order = MMOrder.objects.get(pk=order_id)
        if order.executor_signing_key:  # what the worker's provisioning vouched for, in its own process
            stand_in.vouch(order.executor_signing_key, url=order.executor_url)
        if order.state in (mm.State.DEPOSIT_CONFIRMED, mm.State.STARTING):
            jobs.mm_order_start_job(order_id=order_id)
        elif order.state in (mm.State.RUNNING, mm.State.PAUSED):
            jobs.mm_order_sync_job(order_id=order_id)
        elif order.state == mm.State.STOPPING and order.job_id:
            jobs.mm_order_wind_down(order_id=order_id)

    wait(done, what, 90, tick)


def _stopped_and_released(order_id: int, stand_in: GateStandIn) -> MMOrder:
    """The operator's stop (asked again if the worker died in it), then the beats until the job is released."""
    if MMOrder.objects.get(pk=order_id).state in (mm.State.RUNNING, mm.State.PAUSED):
        services.mm_order_stop(order_id=order_id)

    def released() -> bool:
        order = MMOrder.objects.get(pk=order_id)
        return order.state == mm.State.STOPPING and order.job_id == ""

    _beats(order_id, stand_in, released, "the job stopped and released")
    return MMOrder.objects.get(pk=order_id)


def _refuse_trading(market: RunningExchange, order: MMOrder, executor: tuple[str, dict[str, Any]]) -> None:
    """The fault: the exchange no longer lets the key trade (its owner changed the key's rights there); the job
    fails on the executor at its next order (the key refused), which the executor reports."""
    key = accounts.exchange_account_credentials(account=order.exchange_account).api_key
    market.sim.keys.update_permissions(key, frozenset())
    job = manager_of(executor[1]).jobs[order.job_id]
    wait(lambda: job.state in TERMINAL, "the job failed on the refused key", 60)
    assert str(job.state) == "failed", (job.state, job.reason)


def _paused_run(driver: Driver, settings: Any, order: MMOrder, kill_at: int, when: str) -> DriverRun:
    return driver.run("mm_job_paused", kill_at, when, settings=_job_settings(settings), args={"order": order.pk})


def _check_paused(order_id: int, job_id: str, stand_in: GateStandIn, executor: tuple[str, dict[str, Any]]) -> None:
    order = MMOrder.objects.get(pk=order_id)
    if order.state == mm.State.RUNNING:
        # Killed before the pause: the sync_jobs beat finds the job ended and pauses it.
        _beats(order_id, stand_in, lambda: MMOrder.objects.get(pk=order_id).state != mm.State.RUNNING, "the pause")
    state = MMOrder.objects.get(pk=order_id).state
    if state == mm.State.PAUSED:
        assert invariants.assert_resumed_or_parked(state, resumed=[], parked={"paused": "job_failed"}) == "parked"
    stopped = _stopped_and_released(order_id, stand_in)
    assert _timeline(order_id) == ["start", "job_running", "pause", "stop"]
    assert [a.detail["job_id"] for a in invariants.open_alerts("job_failed")] == [job_id]  # alerted once
    assert [j for j in manager_of(executor[1]).jobs if j.startswith(f"mmo{order_id}-")] == [job_id], "a second job"
    # The job failed on a key that could no longer cancel: what it left on the book rests (the exchange's to see).
    invariants.assert_exchange_orders_once(stopped.exchange_account, "MMT/USDT", open_allowed=True)
    invariants.assert_no_duplicates([stopped])
    invariants.assert_ledger_balanced()


def test_the_census_of_a_paused_job(
    crash_driver: Driver,
    running: MMOrder,
    market: RunningExchange,
    job_executor: tuple[str, dict[str, Any]],
    gate_stand_in: GateStandIn,
    settings: Any,
) -> None:
    require_postgresql("the driver and the test share one database across processes")
    _refuse_trading(market, running, job_executor)
    _census(_paused_run(crash_driver, settings, running, 0, "after"), PAUSED)
    _check_paused(running.pk, running.job_id, gate_stand_in, job_executor)


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("kill_at", range(1, len(PAUSED) + 1), ids=["pause", "stop-of-paused"])
def test_a_worker_killed_at_a_pause_resumes_parked_and_stops_once(
    crash_driver: Driver,
    running: MMOrder,
    market: RunningExchange,
    job_executor: tuple[str, dict[str, Any]],
    gate_stand_in: GateStandIn,
    settings: Any,
    kill_at: int,
    when: str,
) -> None:
    require_postgresql("the driver and the test share one database across processes")
    _refuse_trading(market, running, job_executor)
    run = _paused_run(crash_driver, settings, running, kill_at, when)
    _killed_at(run, PAUSED, kill_at)
    done = [event for _, event in PAUSED[: kill_at if when == "after" else kill_at - 1]]
    assert _timeline(running.pk) == ["start", "job_running", *done]
    _check_paused(running.pk, running.job_id, gate_stand_in, job_executor)


SPEC_REFUSED = [("mm_order", "start"), ("mm_order", "fail")]
# An order stored before a bound was tightened: its strategy no longer makes a spec the executor accepts (as
# tests/execution/test_jobs_service.py plants it).
OLD_STRATEGY = {"params": {"order_amount": "200", "levels": 0}, "report_interval_seconds": 10, "sample_seconds": 1}


@pytest.fixture
def refused_spec(
    settings: Any, market: RunningExchange, job_executor: tuple[str, dict[str, Any]], gate_stand_in: GateStandIn
) -> MMOrder:
    """An order whose deposit is confirmed, its strategy one the executor would refuse."""
    order = _deposited(settings, market, job_executor)
    MMOrder.objects.filter(pk=order.pk).update(strategy=OLD_STRATEGY)
    return MMOrder.objects.get(pk=order.pk)


def test_the_census_of_a_refused_spec(crash_driver: Driver, refused_spec: MMOrder, settings: Any) -> None:
    require_postgresql("the driver and the test share one database across processes")
    run = crash_driver.run("mm_job_spec_refused", 0, "after", settings=_job_settings(settings), args=_of(refused_spec))
    _census(run, SPEC_REFUSED)


def _of(order: MMOrder) -> dict[str, Any]:
    return {"order": order.pk}


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("kill_at", range(1, len(SPEC_REFUSED) + 1), ids=["start", "fail"])
def test_a_worker_killed_at_a_refused_start_fails_the_order_once_and_starts_nothing(
    crash_driver: Driver,
    refused_spec: MMOrder,
    job_executor: tuple[str, dict[str, Any]],
    gate_stand_in: GateStandIn,
    settings: Any,
    kill_at: int,
    when: str,
) -> None:
    """The start and its failure are one transaction: a worker killed anywhere in it leaves neither or both (killed
    "after" the start, the process dies at the commit that holds the failure too)."""
    require_postgresql("the driver and the test share one database across processes")
    order_id = refused_spec.pk
    jobs_before = set(manager_of(job_executor[1]).jobs)
    run = crash_driver.run(
        "mm_job_spec_refused", kill_at, when, settings=_job_settings(settings), args=_of(refused_spec)
    )
    assert run.killed, f"the driver was not killed (rc {run.returncode}): {run.output}"
    assert _timeline(order_id) == ([] if when == "before" else ["start", "fail"])
    _beats(order_id, gate_stand_in, lambda: MMOrder.objects.get(pk=order_id).state == mm.State.FAILED, "the failure")
    failed = MMOrder.objects.get(pk=order_id)
    assert _timeline(order_id) == ["start", "fail"]
    assert failed.failure_reason.startswith("the job spec would be refused")
    assert invariants.assert_resumed_or_parked(failed.state, resumed=[], parked={"failed": "mm_order_failed"}) == (
        "parked"
    )
    assert [a.detail["order"] for a in invariants.open_alerts("mm_order_failed")] == [order_id]  # told once
    assert set(manager_of(job_executor[1]).jobs) == jobs_before  # no job started anywhere
    assert failed.job_spec is None
    assert not failed.executor_signing_key
    invariants.assert_no_duplicates([failed])
    invariants.assert_ledger_balanced()


def _lose(order: MMOrder, executor: tuple[str, dict[str, Any]]) -> None:
    """The fault: the executor restarted and forgot the job (tests/execution/test_job_lost.py's `lose`: stopped
    first, so that nothing it placed trades on, then gone from the executor)."""
    manager = manager_of(executor[1])
    with ExecutorClient(order.executor_url) as client:
        client.stop(order.job_id)
    wait(lambda: manager.jobs[order.job_id].state in TERMINAL, "the job stopped", 30)
    del manager.jobs[order.job_id]


def _lost_run(driver: Driver, settings: Any, order: MMOrder, kill_at: int, when: str) -> DriverRun:
    args = {"order": order.pk, "lost": order.job_id}
    return driver.run("mm_job_lost", kill_at, when, settings=_job_settings(settings), args=args)


def _check_lost(order_id: int, lost: str, stand_in: GateStandIn, executor: tuple[str, dict[str, Any]]) -> None:
    def replaced() -> bool:
        order = MMOrder.objects.get(pk=order_id)
        return order.state == mm.State.RUNNING and order.job_id != lost

    _beats(order_id, stand_in, replaced, "the successor job runs")
    order = MMOrder.objects.get(pk=order_id)
    assert invariants.assert_resumed_or_parked(order.state, resumed=[mm.State.RUNNING]) == "resumed"
    successor = order.transitions.get(event="job_lost").detail
    assert (successor["lost_job_id"], successor["job_id"]) == (lost, order.job_id)
    stopped = _stopped_and_released(order_id, stand_in)
    assert _timeline(order_id) == ["start", "job_running", "job_lost", "job_running", "stop"]
    assert [j for j in manager_of(executor[1]).jobs if j.startswith(f"mmo{order_id}-")] == [successor["job_id"]]
    invariants.assert_exchange_orders_once(stopped.exchange_account, "MMT/USDT")  # nothing rests, no id twice
    invariants.assert_no_duplicates([stopped])  # each job's reports gapless, every reported fill booked
    invariants.assert_fills_are_the_trades(stopped)  # and the lost job's unreported ones, each once
    invariants.assert_ledger_balanced()


def test_the_census_of_a_lost_job(
    crash_driver: Driver,
    running: MMOrder,
    job_executor: tuple[str, dict[str, Any]],
    gate_stand_in: GateStandIn,
    settings: Any,
) -> None:
    require_postgresql("the driver and the test share one database across processes")
    _lose(running, job_executor)
    _census(_lost_run(crash_driver, settings, running, 0, "after"), LOST)
    _check_lost(running.pk, running.job_id, gate_stand_in, job_executor)


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("kill_at", range(1, len(LOST) + 1), ids=["job_lost", "successor-job_running"])
def test_a_worker_killed_at_a_lost_job_starts_one_successor(
    crash_driver: Driver,
    running: MMOrder,
    job_executor: tuple[str, dict[str, Any]],
    gate_stand_in: GateStandIn,
    settings: Any,
    kill_at: int,
    when: str,
) -> None:
    require_postgresql("the driver and the test share one database across processes")
    _lose(running, job_executor)
    run = _lost_run(crash_driver, settings, running, kill_at, when)
    _killed_at(run, LOST, kill_at)
    done = [event for _, event in LOST[: kill_at if when == "after" else kill_at - 1]]
    assert _timeline(running.pk) == ["start", "job_running", *done]
    _check_lost(running.pk, running.job_id, gate_stand_in, job_executor)


# ------------------------------------------------------------------------------------------ the return leg


def _to_stopping(flow: Flow, w3: Web3) -> None:
    """The money flow up to the operator's stop, run here (test_crash_mm_order.py kills at each of its steps):
    funded, tracked until the exchange credited the deposit, stopped."""
    order_id = flow.order.pk
    outbound.mm_order_fund(order_id=order_id)

    def track() -> None:
        outbound.mm_order_track_deposit(order_id=order_id)
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    wait(lambda: MMOrder.objects.get(pk=order_id).state == mm.State.DEPOSIT_CONFIRMED, "the deposit", 60, track)
    services.mm_order_stop(order_id=order_id)


def _money_run(driver: Driver, name: str, flow: Flow, kill_at: int, when: str) -> DriverRun:
    args = {"order": flow.order.pk, "treasury": flow.treasury.pk}
    return driver.run(name, kill_at, when, settings=flow.settings, args=args)


def _home(flow: Flow, w3: Web3, *, parked: dict[str, str]) -> MMOrder:
    """What the system does after the worker died, until the order settles: Celery redelivers the withdraw_back
    task (acks_late) or the operator asks again while it is stopping, the track_withdrawals beat runs, and the
    operator stops a failed order again (the API's stop) — once its parking is checked: an open alert of the kind
    `parked` names for its state."""
    order_id, treasury_id = flow.order.pk, flow.treasury.pk

    def state() -> str:
        return str(MMOrder.objects.get(pk=order_id).state)

    def one_pass() -> None:
        current = state()
        if current == mm.State.FAILED:
            assert invariants.assert_resumed_or_parked(current, resumed=[], parked=parked) == "parked"
            operations.mm_order_stop_request(owner_id=flow.order.owner_id, order_id=order_id)
        elif current == mm.State.STOPPING:
            homeward.mm_order_withdraw_back_queued(order_id=order_id, treasury_account_id=treasury_id)
        in_flight = ExchangeWithdrawal.objects.filter(order_id=order_id, status__in=list(wd.IN_FLIGHT)).exists()
        if in_flight or state() == mm.State.WITHDRAWING_BACK:
            homeward.mm_order_track_withdrawal(order_id=order_id)  # the track_withdrawals beat
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    wait(lambda: state() == mm.State.SETTLED, "the order settles", 120, one_pass)
    return MMOrder.objects.get(pk=order_id)


def _check_home(flow: Flow, sim: RunningExchange, w3: Web3, usdt: str, *, events: list[str], failed: int) -> None:
    """Settled with each step once; one custody transfer out; on the exchange, `failed` withdrawals it failed and
    one that went through, each row one withdrawal; custody on chain moved as the ledger says."""
    order = MMOrder.objects.get(pk=flow.order.pk)
    assert order.state == mm.State.SETTLED, (order.state, order.failure_reason)
    assert _timeline(order.pk) == events, "a step of the order was lost or applied twice"
    (sent,) = CustodyTransfer.objects.filter(order=order)
    assert sim.sim.funds is not None
    mine = [w for w in sim.sim.funds.withdrawals.values() if w.account_id == flow.venue]
    assert sorted(str(w.status) for w in mine) == sorted(
        [str(WithdrawStatus.FAILURE)] * failed + [str(WithdrawStatus.COMPLETED)]
    ), mine
    (done,) = ExchangeWithdrawal.objects.filter(order=order, status=wd.State.CONFIRMED)
    assert sim.sim.engine.account(flow.venue).balance("USDT").total == 0
    invariants.assert_ledger_balanced()
    invariants.assert_no_duplicates([order])
    invariants.assert_exchange_agrees(flow.trading)
    invariants.assert_withdrawals_once(order, flow.treasury)
    invariants.assert_custody_transfers_once(w3, [sent])
    balances = selectors.ledger_balances()
    assert asset_totals(balances) == {"USDT": 0}
    assert {a: v for a, v in balances.items() if a.startswith(("transit:", "exchange:", "custody:reserved"))} == {}
    fee = int(done.fee)
    onchain = token(w3, usdt).functions.balanceOf(Web3.to_checksum_address(CUSTODY.address)).call()
    assert onchain - flow.custody_on_chain_before == -fee
    assert selectors.ledger_balance(account="custody:USDT") - CUSTODY_SEED == -fee


def _refusing(sim: RunningExchange, flow: Flow) -> Fault:
    # The exchange refuses the next withdrawal request for balance (once): an answer, and it is no.
    return sim.sim.faults.add(Fault(kind=FaultKind.INSUFFICIENT_BALANCE, endpoint=APPLY, account=flow.venue, count=1))


REFUSED_EVENTS = ["fund", "transfer_sent", "transfer_mined", "deposit_confirmed", "stop", "orders_settled",
                  "withdrawal_arrived"]  # fmt: skip


def test_the_census_of_a_refused_withdrawal(
    crash_driver: Driver, flow: Flow, sim: RunningExchange, w3: Web3, usdt: str
) -> None:
    require_postgresql("the driver and the test share one database across processes")
    _to_stopping(flow, w3)
    rule = _refusing(sim, flow)
    _census(_money_run(crash_driver, "mm_withdrawal_refused", flow, 0, "after"), REFUSED)
    assert sim.sim.faults.events(fault_id=rule.fault_id), "the exchange refused the request"
    assert [r.status for r in ExchangeWithdrawal.objects.filter(order=flow.order).order_by("pk")] == [
        wd.State.FAILED,
        wd.State.CONFIRMED,
    ]
    assert invariants.open_alerts("withdrawal_failed")
    assert invariants.open_alerts("withdraw_back_refused")
    _check_home(flow, sim, w3, usdt, events=REFUSED_EVENTS, failed=0)


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_worker_killed_at_a_refused_withdrawal_asks_once_more_and_settles(
    crash_driver: Driver, flow: Flow, sim: RunningExchange, w3: Web3, usdt: str, settings: Any, when: str
) -> None:
    require_postgresql("the driver and the test share one database across processes")
    # A call the dead worker left open is waited on for the HTTP timeout (+ clock skew) before it is asked again.
    settings.OUTBOUND_HTTP_TIMEOUT_SECONDS = 1
    _to_stopping(flow, w3)
    rule = _refusing(sim, flow)
    run = _money_run(crash_driver, "mm_withdrawal_refused", flow, 1, when)
    _killed_at(run, REFUSED, 1)
    assert sim.sim.faults.events(fault_id=rule.fault_id), "the exchange refused the request"
    rows = list(ExchangeWithdrawal.objects.filter(order=flow.order).values_list("status", flat=True))
    if when == "after":
        # The refusal and its alert committed together: the operator sees why the withdraw-back stopped.
        assert rows == [wd.State.FAILED]
        assert invariants.open_alerts("withdrawal_failed")
    else:
        assert rows == [wd.State.REQUESTING]  # the refusal died with the worker: looked up, then asked again
    _home(flow, w3, parked={})
    _check_home(flow, sim, w3, usdt, events=REFUSED_EVENTS, failed=0)


FAILED_EVENTS = ["fund", "transfer_sent", "transfer_mined", "deposit_confirmed", "stop", "orders_settled", "fail",
                 "stop", "orders_settled", "withdrawal_arrived"]  # fmt: skip


def _failing(sim: RunningExchange, flow: Flow) -> Fault:
    # The exchange accepts the next withdrawal, then fails it and refunds the account (once).
    return sim.sim.faults.add(Fault(kind=FaultKind.WITHDRAWAL_FAILURE, account=flow.venue, count=1))


def test_the_census_of_a_failed_withdrawal(
    crash_driver: Driver, flow: Flow, sim: RunningExchange, w3: Web3, usdt: str
) -> None:
    require_postgresql("the driver and the test share one database across processes")
    _to_stopping(flow, w3)
    rule = _failing(sim, flow)
    _census(_money_run(crash_driver, "mm_withdrawal_failed", flow, 0, "after"), FAILED)
    assert sim.sim.faults.events(fault_id=rule.fault_id), "the exchange failed the withdrawal"
    assert invariants.open_alerts("withdrawal_failed")
    _check_home(flow, sim, w3, usdt, events=FAILED_EVENTS, failed=1)


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("kill_at", list(FAILED_KILLS.values()), ids=list(FAILED_KILLS))
def test_a_worker_killed_at_a_failed_withdrawal_parks_the_order_with_an_alert_and_it_comes_home_once(
    crash_driver: Driver, flow: Flow, sim: RunningExchange, w3: Web3, usdt: str, kill_at: int, when: str
) -> None:
    require_postgresql("the driver and the test share one database across processes")
    _to_stopping(flow, w3)
    rule = _failing(sim, flow)
    run = _money_run(crash_driver, "mm_withdrawal_failed", flow, kill_at, when)
    _killed_at(run, FAILED, kill_at)
    assert sim.sim.faults.events(fault_id=rule.fault_id), "the exchange failed the withdrawal"
    (first,) = ExchangeWithdrawal.objects.filter(order=flow.order)
    if (kill_at, when) != (3, "before"):
        # From the withdrawal's failure on, its alert is open: the order fails parked where its funds are.
        assert first.status == wd.State.FAILED
        assert invariants.open_alerts("withdrawal_failed")
    assert selectors.ledger_balance(account=f"exchange:a{flow.trading.pk}:free:USDT") == (
        0 if first.status == wd.State.SENT else int(first.amount)
    )
    _home(flow, w3, parked={"failed": "withdrawal_failed"})
    _check_home(flow, sim, w3, usdt, events=FAILED_EVENTS, failed=1)


# ------------------------------------------------------------------------------------------ the outbound leg

REVERTED = [("mm_order", "fund"), ("mm_order", "transfer_sent"), ("mm_order", "fail")]


@pytest.fixture
def drained(flow: Flow, w3: Web3, usdt: str) -> Iterator[None]:
    """The fault: the custody wallet's tokens left it on chain out of band (the ledger still counts them), so the
    order's custody transfer, signed with a fixed gas limit, mines and reverts. Put back afterwards: the module's
    later flows fund from it."""
    held = token(w3, usdt).functions.balanceOf(CUSTODY.address).call()
    aside = dev_accounts()[7]
    transfer(w3, usdt, aside.address, held - FUNDING // 2, sender=CUSTODY)
    yield
    transfer(w3, usdt, CUSTODY.address, held - FUNDING // 2, sender=aside)


def _check_reverted(flow: Flow, sim: RunningExchange, w3: Web3) -> None:
    """Failed where its funds are: the transfer reverted once on chain, nothing reached the exchange, the ledger
    booked the funds back into custody once and holds nothing in transit or reserved."""
    resumed = resume_money_flow(flow.order.pk, flow.treasury.pk, w3)
    assert resumed.state == mm.State.FAILED, resumed.state
    assert "reverted" in resumed.failure_reason
    assert _timeline(resumed.pk) == ["fund", "transfer_sent", "fail"]
    (alert,) = Alert.objects.filter(kind="mm_order_failed", resolved_at=None)  # parked, a person told once
    assert alert.detail["order"] == resumed.pk
    (sent,) = CustodyTransfer.objects.filter(order=resumed)
    assert sent.status == CustodyTransfer.Status.REVERTED
    assert w3.eth.get_transaction_receipt(HexStr(sent.tx_hash))["status"] == 0
    assert w3.eth.get_transaction_count(CUSTODY.address) == sent.nonce + 1  # nothing of custody's sent after it
    assert sim.sim.funds is not None
    assert sim.sim.funds.deposit_history(flow.venue, "USDT") == []
    invariants.assert_ledger_balanced()
    invariants.assert_no_duplicates([resumed])
    invariants.assert_custody_transfers_once(w3, [sent])  # no Transfer on chain for it
    balances = selectors.ledger_balances()
    assert {a: v for a, v in balances.items() if a.startswith(("transit:", "exchange:", "custody:reserved"))} == {}
    assert selectors.ledger_balance(account="custody:USDT") == CUSTODY_SEED


def test_the_census_of_a_reverted_custody_transfer(
    crash_driver: Driver, flow: Flow, drained: None, sim: RunningExchange, w3: Web3
) -> None:
    require_postgresql("the driver and the test share one database across processes")
    _census(_money_run(crash_driver, "mm_transfer_reverted", flow, 0, "after"), REVERTED)
    _check_reverted(flow, sim, w3)


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_worker_killed_at_a_reverted_transfer_fails_the_order_once_with_its_funds_in_custody(
    crash_driver: Driver, flow: Flow, drained: None, sim: RunningExchange, w3: Web3, when: str
) -> None:
    require_postgresql("the driver and the test share one database across processes")
    run = _money_run(crash_driver, "mm_transfer_reverted", flow, len(REVERTED), when)
    _killed_at(run, REVERTED, len(REVERTED))
    assert _timeline(flow.order.pk) == ["fund", "transfer_sent", *(["fail"] if when == "after" else [])]
    _check_reverted(flow, sim, w3)


@pytest.mark.parametrize("when", ["before", "after"])
def test_an_operator_killed_at_a_refund_asks_again_and_the_order_is_refunded_once(
    crash_driver: Driver, flow: Flow, drained: None, sim: RunningExchange, w3: Web3, when: str
) -> None:
    """The failed order of a reverted transfer, its funds in custody, refunded by the operator: the web process
    dies at the refund; the operator asks again, and the refund happens once (a second ask returns the order)."""
    require_postgresql("the driver and the test share one database across processes")
    steps = [*REVERTED, ("mm_order", "refund")]
    run = _money_run(crash_driver, "mm_transfer_reverted_refunded", flow, len(steps), when)
    _killed_at(run, steps, len(steps))
    order_id = flow.order.pk
    assert _timeline(order_id) == ["fund", "transfer_sent", "fail", *(["refund"] if when == "after" else [])]
    for _ in range(2):  # the operator asks again, and again: one refund
        refunded = operations.mm_order_refund_request(owner_id=flow.order.owner_id, order_id=order_id)
    assert refunded.state == mm.State.REFUNDED
    assert _timeline(order_id) == ["fund", "transfer_sent", "fail", "refund"]
    invariants.assert_ledger_balanced()
    invariants.assert_no_duplicates([refunded])
    balances = selectors.ledger_balances()
    assert {a: v for a, v in balances.items() if a.startswith(("transit:", "exchange:", "custody:reserved"))} == {}
    assert selectors.ledger_balance(account="custody:USDT") == CUSTODY_SEED
    (sent,) = CustodyTransfer.objects.filter(order=refunded)
    assert sent.status == CustodyTransfer.Status.REVERTED  # nothing of it left custody, nothing sent again
    invariants.assert_custody_transfers_once(w3, [sent])


def _kill_switch(order: MMOrder, executor: tuple[str, dict[str, Any]], stand_in: GateStandIn) -> MMOrder:
    """The job's kill switch trips on the executor (its rejects counter at the limit, the executor's own way:
    tests/execution/test_mm_order_resume.py), and the sync_jobs beat pauses the order with its alert."""
    runner = manager_of(executor[1]).get(order.job_id)

    def tripped() -> bool:
        if runner.state != "halted":  # an accepted order in between resets the counter: set it again
            runner.risk.consecutive_rejects = runner.risk.limits.max_consecutive_rejects
        return runner.state == "halted"

    wait(tripped, "the kill switch tripped", 30)
    _beats(order.pk, stand_in, lambda: MMOrder.objects.get(pk=order.pk).state == mm.State.PAUSED, "the pause")
    assert [a.detail["job_id"] for a in invariants.open_alerts("kill_switch")] == [order.job_id]
    return MMOrder.objects.get(pk=order.pk)


@pytest.mark.parametrize("when", ["before", "after"])
def test_an_operator_killed_at_a_resume_leaves_the_order_running_its_one_job(
    crash_driver: Driver,
    running: MMOrder,
    job_executor: tuple[str, dict[str, Any]],
    gate_stand_in: GateStandIn,
    settings: Any,
    when: str,
) -> None:
    """Killed before the resume is written, the executor already quotes again: the sync_jobs beat adopts it (one
    resume per pause). Killed after, it is recorded. Either way the order runs its one job and the kill-switch alert
    clears."""
    require_postgresql("the driver and the test share one database across processes")
    paused = _kill_switch(running, job_executor, gate_stand_in)
    run = crash_driver.run("mm_job_resumed", 1, when, settings=_job_settings(settings), args={"order": paused.pk})
    _killed_at(run, [("mm_order", "resume")], 1)
    order_id = paused.pk
    assert _timeline(order_id) == ["start", "job_running", "pause", *(["resume"] if when == "after" else [])]
    runner = manager_of(job_executor[1]).get(paused.job_id)
    wait(lambda: runner.state == "running", "the executor resumed the job", 30)
    _beats(order_id, gate_stand_in, lambda: MMOrder.objects.get(pk=order_id).state == mm.State.RUNNING, "resumed")
    jobs.mm_order_sync_job(order_id=order_id)  # one more beat: nothing more to adopt
    assert _timeline(order_id) == ["start", "job_running", "pause", "resume"]
    assert alert_rules.rule_kill_switch().resolved == 1  # the order runs again: its kill-switch alert clears
    assert invariants.open_alerts("kill_switch") == []
    stopped = _stopped_and_released(order_id, gate_stand_in)
    assert _timeline(order_id) == ["start", "job_running", "pause", "resume", "stop"]
    assert [j for j in manager_of(job_executor[1]).jobs if j.startswith(f"mmo{order_id}-")] == [paused.job_id]
    invariants.assert_exchange_orders_once(stopped.exchange_account, "MMT/USDT")  # nothing rests, no id twice
    invariants.assert_no_duplicates([stopped])
    invariants.assert_ledger_balanced()
