"""The executor against the exchange simulator on loopback: tick-to-quote latency (book seen → replacement
orders sent and acknowledged) for 1, 10 and 50 markets run as jobs in one executor process, and the CPU time
the executor spends per market tick.

The simulator runs in its own process (so it does not compete for this interpreter's GIL) with a live market
(noise makers, takers) on 50 synthetic markets; each job quotes 2 levels a side on its own market with a
200 ms tick and `refresh_tolerance` 0, so every tick on which the market moved replaces orders. CPU is the
executor process's own (`time.process_time`).

Prints `BENCH <name> <value> <unit>` lines.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SECONDS = 8.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def markets(n: int) -> list:
    from devnet.exchange.config import AgentConfig, MarketConfig, default_markets

    template = next(m for m in default_markets() if m.spec.base == "MMT")
    return [
        MarketConfig(
            replace(template.spec, base=f"BM{i:02d}"),
            AgentConfig(
                initial_price=Decimal("0.5"),
                volatility=Decimal("0.3"),
                maker_size=Decimal(2000),
                taker_size=Decimal(300),
                taker_intensity=Decimal(2),
                maker_spread_bps=Decimal(20),
                level_step_bps=Decimal(10),
            ),
        )
        for i in range(n)
    ]


def admin(base_url: str, path: str, body: dict) -> dict:
    import json
    import urllib.request

    request = urllib.request.Request(
        base_url + path, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


async def run(n_jobs: int, base_url: str) -> tuple[list[float], float, int]:
    from executor.engine.runner import Credentials, RunnerSettings
    from executor.identity import Identity
    from executor.jobs.manager import JobManager
    from tests.executor.harness import job_spec

    async def lookup(exchange_id: str) -> frozenset[str]:
        return frozenset(f"BM{i:02d}/USDT" for i in range(50))

    manager = JobManager(
        identity=Identity.generate(),
        settings=RunnerSettings(tick_ms=200),
        max_jobs=100,
        exchange_api_urls={"binance": base_url},
        markets_lookup=lookup,
    )
    runners = []
    for i in range(n_jobs):
        key = admin(
            base_url,
            "/_devnet/accounts",
            {"permissions": ["read", "trade"], "balances": {f"BM{i:02d}": "100000", "USDT": "100000"}},
        )
        spec = job_spec(
            f"bench-{n_jobs}-{i}",
            symbol=f"BM{i:02d}/USDT",
            params={"refresh_tolerance": "0", "max_base": None, "min_base": None, "order_amount": "100"},
            risk={"max_orders_per_second": 100, "max_open_orders": 20},
        )
        spec["strategy"]["params"] = {k: v for k, v in spec["strategy"]["params"].items() if v is not None}
        runner, _ = await manager.start(spec)
        runner.provide(Credentials(key["api_key"], key["secret"]))
        runners.append(runner)
    while not all(r.state == "running" for r in runners):
        await asyncio.sleep(0.05)
    for r in runners:
        r.tick_to_quote_ms.clear()
    ticks0 = sum(r.ticks for r in runners)
    cpu0 = time.process_time()
    await asyncio.sleep(SECONDS)
    cpu = time.process_time() - cpu0
    ticks = sum(r.ticks for r in runners) - ticks0
    latencies = [v for r in runners for v in r.tick_to_quote_ms]
    await manager.shutdown()
    return latencies, cpu, ticks


def serve_exchange() -> None:
    """Child process: the simulator with 50 markets; prints its URL, runs until stdin closes."""
    from devnet.exchange.config import SimConfig
    from devnet.exchange.fixtures import run_exchange

    with run_exchange(SimConfig(markets=markets(50), run_market=True, tick_seconds=Decimal("0.1"))) as ex:
        print(ex.base_url, flush=True)
        sys.stdin.read()


def main() -> None:
    import subprocess

    from executor.logging import configure

    configure(level="ERROR", version="bench")
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve-exchange"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        base_url = child.stdout.readline().strip()
        for n in (1, 10, 50):
            latencies, cpu, ticks = asyncio.run(run(n, base_url))
            if not latencies:
                print(f"BENCH executor_tick_to_quote_{n}_markets_p50 n/a ms (no replacement in {SECONDS} s)")
                continue
            print(f"BENCH executor_tick_to_quote_{n}_markets_p50 {statistics.median(latencies):.2f} ms")
            print(f"BENCH executor_tick_to_quote_{n}_markets_p99 {pct(latencies, 0.99):.2f} ms")
            print(f"BENCH executor_cpu_per_market_tick_{n}_markets {cpu / max(ticks, 1) * 1000:.3f} ms")
            print(f"BENCH executor_market_ticks_per_s_{n}_markets {ticks / SECONDS:.1f} ticks/s")
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(30)


if __name__ == "__main__":
    serve_exchange() if "--serve-exchange" in sys.argv else main()
