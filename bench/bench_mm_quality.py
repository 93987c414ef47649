"""Market-making quality: the same baseline job quoted on streams and by polling once a second, on the
simulator's live market with its informed traders, measured from what the exchange saw.

Two runs, one after the other, each on a fresh simulator process started with the same seed and market:
(1) `RunnerSettings(streams=True, tick_ms=1000)` — the job requotes on every book change (when the exchange's
streams are live; otherwise the runner falls back to polling, and the bench says which mode it really ran in);
(2) `RunnerSettings(streams=False, tick_ms=1000)` — a REST pass once a second, as Hummingbot's pure market
making does. `MM_QUALITY_SECONDS` sets the length of each run (default 180 s).

Why these parameters (one market, MMT/USDT, re-tuned here; the same for both runs):

- **A fair price that moves**: GBM volatility 0.3 per √day is ≈ 10 bps per √s. Over one 100 ms market step the
  fair moves ≈ 3 bps (σ), over a 1 s polling interval ≈ 10 bps, with excursions past 15 bps in a good share
  of the seconds. The informed traders take any quote more than 5 bps on the wrong side of the fair price, so a
  bid quoted 10 bps under the mid is picked off once the fair falls ≈ 15 bps below the mid it was quoted from:
  rare for a job that requotes within a step or two, common for one that looks once a second. That is the
  difference this bench is there to show (markouts, PnL).
- **Fills that happen**: the noise makers quote 10 levels of 300 MMT from 5 bps around the fair price in 5 bps
  steps, requoted (so re-queued) every step; the job quotes 3 levels of 100 MMT at 10, 15 and 20 bps, keeping
  its queue priority at a price while its order rests. Poisson takers (2 a second, mean 400 MMT) walk through
  the noise makers' first level into the job's about half the time: roughly one fill a second, plus those of the
  informed traders and the sweeps. The noise makers quoting inside the job keep the public mid at the fair
  price, so the job's reference (the mid) is not its own quotes.
- **A tick fine enough to express a bps**: 0.00001 at 0.5 is 0.2 bps (the default market's 0.0001 is 2 bps).
- **Fees**: a 1 bp maker fee (a market maker's tier): small against a 10 bps spread, yet there to account.
- **Caps**: 3000 MMT and 1500 USDT to start, `min_base` 1000 and `max_base` 5000 — room for the random walk
  of a few hundred fills, while a job that keeps buying what falls meets them; `refresh_tolerance` 3 bps (≈ one
  step's move), so the streamed job follows the market and the polled one at least once a second. The rate
  and open-order limits are set above what either mode asks for, so neither is throttled by its own gates.

The same seed gives the same fair-price path in both runs (the market's random draws do not depend on anyone's
orders), up to the few hundred milliseconds it takes to start the job on a fresh simulator.

Measured from the exchange, not from the executor: once a second the job's open orders (REST `openOrders`
with its key) and the public book at the same instant (two-sided uptime, depth within 1 % of the mid); the
public mid every 100 ms (REST depth), kept on for `TAIL_S` after the job stopped so the 10 s markouts of the
last fills are covered; at the end the job's fills (`myTrades`). Definitions: `bench/mm_quality.py` and
docs/executor-streams.md. Prints `BENCH <name> <value> <unit>` lines (`n/a` when a run had nothing to measure)
and one `#` line per run with the feed mode the job really ran in.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
import time
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.mm_quality import (
    BandSample,
    Fill,
    MidSeries,
    Pnl,
    Resting,
    band_sample,
    difference,
    excursion,
    inventory_path,
    markout,
    mean_depth,
    mid_of,
    ordered,
    pnl,
    ratio,
    show,
    uptime_pct,
    volume_base,
)

SECONDS = float(os.environ.get("MM_QUALITY_SECONDS", "180"))
SEED = 7
SYMBOL, MARKET_ID, BASE, QUOTE = "MMT/USDT", "MMTUSDT", "MMT", "USDT"
BASE0, QUOTE0 = Decimal(3000), Decimal(1500)
MIN_BASE, MAX_BASE = Decimal(1000), Decimal(5000)
MID_PERIOD_S = 0.1
BAND_PERIOD_S = 1.0
TAIL_S = 11.0
MODES = ("streams", "poll1s")

PARAMS: dict[str, Any] = {
    "bid_spread": "0.001",
    "ask_spread": "0.001",
    "order_amount": "100",
    "levels": 3,
    "level_spread": "0.0005",
    "refresh_tolerance": "0.0003",
    "max_base": str(MAX_BASE),
    "min_base": str(MIN_BASE),
}
RISK: dict[str, Any] = {
    "max_open_orders": 12,
    "max_orders_per_second": 60,
    "max_exposure_quote": "100000",
    "max_loss_quote": "500",
    "max_drawdown_quote": "500",
    "max_consecutive_rejects": 20,
    "stale_book_seconds": 5,
    "dead_man_seconds": 5,
}


def market() -> Any:
    from devnet.exchange.config import AgentConfig, MarketConfig, default_markets

    template = next(m for m in default_markets() if m.spec.base == BASE)
    return MarketConfig(
        replace(template.spec, tick_size=Decimal("0.00001"), maker_fee=Decimal("0.0001")),
        AgentConfig(
            initial_price=Decimal("0.5"),
            volatility=Decimal("0.3"),
            maker_levels=10,
            maker_spread_bps=Decimal(5),
            level_step_bps=Decimal(5),
            maker_size=Decimal(300),
            taker_intensity=Decimal(2),
            taker_size=Decimal(400),
            arb_threshold_bps=Decimal(5),
        ),
    )


def serve_exchange() -> None:
    """Child process: a fresh simulator with the one market, stepping every 100 ms; prints its URL, runs until
    stdin closes."""
    from devnet.exchange.config import SimConfig
    from devnet.exchange.fixtures import run_exchange

    config = SimConfig(markets=[market()], seed=SEED, run_market=True, tick_seconds=Decimal("0.1"))
    with run_exchange(config) as ex:
        print(ex.base_url, flush=True)
        sys.stdin.read()


def admin(base_url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    import json
    import urllib.request

    request = urllib.request.Request(
        base_url + path, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- one run -----------------------------------------------------------------------------------------------------


@dataclass
class Run:
    mode: str
    samples: list[BandSample] = field(default_factory=list)
    mids: MidSeries = field(default_factory=MidSeries)
    fills: list[Fill] = field(default_factory=list)
    feed_modes: list[str] = field(default_factory=list)
    feed: dict[str, Any] = field(default_factory=dict)
    mark0: Decimal | None = None
    mark_end: Decimal | None = None
    job_state: str = ""
    job_reason: str | None = None
    requotes: int = 0
    error: str | None = None


def _book_mid(raw: dict[str, Any]) -> Decimal | None:
    bids, asks = raw.get("bids") or [], raw.get("asks") or []
    return mid_of(Decimal(bids[0][0]) if bids else None, Decimal(asks[0][0]) if asks else None)


async def _public_mid(client: Any) -> Decimal | None:
    return _book_mid(await client.publicGetDepth({"symbol": MARKET_ID, "limit": 5}))


def _resting(raw: list[dict[str, Any]]) -> list[Resting]:
    return [
        Resting(o["side"].lower(), Decimal(o["price"]), Decimal(o["origQty"]) - Decimal(o["executedQty"])) for o in raw
    ]


async def _every(period_s: float, body: Any, stop: asyncio.Event, *, jitter: random.Random | None = None) -> None:
    """Call `body` once per period until `stop`, on a fixed schedule (no drift); a failed call is a missed sample.

    With `jitter`, each call lands at a random point of its period (stratified sampling): a sampler in phase with
    a job that requotes once a second would otherwise see the same moment of its cycle every time — always just
    after a requote, or always in the instant between its cancels and its new orders."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    k = 0
    while not stop.is_set():
        due = start + (k + (jitter.random() if jitter else 0.0)) * period_s
        k += 1
        delay = due - loop.time()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                return
        with contextlib.suppress(Exception):
            await body()


async def _fetch_fills(client: Any) -> list[Fill]:
    rows: list[dict[str, Any]] = []
    from_id = 0
    while True:
        batch = await client.privateGetMyTrades({"symbol": MARKET_ID, "fromId": from_id, "limit": 1000})
        rows += batch
        if len(batch) < 1000:
            break
        from_id = int(batch[-1]["id"]) + 1
    return ordered(
        Fill(
            ts_ms=int(r["time"]),
            trade_id=int(r["id"]),
            side="buy" if r["isBuyer"] in (True, "true") else "sell",
            price=Decimal(r["price"]),
            amount=Decimal(r["qty"]),
            fee=Decimal(r["commission"]),
            fee_asset=r["commissionAsset"],
        )
        for r in rows
    )


def quiet_unretrieved_network_errors() -> None:
    """ccxt leaves the future of a refused WebSocket connection unretrieved (an exchange without a user data
    stream answers the executor's subscription with a 404, retried with a backoff); asyncio would print each one
    when it is collected. The feed counts those attempts (`reconnects`): the bench says so once, in its line."""
    import ccxt

    loop = asyncio.get_running_loop()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if isinstance(context.get("exception"), ccxt.NetworkError) and "never retrieved" in context.get("message", ""):
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


async def run(mode: str, base_url: str) -> Run:
    from devnet.exchange.fixtures import make_ccxt
    from executor.engine.runner import Credentials, JobState, RunnerSettings
    from executor.identity import Identity
    from executor.jobs.manager import JobManager
    from tests.executor.harness import job_spec

    async def lookup(exchange_id: str) -> frozenset[str]:
        return frozenset({SYMBOL})

    quiet_unretrieved_network_errors()
    out = Run(mode)
    manager = JobManager(
        identity=Identity.generate(),
        settings=RunnerSettings(streams=mode == "streams", tick_ms=1000),
        max_jobs=1,
        exchange_api_urls={"binance": base_url},
        markets_lookup=lookup,
    )
    key = admin(
        base_url,
        "/_devnet/accounts",
        {"permissions": ["read", "trade"], "balances": {BASE: str(BASE0), QUOTE: str(QUOTE0)}},
    )
    observer = make_ccxt(base_url, key["api_key"], key["secret"], async_=True)
    stop_band, stop_mids = asyncio.Event(), asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    try:
        await observer.load_markets()
        runner, _ = await manager.start(job_spec(f"mmq-{mode}", symbol=SYMBOL, params=PARAMS, risk=RISK))

        async def sample_mid() -> None:
            t0 = now_ms()
            mid = await _public_mid(observer)
            out.mids.add((t0 + now_ms()) // 2, mid)

        async def sample_band() -> None:
            orders, book = await asyncio.gather(
                observer.privateGetOpenOrders({"symbol": MARKET_ID}),
                observer.publicGetDepth({"symbol": MARKET_ID, "limit": 5}),
            )
            out.samples.append(band_sample(_resting(orders), _book_mid(book)))
            out.feed_modes.append(str(runner.status()["feed"]["mode"]))

        tasks.append(asyncio.create_task(_every(MID_PERIOD_S, sample_mid, stop_mids)))
        runner.provide(Credentials(key["api_key"], key["secret"]))
        deadline = time.monotonic() + 30
        while runner.state is not JobState.RUNNING:
            if runner.state in (JobState.FAILED, JobState.STOPPED) or time.monotonic() > deadline:
                raise RuntimeError(f"the job did not start: {runner.state} {runner.reason}")
            await asyncio.sleep(0.05)
        out.mark0 = await _public_mid(observer)
        jitter = random.Random(SEED)
        tasks.append(asyncio.create_task(_every(BAND_PERIOD_S, sample_band, stop_band, jitter=jitter)))
        await asyncio.sleep(SECONDS)
        stop_band.set()
        status = runner.status()
        out.feed, out.requotes = dict(status["feed"]), int(status["requotes"])
        out.job_state, out.job_reason = str(status["state"]), status["reason"]
        await manager.shutdown()
        out.mark_end = await _public_mid(observer)
        await asyncio.sleep(TAIL_S)  # the market goes on: the last fills' 10 s markouts need the mid after them
        stop_mids.set()
        await asyncio.gather(*tasks)
        out.fills = await _fetch_fills(observer)
    except Exception as exc:  # a run that broke still prints its lines (n/a where nothing was measured)
        out.error = f"{type(exc).__name__}: {exc}"[:300]
    finally:
        stop_band.set()
        stop_mids.set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        with contextlib.suppress(Exception):
            await manager.shutdown(timeout=10)
        with contextlib.suppress(Exception):
            await observer.close()
    return out


def run_on_fresh_exchange(mode: str) -> Run:
    import subprocess

    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve-exchange"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        base_url = child.stdout.readline().strip()
        if not base_url:
            return Run(mode, error="the simulator did not start")
        return asyncio.run(run(mode, base_url))
    finally:
        if child.stdin is not None:
            child.stdin.close()
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(10)


# -- figures -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    uptime: Decimal | None
    depth: Decimal | None
    fills: int
    volume: Decimal
    pnl: Pnl | None
    markout_1s: Decimal | None
    markout_10s: Decimal | None
    excursion: Decimal | None
    beyond_caps: Decimal | None
    low: Decimal | None
    high: Decimal | None


def figures(r: Run) -> Figures:
    fills = r.fills
    money = (
        pnl(fills, base=BASE, quote=QUOTE, base0=BASE0, mark0=r.mark0, mark_end=r.mark_end)
        if r.mark0 is not None and r.mark_end is not None and r.error is None
        else None
    )
    path = inventory_path(fills, base=BASE, quote=QUOTE, base0=BASE0)
    exc = excursion(path, min_base=MIN_BASE, max_base=MAX_BASE) if fills else None
    return Figures(
        uptime=uptime_pct(r.samples),
        depth=mean_depth(r.samples),
        fills=len(fills),
        volume=volume_base(fills),
        pnl=money,
        markout_1s=markout(fills, r.mids, 1_000),
        markout_10s=markout(fills, r.mids, 10_000),
        excursion=exc.largest if exc else None,
        beyond_caps=exc.beyond_caps if exc else None,
        low=exc.low if exc else None,
        high=exc.high if exc else None,
    )


def feed_line(r: Run) -> str:
    counts = {m: r.feed_modes.count(m) for m in sorted(set(r.feed_modes))}
    fallbacks = sum(1 for a, b in zip(r.feed_modes, r.feed_modes[1:], strict=False) if a == "streams" != b)
    share = ", ".join(f"{m} {n}/{len(r.feed_modes)} samples" for m, n in counts.items()) or "no samples"
    counters = {
        k: v
        for k, v in r.feed.items()
        if k in ("market", "account", "reconnects", "gaps", "stalls", "expired", "missed_fills", "timeouts")
    }
    final = r.feed.get("mode", "?")
    reason = r.feed.get("reason")
    text = f"# {r.mode} run: feed mode {final} at the end ({share}), {fallbacks} fallbacks from streams"
    if counters:
        text += ", " + ", ".join(f"{k} {v}" for k, v in counters.items())
    if reason:
        text += f"; reason: {reason}"
    text += f"; job {r.job_state or '?'}" + (f" ({r.job_reason})" if r.job_reason else "")
    text += f", {r.requotes} requotes"
    if r.error:
        text += f"; RUN FAILED: {r.error}"
    return text


def print_run(r: Run, f: Figures) -> None:
    m = r.mode
    p = f.pnl
    print(feed_line(r))
    print(f"BENCH mm_two_sided_uptime_pct_{m} {show(f.uptime, 1)} %")
    print(f"BENCH mm_depth_in_band_quote_{m} {show(f.depth, 2)} {QUOTE}")
    print(f"BENCH mm_fills_{m} {f.fills if r.error is None else 'n/a'} fills")
    print(f"BENCH mm_volume_base_{m} {show(f.volume if f.fills else None, 1)} {BASE}")
    print(f"BENCH mm_realized_pnl_quote_{m} {show(p.realized if p else None, 4)} {QUOTE}")
    print(f"BENCH mm_unrealized_pnl_quote_{m} {show(p.unrealized if p else None, 4)} {QUOTE}")
    print(f"BENCH mm_fees_quote_{m} {show(p.fees_quote if p and f.fills else None, 4)} {QUOTE}")
    print(f"BENCH mm_markout_1s_bps_{m} {show(f.markout_1s, 2)} bps")
    print(f"BENCH mm_markout_10s_bps_{m} {show(f.markout_10s, 2)} bps")
    print(f"BENCH mm_inventory_excursion_base_{m} {show(f.excursion, 1)} {BASE}")
    print(f"BENCH mm_inventory_beyond_caps_base_{m} {show(f.beyond_caps, 1)} {BASE}")
    print(
        f"# {m} inventory: started {BASE0} {BASE}, held {show(f.low, 1)}..{show(f.high, 1)}; "
        f"caps min_base {MIN_BASE} max_base {MAX_BASE}; marks {show(r.mark0, 5)} → {show(r.mark_end, 5)}; "
        f"{len(r.samples)} band samples, {len(r.mids.times)} mid samples"
    )


def print_comparison(s: Figures, p: Figures) -> None:
    print(f"BENCH mm_two_sided_uptime_pct_ratio_streams_over_poll1s {show(ratio(s.uptime, p.uptime), 3)} x")
    print(f"BENCH mm_depth_in_band_quote_ratio_streams_over_poll1s {show(ratio(s.depth, p.depth), 3)} x")
    # Markouts are signed (either may be negative): their ratio means nothing, their difference does.
    for h, a, b in (("1s", s.markout_1s, p.markout_1s), ("10s", s.markout_10s, p.markout_10s)):
        print(f"BENCH mm_markout_{h}_bps_diff_streams_minus_poll1s {show(difference(a, b), 2)} bps")


def main() -> None:
    from executor.logging import configure

    configure(level="ERROR", version="bench")
    print(
        f"# config: {SYMBOL} seed {SEED}, {SECONDS:g} s a run; fair GBM vol 0.3/sqrt(day), 100 ms steps; "
        f"job: 3 levels a side of 100 {BASE} at 10/15/20 bps, refresh 3 bps, tick_ms 1000"
    )
    results = {}
    for mode in MODES:
        r = run_on_fresh_exchange(mode)
        f = figures(r)
        print_run(r, f)
        results[mode] = f
    print_comparison(results["streams"], results["poll1s"])


if __name__ == "__main__":
    serve_exchange() if "--serve-exchange" in sys.argv else main()
