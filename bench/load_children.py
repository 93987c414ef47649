"""The processes `bench/bench_load.py` starts for its ingestion figure, each printing its URL and serving until its
stdin closes:

- `python bench/load_children.py exchange` — the exchange simulator with its live market (`live_exchange`, the
  executor tests' busy MMT/USDT market);
- `python bench/load_children.py executor CONTROLLER_KEY REPORT_MS SAMPLE_MS EXCHANGE_URL MAX_JOBS` — one executor,
  the app `python -m executor` serves (uvloop, its own process), pinned to the controller key. Only here, in the
  bench's own executor processes, its jobs' report windows are `REPORT_MS` and their book samples `SAMPLE_MS`
  apart instead of the spec's (which the wire bounds to 10 s at least): a backlog of signed reports builds in
  seconds. Everything else — the chain, the signatures, the contents — is the executor's own;
- `python bench/load_children.py close-exchange PARTICIPANTS SEED RPC_URL TOKENS_JSON HOT_KEY` — the simulator on
  the chain (so that every account has deposit addresses, the link keys), no market running, and `PARTICIPANTS`
  accounts, each resting one bid and one ask on MMT/USDT (placed through its matching engine, 10 to
  20 ticks from 0.5, sizes drawn from SEED): what the epoch close's cross-check asks about. After its URL it prints
  one JSON line, the accounts' keys and orders.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def serve_exchange() -> None:
    from tests.executor.harness import live_exchange

    with live_exchange() as ex:
        print(ex.base_url, flush=True)
        sys.stdin.read()


def serve_close_exchange(participants: int, seed: int, rpc_url: str, tokens: str, hot_key: str) -> None:
    import json
    import random
    from decimal import Decimal

    from devnet.exchange.config import ChainConfig, SimConfig
    from devnet.exchange.domain.model import OrderType, Side, TimeInForce
    from devnet.exchange.fixtures import run_exchange
    from devnet.exchange.keys import Permission
    from tests.executor.harness import busy_markets

    rng = random.Random(seed)
    tick = Decimal("0.0001")
    chain = ChainConfig(rpc_url=rpc_url, assets=json.loads(tokens), hot_wallet_key=hot_key, poll_interval=5.0)
    with run_exchange(SimConfig(markets=busy_markets(), run_market=False, chain=chain)) as ex:
        accounts = []
        for i in range(participants):
            key = ex.sim.create_account(
                permissions=frozenset({Permission.READ, Permission.TRADE}),
                balances={"MMT": Decimal(5000), "USDT": Decimal(5000)},
            )
            orders = []
            for side, sign in ((Side.BUY, -1), (Side.SELL, 1)):
                placed = ex.sim.engine.place_order(
                    account_id=key.account_id,
                    symbol="MMTUSDT",
                    side=side,
                    type=OrderType.LIMIT,
                    quantity=Decimal(rng.randint(2_000, 8_000)) / 10,
                    price=Decimal("0.5") + sign * rng.randint(10, 20) * tick,
                    tif=TimeInForce.GTC,
                    client_order_id=f"bench-p{i}-{side.value.lower()}",
                ).order
                orders.append(
                    {
                        "id": str(placed.order_id),
                        "client_order_id": placed.client_order_id,
                        "side": side.value.lower(),
                        "price": str(placed.price),
                        "amount": str(placed.orig_qty),
                        "time_ms": placed.time,
                    }
                )
            accounts.append({"api_key": key.key, "secret": key.secret, "orders": orders})
        print(ex.base_url, flush=True)
        print(json.dumps(accounts), flush=True)
        sys.stdin.read()


def serve_executor(controller: str, report_ms: int, sample_ms: int, exchange_url: str, max_jobs: int) -> None:
    import uvloop
    from aiohttp import web

    from executor.api.app import create_app
    from executor.config import Config
    from executor.engine import reporting
    from executor.engine import runner as runner_module
    from executor.logging import configure

    def shortened(**fields: Any) -> reporting.ReportBuilder:
        return reporting.ReportBuilder(**{**fields, "interval_ms": report_ms, "sample_ms": sample_ms})

    runner_module.ReportBuilder = shortened  # type: ignore[misc,assignment]
    configure(level="ERROR", version="bench")
    config = Config(
        tick_ms=min(250, sample_ms),
        streams=True,
        max_jobs=max_jobs,
        exchange_api_urls={"binance": exchange_url},
        controller_key=controller,
        build_version="bench",
        dev=True,  # the exchange simulator is plain http
        log_level="ERROR",
    )

    async def serve() -> None:
        runner = web.AppRunner(create_app(config), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        print(f"http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await runner.cleanup()

    uvloop.run(serve())


if __name__ == "__main__":
    if sys.argv[1] == "exchange":
        serve_exchange()
    elif sys.argv[1] == "close-exchange":
        serve_close_exchange(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6])
    elif sys.argv[1] == "executor":
        serve_executor(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6]))
    else:
        raise SystemExit(f"unknown child {sys.argv[1]!r}")
