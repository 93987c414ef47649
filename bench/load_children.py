"""The processes `bench/bench_load.py` starts for its ingestion figure, each printing its URL and serving until its
stdin closes:

- `python bench/load_children.py exchange` — the exchange simulator with its live market (`live_exchange`, the
  executor tests' busy MMT/USDT market);
- `python bench/load_children.py executor CONTROLLER_KEY REPORT_MS SAMPLE_MS EXCHANGE_URL MAX_JOBS` — one executor,
  the app `python -m executor` serves (uvloop, its own process), pinned to the controller key. Only here, in the
  bench's own executor processes, its jobs' report windows are `REPORT_MS` and their book samples `SAMPLE_MS`
  apart instead of the spec's (which the wire bounds to 10 s at least): a backlog of signed reports builds in
  seconds. Everything else — the chain, the signatures, the contents — is the executor's own.
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
    elif sys.argv[1] == "executor":
        serve_executor(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6]))
    else:
        raise SystemExit(f"unknown child {sys.argv[1]!r}")
