"""Acceptance: on the devnet, a job whose exchange traffic is re-rooted through a proxy that invents resting orders
earns nothing for them (docs/scoring.md, "Eligible orders", "Report intake", "Exchange cross-checks").

The hostile host is `devnet.exchange.forging_proxy`: it answers new limit orders itself and shows them resting, and
forwards everything else to the exchange simulator. First the proxy on its own, through ccxt: what it tells its
client, and that the exchange knows nothing of it. Then the real thing: two executors quote for two MM orders, one
honestly, one behind the proxy; their reports are pulled and stored as the loop does, and the oracle's pieces read
them (intake), ask the exchange itself with each account's own key (cross-checks), record the exchange's book
(the recorder) and score the epoch. The forged orders were reported, are flagged `not_on_exchange` and score no
depth; the honest job's depth is exactly what it scores with the forger left out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from decimal import ROUND_DOWN, Decimal
from typing import Any

import ccxt
import pytest

from campaigns.models import Campaign
from devnet.exchange.fixtures import RunningExchange, make_ccxt
from devnet.exchange.forging_proxy import FORGED_ID_START, FORGERY_KEY, Forgery, serving_forging_proxy
from devnet.exchange.keys import Permission
from devnet.serving import Served
from execution import accounts, jobs, provisioning, reports, services
from execution.domain import mm_order as mm
from execution.models import ExchangeAccount, ExecutionReport, MMOrder
from mrmarket.exchanges.credentials import ExchangeCredentials
from payouts import crosscheck
from payouts.domain.intake import NormalizedJob, normalize_job, participant_inputs
from payouts.domain.scoring.engine import EpochScores, score_epoch
from payouts.domain.scoring.inputs import EpochInputs, Links, Order, Params, Participant, Snapshot
from payouts.inputs_build import epoch_params
from payouts.recorder import Recorder, now_ms
from payouts.selectors import epoch_snapshots
from tests.execution.executor_thread import manager_of, running_executor
from tests.execution.gate_stand_in import GateStandIn
from tests.factories import user_with
from tests.fixtures.orders import book_holdings
from tests.payouts.conftest import SYMBOL
from wire.canonical import parse
from wire.reports import SignedReport

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

HONEST, FORGER = "0x" + "a1" * 20, "0x" + "f0" * 20
FUNDS = {"MMT": Decimal(3000), "USDT": Decimal(1500)}
TICK = Decimal("0.0001")  # MMT/USDT's price tick on the simulator (devnet/exchange/config.py)


@pytest.fixture(scope="module")
def proxy(sim: RunningExchange) -> Iterator[Served]:
    with serving_forging_proxy(sim.base_url) as served:
        yield served


def forgery_of(proxy: Served) -> Forgery:
    return proxy.app[FORGERY_KEY]


def trading_account(sim: RunningExchange) -> Any:
    return sim.sim.create_account(
        permissions=frozenset({Permission.READ, Permission.TRADE}), balances={k: v for k, v in FUNDS.items()}
    )


# --- the proxy on its own -----------------------------------------------------------------------------------------


def test_the_proxy_invents_resting_limit_orders_the_exchange_never_sees(sim: RunningExchange, proxy: Served) -> None:
    key = trading_account(sim)
    through = make_ccxt(proxy.url, key.key, key.secret)
    real = make_ccxt(sim.base_url, key.key, key.secret)
    forwarded = forgery_of(proxy).forwarded

    # Market data and balances pass through: the same answers as the exchange's own.
    book = through.fetch_order_book(SYMBOL, 5)
    assert book["bids"]
    assert book["asks"]
    assert through.fetch_balance()["total"]["USDT"] == real.fetch_balance()["total"]["USDT"] == 1500
    assert forgery_of(proxy).forwarded >= forwarded + 2

    bid = (Decimal(str(book["bids"][0][0])) * Decimal("0.99")).quantize(TICK, rounding=ROUND_DOWN)
    placed = through.create_order(SYMBOL, "limit", "buy", "100", str(bid))
    post_only = through.create_order(SYMBOL, "limit", "buy", "100", str(bid - TICK), {"postOnly": True})
    for order, kind in ((placed, "LIMIT"), (post_only, "LIMIT_MAKER")):  # what ccxt sends for a post-only order
        assert order["status"] == "open"
        assert order["info"]["status"] == "NEW"
        assert order["info"]["type"] == kind
        assert int(order["id"]) >= FORGED_ID_START
        assert int(order["id"]) in forgery_of(proxy).orders
    ids = {placed["id"], post_only["id"]}

    # Through the proxy they rest: listed open, answered by id and by client order id.
    assert {o["id"] for o in through.fetch_open_orders(SYMBOL)} == ids
    assert through.fetch_order(placed["id"], SYMBOL)["status"] == "open"
    by_cid = through.fetch_order(None, SYMBOL, {"origClientOrderId": post_only["clientOrderId"]})
    assert by_cid["id"] == post_only["id"]
    assert Decimal(through.fetch_order(placed["id"], SYMBOL)["info"]["price"]) == bid
    assert {o["id"] for o in through.fetch_orders(SYMBOL)} == ids
    other = trading_account(sim)  # another account behind the same host sees none of them
    assert make_ccxt(proxy.url, other.key, other.secret).fetch_open_orders(SYMBOL) == []

    # The exchange, asked with the same key, knows none of it, and nothing of the account's funds is locked.
    for order in (placed, post_only):
        with pytest.raises(ccxt.OrderNotFound):
            real.fetch_order(order["id"], SYMBOL)
        with pytest.raises(ccxt.OrderNotFound):
            real.fetch_order(None, SYMBOL, {"origClientOrderId": order["clientOrderId"]})
    assert real.fetch_open_orders(SYMBOL) == []
    assert real.fetch_orders(SYMBOL) == []
    assert real.fetch_balance()["USDT"]["used"] == 0

    # Cancels through the proxy work on its inventions: one by id, the rest with cancel-all (the exchange has
    # nothing open, yet the proxy answers as if it had cancelled them).
    cancelled = through.cancel_order(placed["id"], SYMBOL)
    assert cancelled["status"] == "canceled"
    assert through.fetch_order(placed["id"], SYMBOL)["status"] == "canceled"
    assert {o["id"] for o in through.fetch_open_orders(SYMBOL)} == {post_only["id"]}
    with pytest.raises(ccxt.OrderNotFound):
        through.cancel_order(placed["id"], SYMBOL)  # twice: Binance's "unknown order"
    swept = through.cancel_all_orders(SYMBOL)
    assert [o["id"] for o in swept] == [post_only["id"]]
    assert through.fetch_open_orders(SYMBOL) == []
    with pytest.raises(ccxt.OrderNotFound):
        through.cancel_all_orders(SYMBOL)  # nothing left: the exchange's own answer passes through

    # Other orders pass through to the exchange: a market order trades for real.
    bought = through.create_order(SYMBOL, "market", "buy", "10")
    assert int(bought["id"]) < FORGED_ID_START
    assert [o["id"] for o in real.fetch_orders(SYMBOL)] == [bought["id"]]
    assert real.fetch_my_trades(SYMBOL)


# --- the loop and the oracle --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def executors(sim: RunningExchange, proxy: Served) -> Iterator[dict[str, tuple[str, dict[str, Any]]]]:
    """An honest executor on the exchange, and one whose exchange is the forging proxy."""
    honest: dict[str, Any] = {}
    forged: dict[str, Any] = {}
    with (
        running_executor(sim.base_url, holder=honest) as honest_url,
        running_executor(proxy.url, holder=forged) as forged_url,
    ):
        yield {HONEST: (honest_url, honest), FORGER: (forged_url, forged)}


@pytest.fixture
def gate_stand_in(monkeypatch: pytest.MonkeyPatch) -> GateStandIn:
    """The test executors run no TD (as in tests/execution/conftest.py): their announced keys pass provisioning
    and their reports pass ingestion through the stand-in, explicitly and only here."""
    stand_in = GateStandIn()
    monkeypatch.setattr(provisioning, "attested_identity", stand_in.identity)
    monkeypatch.setattr(reports, "signing_key_attested", stand_in.signing_key_attested)
    return stand_in


def confirmed_order(sim: RunningExchange) -> MMOrder:
    """An MM order whose deposit is confirmed and booked, its account funded on the exchange (as
    tests/execution/conftest.py `make_order` makes one)."""
    key = trading_account(sim)
    account = accounts.exchange_account_enrol(
        owner_id=user_with().pk,
        exchange="binance",
        label="mm",
        role="trading",
        credentials=ExchangeCredentials(key.key, key.secret),
    )
    order = MMOrder.objects.create(
        owner_id=account.owner_id,
        exchange_account=account,
        symbol=SYMBOL,
        funding_asset="USDT",
        funding_amount=1_000 * 10**6,
        state=mm.State.DEPOSIT_CONFIRMED,
        strategy={"params": {"order_amount": "200", "levels": 2}, "report_interval_seconds": 10, "sample_seconds": 1},
    )
    book_holdings(order, {"MMT": int(FUNDS["MMT"] * 10**18), "USDT": int(FUNDS["USDT"] * 10**6)})
    return order


def wait(predicate: Callable[[], bool], *, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def stopped(order: MMOrder) -> MMOrder:
    services.mm_order_stop(order_id=order.pk)

    def released() -> bool:
        return jobs.mm_order_wind_down(order_id=order.pk).job_id == ""

    wait(released, what=f"order {order.pk} to stop")
    return MMOrder.objects.get(pk=order.pk)


def record_books(seconds: float) -> None:
    """The oracle's recorder over the running campaigns for `seconds` (the executors quote in their threads)."""

    async def main() -> None:
        recorder = Recorder(shard=0, shards=1)
        asyncio.get_running_loop().call_later(seconds, recorder.stop)
        await recorder.run()

    asyncio.run(main())


def oracle_participant(order: MMOrder, job: NormalizedJob, params: Params, *, address: str) -> Participant:
    """What the oracle makes of one participant's job: its orders live in the epoch (and the rest before it) and
    its fills in the epoch, each confirmed or not by the exchange itself, asked with the account's own key."""
    account: ExchangeAccount = order.exchange_account
    client = accounts.exchange_account_client(account=account)
    since = params.epoch_start_ms - params.min_rest_seconds * 1000
    live = [
        o
        for o in job.orders
        if o.live[0].live_from_ms < params.epoch_end_ms and (o.closed_ms is None or o.closed_ms > since)
    ]
    orders = crosscheck.confirm_orders(client=client, symbol=SYMBOL, orders=live)
    fills = crosscheck.confirm_fills(
        client=client,
        symbol=SYMBOL,
        fills=[f for f in job.fills if params.epoch_start_ms <= f.ts_ms < params.epoch_end_ms],
        since_ms=params.epoch_start_ms,
        until_ms=params.epoch_end_ms,
    )
    confirmed = NormalizedJob(job.job_id, job.exchange, job.symbol, orders, fills, job.source_reports)
    return participant_inputs([confirmed], address=address, links=Links())


def quotable(order: Order, snapshot: Snapshot, params: Params) -> bool:
    """Whether `order` rests at the snapshot's time inside the band and above the notional floor."""
    mid = snapshot.book.mid if snapshot.book is not None else None
    live = next((i for i in order.live if i.contains(snapshot.t_ms)), None)
    if mid is None or live is None:
        return False
    return (
        abs(order.price - mid) * 10_000 < params.max_spread_bps * mid
        and order.price * live.remaining >= params.min_order_quote
    )


def scored(params: Params, snapshots: list[Snapshot], participants: list[Participant]) -> EpochScores:
    # Through the engine's own reading of a document: the inputs are what the oracle would publish.
    inputs = EpochInputs.from_parts(params, [s.as_json() for s in snapshots], [p.as_json() for p in participants])
    return score_epoch(inputs)


@pytest.mark.django_db(transaction=True)  # the recorder writes from its own database thread
def test_a_job_behind_a_forging_host_earns_nothing_for_the_orders_it_invents(
    settings,
    sim: RunningExchange,
    proxy: Served,
    executors: dict[str, tuple[str, dict[str, Any]]],
    gate_stand_in: GateStandIn,
    make_campaign: Callable[..., Campaign],
    redis_clean: None,
) -> None:
    settings.EXCHANGE_API_URLS = {"binance": sim.base_url}  # the oracle's and the loop's: never the proxy
    settings.CUSTODY_ASSETS = {
        "USDT": {"token": "0x" + "ab" * 20, "decimals": 6},
        "MMT": {"token": "0x" + "cd" * 20, "decimals": 18},
    }
    settings.RECORDER_REFRESH_SECONDS = 0.5
    orders: dict[str, MMOrder] = {}
    for address in (HONEST, FORGER):
        settings.EXECUTOR_URLS = [executors[address][0]]  # each job on its own executor
        started = jobs.mm_order_start_job(order_id=confirmed_order(sim).pk)
        assert started.state == mm.State.RUNNING
        assert started.executor_url == executors[address][0]
        orders[address] = started
    settings.EXECUTOR_URLS = [url for url, _ in executors.values()]
    runners = {a: manager_of(executors[a][1]).get(orders[a].job_id) for a in orders}
    wait(lambda: all(r.tracker.resting() for r in runners.values()), what="both jobs to quote")

    # A campaign on the market, started on a whole second (its epochs and sample times are aligned to it), whose
    # band takes the executors' default spreads; the recorder keeps the exchange's book while both jobs quote.
    start = now_ms() // 1000 * 1000
    campaign = make_campaign(start_ms=start, end_ms=start + 600_000, sample_seconds=1, max_spread_bps=100)
    record_books(12)
    until = now_ms()
    for order in orders.values():
        jobs.mm_order_sync_job(order_id=order.pk)  # the beat's pull of reports
        assert ExecutionReport.objects.filter(order=order).exists()
    for address, order in orders.items():
        orders[address] = stopped(order)  # the wind-down books the last reports, up to every order's close

    forged_ids = {str(i) for i in forgery_of(proxy).orders}
    assert forged_ids, "the proxy invented orders"
    params = epoch_params(campaign, 0, until_ms=until // 1000 * 1000)
    assert params.epoch_start_ms == start
    snapshots = epoch_snapshots(campaign=campaign, sample_times=params.sample_times())
    assert sum(s.book is not None for s in snapshots) >= 8, "the recorder kept the book"

    participants = []
    for address in (HONEST, FORGER):
        order = orders[address]
        chain = ExecutionReport.objects.filter(order=order).order_by("sequence")
        assert chain.exists()
        job = normalize_job([SignedReport.from_json(parse(r.envelope)) for r in chain])
        assert (job.exchange, job.symbol) == (campaign.exchange, campaign.pair)
        client = accounts.exchange_account_client(account=order.exchange_account)
        assert all(sim.base_url in url for url in client.urls["api"].values() if isinstance(url, str))
        participants.append(oracle_participant(order, job, params, address=address))
    honest, forger = participants

    # The forged orders were really reported: the forger's inputs hold them, each one the proxy's invention, and
    # the exchange answered none of them.
    assert forger.orders
    assert {o.order_id for o in forger.orders} <= forged_ids
    assert all(o.exchange is None for o in forger.orders)
    # Yet but for the exchange's word they were candidates: each rested at a sample time with a book, inside
    # the band and above the notional floor, so the cross-check is what keeps them out.
    for forged in forger.orders:
        assert any(quotable(forged, s, params) for s in snapshots), forged.order_id
    real = make_ccxt(sim.base_url, *_key(orders[FORGER].exchange_account))
    assert real.fetch_orders(SYMBOL) == []  # nothing of the forger's ever reached the exchange
    # The honest job's orders are all the exchange's, confirmed as reported.
    assert honest.orders
    assert not {o.order_id for o in honest.orders} & forged_ids
    assert all(o.exchange is not None for o in honest.orders)

    scores = scored(params, snapshots, [honest, forger]).by_address()
    assert scores[FORGER].flags.not_on_exchange == tuple(sorted(o.order_id for o in forger.orders))
    assert scores[FORGER].depth == 0
    assert scores[FORGER].flags.not_visible == scores[FORGER].flags.over_claimed == 0  # never even claimed a level
    assert scores[HONEST].flags.not_on_exchange == ()
    assert scores[HONEST].depth > 0
    # The forger changes nothing for the honest participant: the same depth with the forger left out.
    alone = scored(params, snapshots, [honest]).by_address()
    assert alone[HONEST].depth == scores[HONEST].depth
    assert alone[HONEST].volume == scores[HONEST].volume


def _key(account: ExchangeAccount) -> tuple[str, str]:
    creds = accounts.exchange_account_credentials(account=account)
    return creds.api_key, creds.secret
