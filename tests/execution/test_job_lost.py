"""A running order whose executor lost its job (an executor restarted: a TD keeps its keys and jobs in memory
only) is started again as a new job, routed and attested like the first; a paused one stays paused."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from devnet.exchange.domain.model import OrderType, Side, TimeInForce
from devnet.exchange.fixtures import RunningExchange, make_ccxt
from devnet.exchange.keys import Permission
from execution import accounts, jobs, services
from execution.domain import mm_order as mm
from execution.errors import ExecutorUnavailable
from execution.executor_client import ExecutorClient
from execution.models import Alert, LedgerTransaction, MMOrder
from executor.engine.runner import TERMINAL
from tests.execution.executor_thread import manager_of
from tests.execution.running_job import wait
from wire.jobs import client_order_prefix

# The test executor runs no TD: its keys pass through the gate stand-in (conftest.py).
pytestmark = [pytest.mark.django_db, pytest.mark.timeout(120), pytest.mark.usefixtures("gate_stand_in")]


def lose(order: MMOrder, executor: tuple[str, dict[str, Any]]) -> None:
    """What a restart does to the order's job: it is gone (its orders cancelled first, so nothing trades on)."""
    manager = manager_of(executor[1])
    with ExecutorClient(order.executor_url) as client:
        client.stop(order.job_id)
    wait(lambda: manager.jobs[order.job_id].state in TERMINAL)
    del manager.jobs[order.job_id]


def release(order_id: int) -> None:
    services.mm_order_stop(order_id=order_id)
    wait(lambda: jobs.mm_order_wind_down(order_id=order_id).job_id == "")


def test_a_running_order_whose_job_was_lost_runs_again_as_a_new_job(
    order: MMOrder, executor: tuple[str, dict[str, Any]], sim: RunningExchange
) -> None:
    manager = manager_of(executor[1])
    order = jobs.mm_order_start_job(order_id=order.pk)
    assert order.state == "running"
    lost = order.job_id
    # A fill the lost job never reported: a taker hits its ask, and the job is gone before Django asks.
    venue = sim.sim.keys.authenticate(accounts.exchange_account_credentials(account=order.exchange_account).api_key)
    wait(lambda: any(o.side == "SELL" for o in sim.sim.engine.open_orders(venue.account_id, "MMTUSDT")))
    engine = sim.sim.engine
    with engine.lock:  # the market's agents wait: the taker sweeps the book up to the job's best ask
        asks = [o.price for o in engine.open_orders(venue.account_id, "MMTUSDT") if o.side == "SELL" and o.price]
        price = min(asks)
        depth = sum(
            (o.remaining for o in engine.resting("MMTUSDT") if o.side == "SELL" and o.price and o.price <= price),
            Decimal(0),
        )
        taker = sim.sim.create_account(
            permissions=frozenset({Permission.TRADE}), balances={"USDT": (depth * price * 2).quantize(Decimal(1))}
        )
        engine.place_order(
            account_id=taker.account_id, symbol="MMTUSDT", side=Side.BUY, type=OrderType.LIMIT,
            quantity=depth, price=price, tif=TimeInForce.IOC, client_order_id="taker",
        )  # fmt: skip
    lose(order, executor)
    creds = accounts.exchange_account_credentials(account=order.exchange_account)
    traded = make_ccxt(sim.base_url, creds.api_key, creds.secret).fetch_my_trades("MMT/USDT", limit=1000)
    assert traded
    unbooked = [t for t in traded if not LedgerTransaction.objects.filter(key=f"o{order.pk}-fill-{t['id']}").exists()]
    assert unbooked, "the fill is on the exchange but in no stored report"

    resumed = jobs.mm_order_sync_job(order_id=order.pk)
    assert resumed.state == "running"
    assert resumed.job_id != lost
    assert resumed.job_id.startswith(f"mmo{order.pk}-")
    assert resumed.job_id in manager.jobs
    timeline = list(resumed.transitions.values_list("event", "to_state"))
    assert timeline[-2:] == [("job_lost", "starting"), ("job_running", "running")]
    detail = resumed.transitions.get(event="job_lost").detail
    assert detail["lost_job_id"] == lost
    assert detail["fills_booked"] == len(unbooked)
    # Every trade of the key is one booked fill: the next job starts from a ledger that knows what it holds.
    for t in traded:
        assert LedgerTransaction.objects.filter(key=f"o{order.pk}-fill-{t['id']}").exists()
    again = jobs.mm_order_sync_job(order_id=order.pk)  # the next beat: no third job
    assert (again.state, again.job_id) == ("running", resumed.job_id)
    assert [j for j in manager.jobs if j.startswith(f"mmo{order.pk}-")] == [resumed.job_id]
    assert not Alert.objects.filter(kind__startswith="report_").exists()
    release(order.pk)


def test_orders_a_lost_job_left_resting_are_cancelled_before_a_new_job_starts(
    order: MMOrder, executor: tuple[str, dict[str, Any]], sim: RunningExchange
) -> None:
    order = jobs.mm_order_start_job(order_id=order.pk)
    lost = order.job_id
    venue = sim.sim.keys.authenticate(accounts.exchange_account_credentials(account=order.exchange_account).api_key)
    engine = sim.sim.engine
    wait(lambda: any(o.side == "BUY" for o in engine.open_orders(venue.account_id, "MMTUSDT")))
    bid = next(o for o in engine.open_orders(venue.account_id, "MMTUSDT") if o.side == "BUY")
    assert bid.price is not None
    far_below = (bid.price / Decimal(2)).quantize(bid.price)  # out of the market agents' reach: nothing fills them
    lose(order, executor)
    # A process that died does not cancel: what it placed stays on the book, under the lost job's prefix. One
    # such order, and one placed by hand, which is not the lost job's.
    orphan, foreign = f"{client_order_prefix(lost)}zz-1", "placed-by-hand-1"
    for cid in (orphan, foreign):
        engine.place_order(
            account_id=venue.account_id, symbol="MMTUSDT", side=Side.BUY, type=OrderType.LIMIT,
            quantity=bid.orig_qty, price=far_below, tif=TimeInForce.GTC, client_order_id=cid,
        )  # fmt: skip

    resumed = jobs.mm_order_sync_job(order_id=order.pk)
    assert (resumed.state, resumed.job_id != lost) == ("running", True)
    # Django cancelled the orphan (and only it: by the lost job's prefix) before the new job started; the new
    # job then treats whatever else rests on its dedicated account as foreign, as it always does.
    assert resumed.transitions.get(event="job_lost").detail["orders_cancelled"] == 1
    by_cid = {o.client_order_id: o for o in engine.account(venue.account_id).orders.values()}
    assert not by_cid[orphan].is_open
    release(order.pk)


def test_a_paused_order_whose_job_was_lost_stays_paused_with_an_alert(
    order: MMOrder, executor: tuple[str, dict[str, Any]]
) -> None:
    order = jobs.mm_order_start_job(order_id=order.pk)
    services.mm_order_transition(order_id=order.pk, event=mm.Event.PAUSE, key=f"o{order.pk}-pause")
    lost = order.job_id
    lose(order, executor)

    after = jobs.mm_order_sync_job(order_id=order.pk)
    assert (after.state, after.job_id) == ("paused", lost)
    assert Alert.objects.get(kind="job_lost").detail == {"order": order.pk, "job_id": lost}
    release(order.pk)


def test_an_executor_that_came_back_under_another_url_gets_the_order_again(
    order: MMOrder, executor: tuple[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = manager_of(executor[1])
    order = jobs.mm_order_start_job(order_id=order.pk)
    lost = order.job_id
    lose(order, executor)
    # The order still names the executor's old address, where nothing listens any more; the executor is
    # registered under its new one (here: the configured URL).
    MMOrder.objects.filter(pk=order.pk).update(executor_url="http://127.0.0.1:9")
    monkeypatch.setattr(jobs, "client_for", lambda o: ExecutorClient(o.executor_url, sleep=lambda s: None))

    resumed = jobs.mm_order_sync_job(order_id=order.pk)
    assert (resumed.state, resumed.executor_url) == ("running", executor[0])
    assert resumed.job_id != lost
    assert resumed.job_id in manager.jobs
    release(order.pk)


def test_an_unreachable_executor_that_is_still_listed_holds_the_job(
    order: MMOrder, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = jobs.mm_order_start_job(order_id=order.pk)
    job = order.job_id
    settings.EXECUTOR_URLS = [order.executor_url]
    monkeypatch.setattr(jobs, "client_for", lambda o: ExecutorClient("http://127.0.0.1:9", sleep=lambda s: None))
    with pytest.raises(ExecutorUnavailable):
        jobs.mm_order_sync_job(order_id=order.pk)
    after = MMOrder.objects.get(pk=order.pk)
    assert (after.state, after.job_id) == ("running", job)
    monkeypatch.undo()
    release(order.pk)
