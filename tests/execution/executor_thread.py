"""A real executor for Django-side tests: its HTTP server on a free loopback port, in a thread with its own
event loop, pinned to Django's controller key and pointed at the exchange simulator."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from executor.api.app import create_app
from executor.config import Config
from executor.jobs.manager import JobManager


@contextlib.contextmanager
def running_executor(
    exchange_url: str,
    *,
    holder: dict[str, Any] | None = None,
    provider: Any = None,
    controller: str | None = None,
    port: int = 0,
    streams: bool = True,
    request_timeout_ms: int = 10_000,
) -> Iterator[str]:
    """`port` 0 picks a free one; a given port lets a test restart "the same" executor (new keys, no jobs).
    `streams` False: its jobs poll by REST (the exchange's streams unused); `request_timeout_ms` bounds each of its
    exchange calls (a partition test shortens it)."""
    from mrmarket.controller import controller_key

    config = Config(
        tick_ms=250,
        streams=streams,
        exchange_api_urls={"binance": exchange_url},
        controller_key=controller or controller_key().public_hex,
        build_version="test",
        dev=True,  # the exchange simulator is plain http
        request_timeout_ms=request_timeout_ms,
    )
    loop = asyncio.new_event_loop()
    state: dict[str, Any] = holder if holder is not None else {}
    ready = threading.Event()

    async def serve() -> None:
        app = create_app(config, provider=provider)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        from executor.api.keys import MANAGER_KEY

        state["runner"], state["port"], state["manager"] = runner, runner.addresses[0][1], app[MANAGER_KEY]
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(serve())
        loop.run_forever()
        loop.run_until_complete(state["runner"].cleanup())
        loop.close()

    thread = threading.Thread(target=run, name="executor", daemon=True)
    thread.start()
    if not ready.wait(20):
        raise RuntimeError("the executor did not start")
    try:
        yield f"http://127.0.0.1:{state['port']}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(60)


def manager_of(state: dict[str, Any]) -> JobManager:
    manager: JobManager = state["manager"]
    return manager
