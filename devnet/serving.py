"""Serve an aiohttp app of the devnet in-process: a background thread with its own event loop, on a free
loopback port — what tests use to stand up the exchange simulator, the PCCS and the EasyEnclave stand-in next to
Django.

    with serve_in_thread(build_pccs_app(authority)) as served:
        settings.ATTESTATION_PCCS_URL = served.url
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True)
class Served:
    app: web.Application
    host: str
    port: int
    stop: Callable[[], None] = field(repr=False)  # stops serving now (idempotent); the block's end also does

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@contextlib.contextmanager
def serve_in_thread(app: web.Application, *, host: str = "127.0.0.1", name: str = "devnet-app") -> Iterator[Served]:
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    state: dict[str, object] = {}

    async def start() -> web.AppRunner:
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, 0)
        await site.start()
        state["port"] = runner.addresses[0][1]
        return runner

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            runner = loop.run_until_complete(start())
        except BaseException as exc:  # surfaced to the starting thread below
            state["error"] = exc
            ready.set()
            return
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        # Requests still held (a fault's hang, a lost ack) are cancelled, not left to die with the loop.
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    if not ready.wait(30) or "error" in state:
        raise RuntimeError(f"{name} did not start: {state.get('error')!r}")

    def stop() -> None:
        if thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(30)

    try:
        yield Served(app, host, int(str(state["port"])), stop)
    finally:
        stop()
