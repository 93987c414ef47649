"""One server-side WebSocket connection with an ordered outbox, shared by the public streams and the WebSocket
API, so the stream faults act the same on both: a writer task sends what is queued in order, holding back a
delayed message (and what follows it), and swallowing everything while a stall rule covers the connection."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from devnet.exchange.faults import FaultKind

if TYPE_CHECKING:
    from devnet.exchange.simulator import Simulator

WS_METHOD = "WS"  # the method stream and WebSocket API faults match


def dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


class Connection:
    def __init__(self, sim: Simulator, ws: web.WebSocketResponse, path: str) -> None:
        self.sim = sim
        self.ws = ws
        self.path = path
        self.account: str | None = None  # whose user data stream it has subscribed (stream fault scope)
        self.epoch = sim.faults.last_id  # disconnect rules added after this act on it
        self.opened_ms = sim.clock()
        self._outbox: deque[tuple[float, str]] = deque()
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._writer = asyncio.create_task(self._write())

    def send(self, text: str, *, delay_ms: int = 0) -> None:
        """Queue a message; it leaves after everything queued before it, and not before `delay_ms` from now."""
        due = self._loop.time() + delay_ms / 1000 if delay_ms else 0.0
        self._outbox.append((due, text))
        self._wake.set()

    def send_json(self, data: Any) -> None:
        self.send(dumps(data))

    def stalled(self) -> bool:
        faults = self.sim.faults
        if not faults.any(frozenset({FaultKind.STREAM_STALL})):
            return False
        rule = faults.take(
            FaultKind.STREAM_STALL, path=self.path, method=WS_METHOD, account=self.account, now_ms=self.sim.clock()
        )
        return rule is not None

    async def _write(self) -> None:
        while True:
            if not self._outbox:
                self._wake.clear()
                await self._wake.wait()
                continue
            due, text = self._outbox[0]
            wait = due - self._loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            self._outbox.popleft()
            if self.stalled():
                continue
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return

    async def pong(self, data: bytes) -> None:
        # Pongs answered by hand (autoping off): a stalled path does not answer them either.
        if not self.stalled():
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.pong(data)

    async def close(self) -> None:
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
        await self.ws.close()

    async def messages(self) -> Any:
        """The client's text messages (pings answered, the rest ignored) until it goes away."""
        async for msg in self.ws:
            if msg.type is WSMsgType.PING:
                await self.pong(msg.data)
            elif msg.type is WSMsgType.TEXT:
                yield msg.data


def new_socket() -> web.WebSocketResponse:
    return web.WebSocketResponse(heartbeat=30, autoping=False)
