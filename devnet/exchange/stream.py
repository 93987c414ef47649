"""Binance's public WebSocket streams: `<symbol>@depth[@100ms]` (order book diffs) and `<symbol>@trade`.

Clients connect to `/ws[/<n>]` or `/stream/ws[/<n>]` (raw events) and send
`{"method": "SUBSCRIBE", "params": [...], "id": n}`, as ccxt's watch_order_book does. Depth diffs are
published every 100 ms for books that changed, each covering the update ids `U..u` since the previous one, so
that a client that syncs from the REST snapshot (`lastUpdateId`) finds the first event with
`U <= lastUpdateId + 1 <= u` and then contiguous ones — Binance's own procedure. (`/stream/ws` because ccxt
tells spot from futures streams by "/stream" in the URL; it only matters when futures markets are loaded too.)
A 5xx or maintenance fault rule covering a stream path refuses new connections there and drops open ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from devnet.exchange.domain.model import ZERO, Side, Trade, fmt
from devnet.exchange.faults import FaultKind

if TYPE_CHECKING:
    from devnet.exchange.simulator import Simulator

PUBLISH_INTERVAL = 0.1
# The request faults a stream endpoint honours, as a load balancer in front of it would: a new connection is
# refused with the fault's answer, and connections already open on the path are dropped.
STREAM_FAULTS = frozenset({FaultKind.HTTP_5XX, FaultKind.MAINTENANCE})


class StreamHub:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self._subs: dict[web.WebSocketResponse, set[str]] = {}
        self._paths: dict[web.WebSocketResponse, str] = {}
        self._trades: list[Trade] = []
        self._trades_lock = threading.Lock()
        self._published_id: dict[str, int] = {}
        self._published: dict[str, dict[Side, dict[Decimal, Decimal]]] = {}
        sim.engine.trade_listeners.append(self._on_trade)
        for symbol in sim.engine.markets:
            self._snapshot(symbol)

    def _on_trade(self, trade: Trade) -> None:
        # Called under the engine's lock, maybe from another thread: queue it for the publisher.
        with self._trades_lock:
            if self._subs:
                self._trades.append(trade)

    def _levels(self, symbol: str) -> dict[Side, dict[Decimal, Decimal]]:
        book = self.sim.engine.books[symbol]
        return {side: dict(book.depth(side, 100_000)) for side in (Side.BUY, Side.SELL)}

    def _snapshot(self, symbol: str) -> None:
        with self.sim.engine.lock:
            self._published[symbol] = self._levels(symbol)
            self._published_id[symbol] = self.sim.engine.book_update_id[symbol]

    def _fault(self, path: str) -> FaultKind | None:
        fault = self.sim.faults.take(STREAM_FAULTS, path=path, method="GET", account=None, now_ms=self.sim.clock())
        return None if fault is None else fault.kind

    async def handle(self, request: web.Request) -> web.StreamResponse:
        refused = self._fault(request.path)
        if refused is FaultKind.MAINTENANCE:
            return web.json_response({"code": -1, "msg": "System is under maintenance."}, status=503)
        if refused is not None:
            return web.Response(status=502, text="<html><body><h1>502 Bad Gateway</h1></body></html>")
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        self._subs[ws] = set()
        self._paths[ws] = request.path
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                    method, params, req_id = data.get("method"), data.get("params") or [], data.get("id")
                except (ValueError, AttributeError):
                    await ws.send_json({"error": {"code": 2, "msg": "Invalid request"}})
                    continue
                if method == "SUBSCRIBE":
                    self._subs[ws].update(str(p) for p in params)
                elif method == "UNSUBSCRIBE":
                    self._subs[ws].difference_update(str(p) for p in params)
                elif method == "LIST_SUBSCRIPTIONS":
                    await ws.send_json({"result": sorted(self._subs[ws]), "id": req_id})
                    continue
                else:
                    await ws.send_json({"error": {"code": 1, "msg": "Unknown method"}, "id": req_id})
                    continue
                await ws.send_json({"result": None, "id": req_id})
        finally:
            self._subs.pop(ws, None)
            self._paths.pop(ws, None)
        return ws

    async def drop_faulted(self) -> None:
        """Close the connections whose path a stream fault now covers."""
        for ws, path in list(self._paths.items()):
            if self._fault(path) is not None:
                await ws.close()

    def _wanted(self, stream: str) -> list[web.WebSocketResponse]:
        return [ws for ws, subs in self._subs.items() if any(s == stream or s.startswith(stream + "@") for s in subs)]

    async def publish_once(self) -> None:
        now = self.sim.clock()
        with self._trades_lock:
            trades, self._trades = self._trades, []
        for t in trades:
            event = {
                "e": "trade",
                "E": now,
                "s": t.symbol,
                "t": t.trade_id,
                "p": fmt(t.price),
                "q": fmt(t.qty),
                "T": t.time,
                "m": t.buyer_is_maker,
                "M": True,
            }
            await self._send(self._wanted(f"{t.symbol.lower()}@trade"), event)
        for symbol in self.sim.engine.markets:
            with self.sim.engine.lock:
                current = self.sim.engine.book_update_id[symbol]
                if current == self._published_id[symbol]:
                    continue
                levels = self._levels(symbol)
            before = self._published[symbol]
            diff: dict[Side, list[list[str]]] = {}
            for side in (Side.BUY, Side.SELL):
                old, new = before[side], levels[side]
                changed = [p for p in new if new[p] != old.get(p)] + [p for p in old if p not in new]
                diff[side] = [[fmt(p), fmt(new.get(p, ZERO))] for p in sorted(changed)]
            event = {
                "e": "depthUpdate",
                "E": now,
                "s": symbol,
                "U": self._published_id[symbol] + 1,
                "u": current,
                "b": diff[Side.BUY],
                "a": diff[Side.SELL],
            }
            self._published[symbol] = levels
            self._published_id[symbol] = current
            await self._send(self._wanted(f"{symbol.lower()}@depth"), event)

    async def _send(self, targets: list[web.WebSocketResponse], event: dict[str, Any]) -> None:
        text = json.dumps(event, separators=(",", ":"))
        for ws in targets:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(text)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(PUBLISH_INTERVAL)
            await self.drop_faulted()
            await self.publish_once()

    async def close(self) -> None:
        for ws in list(self._subs):
            await ws.close()
