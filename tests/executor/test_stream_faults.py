"""Stream chaos: a job on the exchange's streams against the simulator's stream faults (disconnect, stall, depth
gap, dropped user events, a stream that never comes back, an expired subscription). Each test injects the fault
through the simulator's fault registry and waits on conditions with a bounded deadline: the feed falls back and
says why, the job keeps quoting (by polling meanwhile), the feed comes back, and fills are booked exactly once
whichever path (stream or REST reconciliation) delivered them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from devnet.exchange.domain.model import Side
from devnet.exchange.faults import Fault, FaultKind
from devnet.exchange.fixtures import RunningExchange
from executor.engine.runner import Credentials, JobRunner, RunnerSettings
from executor.identity import Identity
from executor.jobs.manager import JobManager
from tests.executor.harness import job_spec, live_exchange, trading_key
from wire.reports import SignedReport, verify_chain

pytestmark = pytest.mark.timeout(120)
SYMBOL = "MMT/USDT"
MARKET = "/ws*"  # every stream path (Binance's /ws re-rooted; the executor's depth stream is /ws/<n>)
DEPTH = "/ws/*"  # the public streams only, not the WebSocket API
ACCOUNT = "/ws-api/v3*"  # the WebSocket API: the user data stream and orders
SETTINGS = RunnerSettings(
    tick_ms=200, reconcile_ms=1000, stream_stall_ms=1000, stream_retry_ms=200, request_timeout_ms=2000
)


@pytest.fixture(scope="module")
def exchange() -> Iterator[RunningExchange]:
    with live_exchange() as ex:
        yield ex


async def wait_for(cond: Callable[[], bool | Awaitable[bool]], timeout: float = 20.0) -> None:
    """Until `cond` holds (checked every 50 ms), or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


class Jobs:
    """Starts jobs on one executor's job manager against the simulator, and reads the exchange's view of them."""

    def __init__(self, ex: RunningExchange, manager: JobManager) -> None:
        self.ex, self.manager = ex, manager

    async def start(self, job_id: str, *, live: bool = True, **spec: Any) -> tuple[JobRunner, Any]:
        key = trading_key(self.ex)
        runner, _ = await self.manager.start(job_spec(job_id, **spec))
        runner.provide(Credentials(key.key, key.secret))
        await wait_for(lambda: runner.state == "running" and len(runner.tracker.resting()) >= 2)
        if live:
            await wait_for(lambda: streaming(runner))
        return runner, key

    def fault(self, kind: FaultKind, **fields: Any) -> Fault:
        return self.ex.sim.faults.add(Fault(kind=kind, **fields))

    def client(self, key: Any) -> Any:
        return self.ex.make_ccxt(key.key, key.secret)

    async def exchange_open(self, key: Any) -> set[str]:
        orders = await asyncio.to_thread(self.client(key).fetch_open_orders, SYMBOL)
        return {o["clientOrderId"] for o in orders}

    async def exchange_trades(self, key: Any) -> list[str]:
        trades = await asyncio.to_thread(self.client(key).fetch_my_trades, SYMBOL, None, 1000)
        return [t["id"] for t in trades]

    async def quotes_once(self, runner: JobRunner, key: Any) -> None:
        """The job rests on both sides and the exchange holds exactly its resting orders (nothing placed twice)."""

        async def same() -> bool:
            resting = {o.client_order_id for o in runner.tracker.resting()}
            sides = {o.side for o in runner.tracker.resting()}
            return sides == {"buy", "sell"} and resting == await self.exchange_open(key)

        await wait_for(same)
        orders = await asyncio.to_thread(self.client(key).fetch_orders, SYMBOL, None, 1000)
        cids = [o["clientOrderId"] for o in orders]
        assert len(cids) == len(set(cids)), "a client order id reached the exchange twice"

    async def cross_bid(self, runner: JobRunner) -> str:
        """Another account sells into the job's best bid (everything bid at or above it, then the job's order):
        a fill for the job whatever the takers do. Returns the job order's client id."""
        # The job may be between a cancel and its replacement, or a taker may have just filled its bid: wait until
        # it rests a bid again (a running job on a two-sided book always comes back to one). Nothing runs between
        # the wait's end and the read below: they share this event loop.
        await wait_for(lambda: any(o.side == "buy" for o in runner.tracker.resting()))
        bid = max((o for o in runner.tracker.resting() if o.side == "buy"), key=lambda o: o.price)
        amount = int(above_bid(self.ex, bid.price) + bid.amount) + 1  # whole lots, past the job's order
        taker = trading_key(self.ex, base=str(amount), quote="1")
        ioc = {"timeInForce": "IOC"}
        await asyncio.to_thread(
            self.client(taker).create_order, SYMBOL, "limit", "sell", str(amount), str(bid.price), ioc
        )
        return bid.client_order_id

    async def stop(self, runner: JobRunner, key: Any) -> list[SignedReport]:
        """Stop the job; nothing is left open, and its reports verify as a chain. Returns the reports."""
        self.ex.sim.faults.clear()
        self.manager.stop(runner.job_id)
        await wait_for(lambda: runner.state == "stopped", timeout=30)
        assert await self.exchange_open(key) == set()
        assert runner.reporter is not None
        reports = runner.reporter.after(None, limit=1000)
        verify_chain(reports, signing_key=self.manager.identity.signing.public_hex, job_spec_digest=runner.spec_digest)
        return reports


def above_bid(ex: RunningExchange, price: Decimal) -> Decimal:
    """The quantity bid at or above `price` on the simulator's book (what a sell at `price` meets first)."""
    with ex.sim.engine.lock:
        orders = ex.sim.engine.resting(SYMBOL.replace("/", ""))
        return sum((o.remaining for o in orders if o.side is Side.BUY and (o.price or 0) >= price), start=Decimal(0))


def streaming(runner: JobRunner) -> bool:
    return runner.feed is not None and runner.feed.live


def counter(runner: JobRunner, name: str) -> int:
    assert runner.feed is not None
    return runner.feed.counters[name]


@pytest.fixture
async def jobs(exchange: RunningExchange) -> AsyncIterator[Jobs]:
    async def lookup(exchange_id: str) -> frozenset[str]:
        return frozenset({SYMBOL})

    manager = JobManager(
        identity=Identity.generate(),
        settings=SETTINGS,
        max_jobs=4,
        exchange_api_urls={"binance": exchange.base_url},
        markets_lookup=lookup,
    )
    try:
        yield Jobs(exchange, manager)
    finally:
        exchange.sim.faults.clear()
        await manager.shutdown()


@pytest.mark.parametrize(("endpoint", "half"), [(DEPTH, "market"), (ACCOUNT, "account")])
async def test_a_disconnect_is_reconnected_and_nothing_is_placed_twice(jobs: Jobs, endpoint: str, half: str) -> None:
    runner, key = await jobs.start(f"sf-disconnect-{half}")
    reconnects = counter(runner, "reconnects")
    jobs.fault(FaultKind.STREAM_DISCONNECT, endpoint=endpoint)
    await wait_for(lambda: counter(runner, "reconnects") > reconnects)
    await wait_for(lambda: streaming(runner))
    assert runner.status()["feed"]["mode"] == "streams"
    await jobs.quotes_once(runner, key)
    await jobs.stop(runner, key)


async def test_a_stalled_depth_stream_is_detected_polled_through_and_left(jobs: Jobs) -> None:
    runner, key = await jobs.start("sf-stall")
    stall = jobs.fault(FaultKind.STREAM_STALL, endpoint=DEPTH)  # the depth stream, not the WS API
    # stream_stall_ms is 1 s: the watchdog's probe sees the REST book ahead of the silent stream soon after.
    await wait_for(lambda: not streaming(runner) and counter(runner, "stalls") >= 1, timeout=5)
    feed = runner.status()["feed"]
    assert feed["mode"] == "polling"
    assert feed["market"] == "down"
    assert feed["reason"].startswith("market stream")
    ticks = runner.ticks
    await wait_for(lambda: runner.ticks >= ticks + 3)  # quoting by polling meanwhile
    await jobs.quotes_once(runner, key)
    jobs.ex.sim.faults.remove(stall.fault_id)
    await wait_for(lambda: streaming(runner))
    await jobs.quotes_once(runner, key)
    await jobs.stop(runner, key)


async def test_a_rate_limit_on_the_feeds_own_call_pauses_the_job(jobs: Jobs) -> None:
    # The stall probe is the feed's own REST call: a 429 drawn by it pauses the whole job for its Retry-After, and
    # neither the job nor the feed calls the exchange's REST API again before that pause ends.
    runner, _ = await jobs.start("sf-probe-429")
    calls = jobs.fault(FaultKind.LATENCY, endpoint="/api/v3/*", count=1_000_000, latency_ms=0)
    limited = jobs.fault(FaultKind.RATE_LIMIT, endpoint="/api/v3/depth", count=1, retry_after=3)
    jobs.fault(FaultKind.STREAM_STALL, endpoint=DEPTH)
    await wait_for(lambda: bool(list(jobs.ex.sim.faults.events(fault_id=limited.fault_id))), timeout=10)
    refused_at = next(iter(jobs.ex.sim.faults.events(fault_id=limited.fault_id))).at_ms
    await wait_for(lambda: runner.backoff_until_ms > refused_at, timeout=5)
    pause_end = runner.backoff_until_ms
    assert pause_end - refused_at > 2500, "the pause is the Retry-After"
    await wait_for(lambda: runner.clock() > pause_end + 500, timeout=10)
    early = [
        e.at_ms
        for e in jobs.ex.sim.faults.events(fault_id=calls.fault_id)
        if refused_at + 500 < e.at_ms < pause_end - 100
    ]
    assert early == [], f"{len(early)} REST call(s) during the Retry-After"
    await wait_for(lambda: counter(runner, "stalls") >= 1, timeout=10)  # after the pause, the probe goes on


def engine_top(ex: RunningExchange) -> tuple[Decimal | None, Decimal | None]:
    with ex.sim.engine.lock:
        orders = ex.sim.engine.resting(SYMBOL.replace("/", ""))
        bids = [o.price for o in orders if o.side is Side.BUY and o.price is not None]
        asks = [o.price for o in orders if o.side is Side.SELL and o.price is not None]
    return (max(bids) if bids else None, min(asks) if asks else None)


async def test_a_depth_gap_is_resynced_from_the_snapshot(jobs: Jobs) -> None:
    runner, key = await jobs.start("sf-gap")
    # Past the snapshot sync: a diff skipped while ccxt is still syncing from the REST snapshot is absorbed by that
    # procedure (events before the snapshot are discarded), which is no gap to detect.
    start_events = runner.feed.book_events if runner.feed is not None else 0
    await wait_for(
        lambda: streaming(runner) and runner.feed is not None and runner.feed.book_events >= start_events + 3
    )
    gap = jobs.fault(FaultKind.STREAM_GAP, symbol=SYMBOL, count=1)
    await wait_for(lambda: counter(runner, "gaps") >= 1)
    assert jobs.ex.sim.faults.events(fault_id=gap.fault_id), "the simulator skipped a diff"
    await wait_for(lambda: streaming(runner))

    def same_top() -> bool:  # the resynced book follows the engine's (it moves: wait for a moment they agree)
        assert runner.feed is not None
        book, _ = runner.feed.book()
        return book is not None and (book.bids[0].price, book.asks[0].price) == engine_top(jobs.ex)

    await wait_for(same_top)
    await jobs.quotes_once(runner, key)
    await jobs.stop(runner, key)


async def fills_match(jobs: Jobs, runner: JobRunner, key: Any) -> None:
    """The job booked every trade of its account exactly once (the tracker's ids are the exchange's)."""

    async def same() -> bool:
        return set(await jobs.exchange_trades(key)) == runner.tracker.trade_ids

    await wait_for(same)


def reported_fills(reports: list[SignedReport]) -> list[str]:
    return [f["trade_id"] for r in reports for f in r.report["fills"]]


async def test_dropped_user_events_are_found_by_reconciliation_and_booked_once(jobs: Jobs) -> None:
    runner, key = await jobs.start("sf-drop")
    acct = key.account_id
    drops = [
        jobs.fault(FaultKind.STREAM_DROP, endpoint=ACCOUNT, account=acct, event=event)
        for event in ("executionReport", "outboundAccountPosition")
    ]
    before = set(runner.tracker.trade_ids)
    crossed = await jobs.cross_bid(runner)
    await wait_for(lambda: bool(jobs.ex.sim.faults.events(fault_id=drops[0].fault_id)))  # the stream lost it
    # Every executionReport of the account is dropped, so only the REST reconciliation (every second) can find the
    # fill. (It finds it within the stream's grace, so the feed need not call it missed.)
    await wait_for(lambda: runner.tracker.orders[crossed].filled > 0, timeout=10)
    assert runner.tracker.trade_ids - before
    await fills_match(jobs, runner, key)
    reports = await jobs.stop(runner, key)
    trades = await jobs.exchange_trades(key)
    fills = reported_fills(reports)
    assert sorted(fills) == sorted(trades), "every trade reported, none twice"
    assert runner.tracker.trade_ids == set(trades)


async def test_a_fill_on_both_paths_is_booked_once(jobs: Jobs) -> None:
    runner, key = await jobs.start("sf-both")
    # A zero-latency rule that sees the account's REST trade reads: the simulator records each one.
    reads = jobs.fault(FaultKind.LATENCY, endpoint="/api/v3/myTrades", account=key.account_id, count=10**6)
    crossed = await jobs.cross_bid(runner)
    crossed_at = jobs.ex.sim.clock()
    await wait_for(lambda: runner.tracker.orders[crossed].filled > 0)
    # The stream delivered it; the next REST reconciliations (every second) return it again.
    await wait_for(
        lambda: sum(e.at_ms > crossed_at + 100 for e in jobs.ex.sim.faults.events(fault_id=reads.fault_id)) >= 2
    )
    assert streaming(runner)
    await fills_match(jobs, runner, key)
    assert counter(runner, "missed_fills") == 0, "the stream delivered the fill: none was missed"
    reports = await jobs.stop(runner, key)
    trades = await jobs.exchange_trades(key)
    assert sorted(reported_fills(reports)) == sorted(trades)
    assert runner.tracker.trade_ids == set(trades)


async def test_a_stream_that_never_comes_back_is_polled_through_and_reported(jobs: Jobs) -> None:
    downs = [jobs.fault(FaultKind.HTTP_5XX, endpoint=path, status=503) for path in (MARKET, ACCOUNT)]
    runner, key = await jobs.start("sf-down", live=False)
    await wait_for(lambda: counter(runner, "reconnects") >= 2)
    assert any(jobs.ex.sim.faults.events(fault_id=d.fault_id) for d in downs), "the simulator refused the streams"
    feed = runner.status()["feed"]
    assert feed["mode"] == "polling"
    assert feed["reason"]
    await jobs.quotes_once(runner, key)
    ticks = runner.ticks
    await wait_for(lambda: runner.ticks >= ticks + 5)
    assert not streaming(runner)
    reports = await jobs.stop(runner, key)
    assert sum(r.report["metrics"]["polling_ms"] for r in reports) > 0


async def test_an_expired_subscription_is_renewed(jobs: Jobs) -> None:
    runner, key = await jobs.start("sf-expire")
    expire = jobs.fault(FaultKind.STREAM_EXPIRE, account=key.account_id, count=1)
    await wait_for(lambda: bool(jobs.ex.sim.faults.events(fault_id=expire.fault_id)))
    await wait_for(lambda: counter(runner, "expired") >= 1)
    await wait_for(lambda: streaming(runner))
    await jobs.quotes_once(runner, key)
    await jobs.stop(runner, key)
