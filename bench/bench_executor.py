"""The executor on streams against the exchange simulator on loopback: how fast one process answers a change of
the book, and how many markets it keeps up with.

The simulator runs in its own process (so it does not compete for this interpreter's GIL) with a live market
(noise makers requoting every step, takers, informed traders) on synthetic markets; each job in the one executor
process quotes 2 levels a side on its own market, on the exchange's streams (depth, user data) with orders over
its WebSocket API.

- `executor_tick_to_quote_<N>_markets_p50|p99` — from a depth update's arrival at the executor (the moment ccxt
  receives it, before it applies it) to the last replacement order written to the socket: the executor's own
  processing, ccxt's and every other market's in the same process included. Only updates that led to replacement
  orders count. An update that arrived while the same market's previous requote was still waiting for the
  exchange's answers is, by the coalescing rule (at most one requote in flight per market), taken up when those
  answers are in: its own processing starts then, and the wait is the exchange's time, counted in the next figure.
- `executor_quote_ack_<N>_markets_p99` — from the update's arrival (waits included) until the exchange acknowledged
  every one of the replacement orders.
- `executor_cpu_per_market_event_<N>_markets` — the executor process's CPU time (`time.process_time`) over the
  book updates its jobs received, everything included (ccxt parsing every depth and user data message, the
  strategy, the orders, the REST reconciliation).
- `executor_markets_sustained_one_process` — the most markets one process keeps with each book moving once a
  second, own-processing p99 under 5 ms and no backlog (the event loop's lag p99 under 5 ms and every job still
  on streams), tried on a rising ladder of sizes (`BENCH_SUSTAIN`: 25, 50, 75, 100, 150, 200, then steps of 100)
  up to the first that did not keep up (0 when even the first did not).

The markets move several times a second for the first four figures (`STEP_SECONDS`); the job's
`refresh_tolerance` is 0.1 % (`BENCH_REFRESH_TOLERANCE`), Hummingbot's `order_refresh_tolerance_pct`: an order is
replaced when the mid moved it more than that from where the strategy wants it. The event loop is uvloop, as in the
executor service (`BENCH_LOOP=asyncio` for the standard loop).

Prints `BENCH <name> <value> <unit>` lines. `BENCH_PROFILE=FILE` writes a cProfile of each measurement window.
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SECONDS = 10.0
STEP_SECONDS = "0.25"  # each market's book moves 4 times a second
SIZES = tuple(int(n) for n in os.environ.get("BENCH_SIZES", "1,10,50,200").split(","))
SUSTAIN_LADDER = "25,50,75,100,150,200,300,400,500"
SUSTAIN_STEPS = tuple(int(n) for n in os.environ.get("BENCH_SUSTAIN", SUSTAIN_LADDER).split(",") if n)
TARGET_P99_MS = 5.0
REFRESH_TOLERANCE = os.environ.get("BENCH_REFRESH_TOLERANCE", "0.001")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def markets(n: int) -> list:
    from devnet.exchange.config import AgentConfig, MarketConfig, default_markets

    template = next(m for m in default_markets() if m.spec.base == "MMT")
    return [
        MarketConfig(
            replace(template.spec, base=f"BM{i:03d}"),
            AgentConfig(
                initial_price=Decimal("0.5"),
                volatility=Decimal("0.3"),
                maker_size=Decimal(2000),
                taker_size=Decimal(300),
                taker_intensity=Decimal("0.5"),
                maker_spread_bps=Decimal(20),
                level_step_bps=Decimal(10),
            ),
        )
        for i in range(n)
    ]


def admin(base_url: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        base_url + path, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


async def loop_lag(samples: list[float], stop: asyncio.Event) -> None:
    """How late the event loop runs a 10 ms timer: a loop that keeps up runs it on time."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        due = loop.time() + 0.01
        await asyncio.sleep(0.01)
        samples.append((loop.time() - due) * 1000)


async def run(n_jobs: int, base_url: str, n_markets: int, seconds: float) -> dict[str, float]:
    from executor.engine.runner import Credentials, RunnerSettings
    from executor.identity import Identity
    from executor.jobs.manager import JobManager
    from tests.executor.harness import job_spec

    async def lookup(exchange_id: str) -> frozenset[str]:
        return frozenset(f"BM{i:03d}/USDT" for i in range(n_markets))

    manager = JobManager(
        identity=Identity.generate(),
        settings=RunnerSettings(tick_ms=1000, streams=True),
        max_jobs=n_jobs + 10,
        exchange_api_urls={"binance": base_url},
        markets_lookup=lookup,
    )
    runners = []
    for i in range(n_jobs):
        key = admin(
            base_url,
            "/_devnet/accounts",
            {"permissions": ["read", "trade"], "balances": {f"BM{i:03d}": "100000", "USDT": "100000"}},
        )
        spec = job_spec(
            f"bench-{n_jobs}-{i}",
            symbol=f"BM{i:03d}/USDT",
            params={"refresh_tolerance": REFRESH_TOLERANCE, "max_base": None, "min_base": None, "order_amount": "100"},
            risk={"max_orders_per_second": 100, "max_open_orders": 20},
        )
        spec["strategy"]["params"] = {k: v for k, v in spec["strategy"]["params"].items() if v is not None}
        runner, _ = await manager.start(spec)
        runner.provide(Credentials(key["api_key"], key["secret"]))
        runners.append(runner)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(r.feed is not None and r.feed.live for r in runners):
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # the first requotes after start are not the steady state
    for r in runners:
        r.tick_to_quote_ms.clear()
        r.quote_ack_ms.clear()
    events0 = sum(r.feed.book_events for r in runners if r.feed is not None)
    lags: list[float] = []
    pauses: list[float] = []  # the cyclic garbage collector's pauses in the window, ms
    gc_started: list[int] = [0]

    def gc_watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter_ns()
        else:
            pauses.append((time.perf_counter_ns() - gc_started[0]) / 1e6)

    gc.callbacks.append(gc_watch)
    stop = asyncio.Event()
    lag_task = asyncio.create_task(loop_lag(lags, stop))
    profile = cProfile.Profile() if os.environ.get("BENCH_PROFILE") else None
    cpu0 = time.process_time()
    if profile is not None:
        profile.enable()
    await asyncio.sleep(seconds)
    if profile is not None:
        profile.disable()
        profile.dump_stats(os.environ["BENCH_PROFILE"])  # the measurement window only: `python -m pstats FILE`
    cpu = time.process_time() - cpu0
    gc.callbacks.remove(gc_watch)
    stop.set()
    await lag_task
    events = sum(r.feed.book_events for r in runners if r.feed is not None) - events0
    live = sum(1 for r in runners if r.feed is not None and r.feed.live)
    fallbacks = sum(r.feed.counters["reconnects"] for r in runners if r.feed is not None)
    own = [v for r in runners for v in r.tick_to_quote_ms]
    acks = [v for r in runners for v in r.quote_ack_ms]
    await manager.shutdown()
    return {
        "own_p50": statistics.median(own) if own else float("nan"),
        "own_p99": pct(own, 0.99) if own else float("nan"),
        "ack_p99": pct(acks, 0.99) if acks else float("nan"),
        "cpu_per_event_ms": cpu / max(events, 1) * 1000,
        "events_per_s": events / seconds,
        "lag_p99": pct(lags, 0.99) if lags else float("nan"),
        "live": live,
        "requotes": len(own),
        "fallbacks": fallbacks,
        "gc_pauses": len(pauses),
        "gc_max_ms": max(pauses, default=0.0),
        "gc_total_ms": sum(pauses),
    }


def serve_exchange(n_markets: int, step: str) -> None:
    """Child process: the simulator; prints its URL, runs until stdin closes."""
    from devnet.exchange.config import SimConfig
    from devnet.exchange.fixtures import run_exchange

    config = SimConfig(markets=markets(n_markets), run_market=True, tick_seconds=Decimal(step))
    with run_exchange(config) as ex:
        print(ex.base_url, flush=True)
        sys.stdin.read()


class Exchange:
    def __init__(self, n_markets: int, step: str) -> None:
        self.child = subprocess.Popen(
            [sys.executable, __file__, "--serve-exchange", str(n_markets), step],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.child.stdout is not None
        self.base_url = self.child.stdout.readline().strip()

    def close(self) -> None:
        if self.child.stdin is not None:
            self.child.stdin.close()
        self.child.wait(60)


def main() -> None:
    from executor import runtime
    from executor.logging import configure

    # As the executor service runs (executor/runtime.py); BENCH_LOOP=asyncio and BENCH_GC=default to compare.
    runtime.configure(loop=os.environ.get("BENCH_LOOP", "uvloop"), tune_gc=os.environ.get("BENCH_GC") != "default")

    configure(level="ERROR", version="bench")
    for n in SIZES:
        exchange = Exchange(n, STEP_SECONDS)  # a simulator with just these markets: its own load stays small
        try:
            r = asyncio.run(run(n, exchange.base_url, n, SECONDS))
        finally:
            exchange.close()
        print(
            f"# {n} markets: {r['events_per_s']:.0f} book events/s, {r['requotes']} requotes, "
            f"{r['live']}/{n} jobs on streams ({r['fallbacks']} fallbacks), loop lag p99 {r['lag_p99']:.2f} ms, "
            f"{r['gc_pauses']} gc pauses (longest {r['gc_max_ms']:.2f} ms, {r['gc_total_ms']:.0f} ms in all)"
        )
        print(f"BENCH executor_tick_to_quote_{n}_markets_p50 {r['own_p50']:.2f} ms")
        print(f"BENCH executor_tick_to_quote_{n}_markets_p99 {r['own_p99']:.2f} ms")
        print(f"BENCH executor_quote_ack_{n}_markets_p99 {r['ack_p99']:.2f} ms")
        print(f"BENCH executor_cpu_per_market_event_{n}_markets {r['cpu_per_event_ms']:.3f} ms")
    sustained = 0
    for n in SUSTAIN_STEPS:
        exchange = Exchange(n, "1.0")
        try:
            r = asyncio.run(run(n, exchange.base_url, n, SECONDS))
        finally:
            exchange.close()
        ok = r["own_p99"] < TARGET_P99_MS and r["lag_p99"] < TARGET_P99_MS and r["live"] == n
        print(
            f"# sustained {n} markets at 1 update/s: own p99 {r['own_p99']:.2f} ms, loop lag p99 "
            f"{r['lag_p99']:.2f} ms, {r['live']}/{n} on streams, {r['events_per_s']:.0f} events/s -> "
            f"{'kept up' if ok else 'did not keep up'}"
        )
        if not ok:
            break
        sustained = n
    print(f"BENCH executor_markets_sustained_one_process {sustained} markets")


if __name__ == "__main__":
    if "--serve-exchange" in sys.argv:
        at = sys.argv.index("--serve-exchange")
        serve_exchange(int(sys.argv[at + 1]), sys.argv[at + 2])
    else:
        main()
