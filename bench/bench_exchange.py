"""The exchange simulator through ccxt on loopback: orders per second, and the median and p99 of create_order
and cancel_order round trips (ccxt's async binance client on loopback; orders one after another, then 8 at a
time). Limit orders that rest (no fills), so the figures are the request path: ccxt, HTTP, signature check,
engine, JSON.

Prints `BENCH <name> <value> <unit>` lines.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

if TYPE_CHECKING:
    from devnet.exchange.fixtures import RunningExchange

N = 400
CONCURRENCY = 8


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(ex: RunningExchange) -> None:
    from devnet.exchange.keys import Permission

    key = ex.sim.create_account(
        permissions=frozenset({Permission.TRADE}), balances={"USDT": Decimal(10) ** 9, "BTC": Decimal(10) ** 4}
    )
    client = ex.make_ccxt(key.key, key.secret, async_=True)
    try:
        await client.load_markets()
        for i in range(20):  # warm up connections and code paths
            o = await client.create_order("BTC/USDT", "limit", "buy", "0.001", "50000", {"clientOrderId": f"w{i}"})
            await client.cancel_order(o["id"], "BTC/USDT")
        create, cancel = [], []
        for i in range(N):
            t0 = time.perf_counter()
            o = await client.create_order("BTC/USDT", "limit", "buy", "0.001", "50000", {"clientOrderId": f"b{i}"})
            t1 = time.perf_counter()
            await client.cancel_order(o["id"], "BTC/USDT")
            t2 = time.perf_counter()
            create.append((t1 - t0) * 1000)
            cancel.append((t2 - t1) * 1000)
        start = time.perf_counter()
        for i in range(N):
            await client.create_order("BTC/USDT", "limit", "sell", "0.001", "70000", {"clientOrderId": f"s{i}"})
            if i % 100 == 99:  # stay under MAX_NUM_ORDERS (200 open per symbol), as a real client must
                await client.cancel_all_orders("BTC/USDT")
        sequential = time.perf_counter() - start

        async def place(i: int) -> None:
            await client.create_order("BTC/USDT", "limit", "sell", "0.001", "70000", {"clientOrderId": f"c{i}"})

        start = time.perf_counter()
        for batch in range(0, N, CONCURRENCY):
            await asyncio.gather(*(place(i) for i in range(batch, batch + CONCURRENCY)))
            if batch % 100 == 96:
                await client.cancel_all_orders("BTC/USDT")
        concurrent = time.perf_counter() - start
    finally:
        await client.close()
    print(f"BENCH exchange_create_order_p50 {statistics.median(create):.3f} ms")
    print(f"BENCH exchange_create_order_p99 {pct(create, 0.99):.3f} ms")
    print(f"BENCH exchange_cancel_order_p50 {statistics.median(cancel):.3f} ms")
    print(f"BENCH exchange_cancel_order_p99 {pct(cancel, 0.99):.3f} ms")
    print(f"BENCH exchange_orders_per_second_sequential {N / sequential:.0f} orders/s")
    print(f"BENCH exchange_orders_per_second_concurrent{CONCURRENCY} {N / concurrent:.0f} orders/s")


def main() -> None:
    import logging

    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    from devnet.exchange.fixtures import run_exchange

    with run_exchange() as ex:
        ex.sim.market.seed_books()
        asyncio.run(measure(ex))


if __name__ == "__main__":
    main()
