"""Binance's public WebSocket streams: `<symbol>@depth[@100ms]` (order book diffs) and `<symbol>@trade`.

Clients connect to `/ws[/<n>]` or `/stream/ws[/<n>]` (raw events) and send
`{"method": "SUBSCRIBE", "params": [...], "id": n}`, as ccxt's watch_order_book does. Depth diffs are
published every 100 ms for books that changed, each covering the update ids `U..u` since the previous one, so
that a client that syncs from the REST snapshot (`lastUpdateId`) finds the first event with
`U <= lastUpdateId + 1 <= u` and then contiguous ones — Binance's own procedure. (`/stream/ws` because ccxt
tells spot from futures streams by "/stream" in the URL; it only matters when futures markets are loaded too.)

Publishing is incremental: the engine names every price level it touches (its level listeners), and a diff
carries those levels with their quantities now — nothing copies or compares whole books. Each event is
serialized once and queued to every subscriber of its stream.

Faults: a 5xx or maintenance rule covering a stream path refuses new connections there and drops open ones;
the stream faults (faults.py) act on the connections and their events.
"""

from __future__ import annotations

import asyncio
import json
import threading
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from devnet.exchange.domain.model import ZERO, Side, Trade, fmt
from devnet.exchange.faults import Fault, FaultKind
from devnet.exchange.wsconn import WS_METHOD, Connection, dumps, new_socket

if TYPE_CHECKING:
    from devnet.exchange.simulator import Simulator

PUBLISH_INTERVAL = 0.1
PUBLISH_SLOTS = 10
MARKET_SLOTS = 10  # the market loop moves every MARKET_SLOTS-th market at once (server.py)
# The request faults a stream endpoint honours, as a load balancer in front of it would: a new connection is
# refused with the fault's answer, and connections already open on the path are dropped.
STREAM_FAULTS = frozenset({FaultKind.HTTP_5XX, FaultKind.MAINTENANCE})
EVENT_FAULTS = frozenset({FaultKind.STREAM_DROP, FaultKind.STREAM_DELAY})


def stream_key(name: str) -> str:
    """`btcusdt@depth@100ms` → `btcusdt@depth`: the update speed does not change what is sent here."""
    parts = name.split("@")
    return "@".join(parts[:2])


class Deliverer:
    """Queues one serialized event to connections, applying the drop and delay faults per delivery."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def deliver(self, conns: list[Connection], text: str, event: str, symbol: str | None) -> None:
        faults = self.sim.faults
        if not faults.any(EVENT_FAULTS):
            for conn in conns:
                conn.send(text)
            return
        now = self.sim.clock()
        for conn in conns:
            if self._take(FaultKind.STREAM_DROP, conn, now, event, symbol) is not None:
                continue
            delay = self._take(FaultKind.STREAM_DELAY, conn, now, event, symbol)
            conn.send(text, delay_ms=delay.latency_ms if delay is not None else 0)

    def _take(self, kind: FaultKind, conn: Connection, now: int, event: str, symbol: str | None) -> Fault | None:
        return self.sim.faults.take(
            kind, path=conn.path, method=WS_METHOD, account=conn.account, now_ms=now, event=event, symbol=symbol
        )


def refusal(sim: Simulator, path: str) -> web.Response | None:
    """The answer to a new connection on a path a 5xx or maintenance rule covers."""
    fault = sim.faults.take(STREAM_FAULTS, path=path, method="GET", account=None, now_ms=sim.clock())
    if fault is None:
        return None
    if fault.kind is FaultKind.MAINTENANCE:
        return web.json_response({"code": -1, "msg": "System is under maintenance."}, status=503)
    return web.Response(status=502, text="<html><body><h1>502 Bad Gateway</h1></body></html>")


class StreamHub:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.deliverer = Deliverer(sim)
        self._conns: dict[web.WebSocketResponse, Connection] = {}
        self._subs: dict[Connection, set[str]] = {}
        self._by_stream: dict[str, set[Connection]] = {}
        self._trades: list[Trade] = []
        self._trades_lock = threading.Lock()
        self._published_id: dict[str, int] = dict(sim.engine.book_update_id)
        # Each symbol's diffs go out in a slot of its own phase: markets that moved in the same step of the market
        # loop (every MARKET_SLOTS-th, server.py) are spread over the slots, not sent in one burst.
        self._slot = {
            symbol: (i // MARKET_SLOTS + i) % PUBLISH_SLOTS for i, symbol in enumerate(sim.engine.book_update_id)
        }
        # Levels touched since the last diff, per symbol; written under the engine's lock by its listeners.
        self._dirty: dict[str, set[tuple[Side, Decimal]]] = {}
        sim.engine.trade_listeners.append(self._on_trade)
        sim.engine.level_listeners.append(self._on_level)

    def _on_trade(self, trade: Trade) -> None:
        # Called under the engine's lock, maybe from another thread: queue it for the publisher.
        if self._conns:  # subscribers are looked up when publishing (one may be subscribing now)
            with self._trades_lock:
                self._trades.append(trade)

    def _on_level(self, symbol: str, side: Side, price: Decimal) -> None:
        dirty = self._dirty.get(symbol)
        if dirty is None:
            dirty = self._dirty[symbol] = set()
        dirty.add((side, price))

    @property
    def connections(self) -> list[Connection]:
        return list(self._conns.values())

    async def handle(self, request: web.Request) -> web.StreamResponse:
        refused = refusal(self.sim, request.path)
        if refused is not None:
            return refused
        ws = new_socket()
        await ws.prepare(request)
        conn = Connection(self.sim, ws, request.path)
        self._conns[ws] = conn
        self._subs[conn] = set()
        try:
            async for text in conn.messages():
                self._request(conn, text)
        finally:
            self._unsubscribe(conn, set(self._subs.pop(conn, set())))
            self._conns.pop(ws, None)
            await conn.close()
        return ws

    def _request(self, conn: Connection, text: str) -> None:
        try:
            data = json.loads(text)
            method, params, req_id = data.get("method"), data.get("params") or [], data.get("id")
        except (ValueError, AttributeError):
            conn.send_json({"error": {"code": 2, "msg": "Invalid request"}})
            return
        names = {str(p) for p in params}
        if method == "SUBSCRIBE":
            self._subs[conn].update(names)
            for name in names:
                self._by_stream.setdefault(stream_key(name), set()).add(conn)
        elif method == "UNSUBSCRIBE":
            self._subs[conn].difference_update(names)
            self._unsubscribe(conn, names)
        elif method == "LIST_SUBSCRIPTIONS":
            conn.send_json({"result": sorted(self._subs[conn]), "id": req_id})
            return
        else:
            conn.send_json({"error": {"code": 1, "msg": "Unknown method"}, "id": req_id})
            return
        conn.send_json({"result": None, "id": req_id})

    def _unsubscribe(self, conn: Connection, names: set[str]) -> None:
        left = {stream_key(n) for n in self._subs.get(conn, set())}
        for key in {stream_key(n) for n in names} - left:
            subscribers = self._by_stream.get(key)
            if subscribers is not None:
                subscribers.discard(conn)
                if not subscribers:
                    del self._by_stream[key]

    async def drop_faulted(self) -> None:
        """Close the connections whose path a stream fault now covers."""
        for conn in self.connections:
            fault = self.sim.faults.take(
                STREAM_FAULTS, path=conn.path, method="GET", account=None, now_ms=self.sim.clock()
            )
            if fault is not None:
                await conn.close()

    def publish_once(self, slot: int | None = None) -> None:
        """Publish trades, and the depth diffs of the books that changed — of every book, or (with `slot`) of those in
        that phase slot: each book's stream is published every `PUBLISH_INTERVAL`, the books at staggered phases."""
        now = self.sim.clock()
        with self._trades_lock:
            trades, self._trades = self._trades, []
        for t in trades:
            event = {"e": "trade", "E": now, "s": t.symbol, "t": t.trade_id, "p": fmt(t.price), "q": fmt(t.qty),
                     "T": t.time, "m": t.buyer_is_maker, "M": True}  # fmt: skip
            self._publish(f"{t.symbol.lower()}@trade", event)
        engine = self.sim.engine
        with engine.lock:
            changed = [
                s
                for s, current in engine.book_update_id.items()
                if current != self._published_id[s] and (slot is None or self._slot[s] == slot)
            ]
            dirty = {s: self._dirty.pop(s) for s in changed if s in self._dirty}
            events = [e for e in (self._depth_event(s, dirty.get(s, set()), now) for s in changed) if e is not None]
        for stream, event in events:
            self._publish(stream, event)

    def _depth_event(self, symbol: str, levels: set[tuple[Side, Decimal]], now: int) -> tuple[str, Any] | None:
        """The diff since the last one (called under the engine's lock); None when no one listens or a gap
        fault swallows it (the ids move on either way)."""
        first, current = self._published_id[symbol] + 1, self.sim.engine.book_update_id[symbol]
        self._published_id[symbol] = current
        stream = f"{symbol.lower()}@depth"
        if not self._by_stream.get(stream):
            return None
        gap = self.sim.faults.take(
            FaultKind.STREAM_GAP, path="/ws", method=WS_METHOD, account=None, now_ms=now, symbol=symbol,
            event="depthUpdate",
        )  # fmt: skip
        if gap is not None:
            return None
        book = self.sim.engine.books[symbol]
        sides: dict[Side, list[list[str]]] = {Side.BUY: [], Side.SELL: []}
        for side, price in sorted(levels):
            sides[side].append([fmt(price), fmt(book.level_qty(side, price) or ZERO)])
        event = {"e": "depthUpdate", "E": now, "s": symbol, "U": first, "u": current, "b": sides[Side.BUY],
                 "a": sides[Side.SELL]}  # fmt: skip
        return stream, event

    def _publish(self, stream: str, event: dict[str, Any]) -> None:
        conns = self._by_stream.get(stream)
        if conns:
            self.deliverer.deliver(list(conns), dumps(event), event["e"], event.get("s"))

    async def run(self) -> None:
        slot = 0
        while True:
            await asyncio.sleep(PUBLISH_INTERVAL / PUBLISH_SLOTS)
            if slot == 0:
                await self.drop_faulted()
            self.publish_once(slot)
            slot = (slot + 1) % PUBLISH_SLOTS

    async def close(self) -> None:
        for conn in self.connections:
            await conn.close()
