"""The private user data stream over the WebSocket API: after `userDataStream.subscribe.signature` a
connection gets its account's events, wrapped `{"subscriptionId": N, "event": {...}}` — executionReport,
outboundAccountPosition, balanceUpdate — whoever caused them (WebSocket API or REST orders, the market agents
filling a resting order, deposits, withdrawals, admin credits).

The engine hands its account events to `_on_event` under its lock, from whichever thread acted; each is
rendered there (a snapshot) and queued, and one task on the event loop delivers the queue in order, so one
account's events arrive in the order they happened. A fill's executionReport carries the trade id `t` that
GET /api/v3/myTrades returns for it.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from devnet.exchange.domain.events import AccountEvent, AccountPosition, BalanceDelta, Execution, OrderUpdate
from devnet.exchange.domain.model import ZERO, fmt
from devnet.exchange.faults import FaultKind
from devnet.exchange.wire import price_str
from devnet.exchange.wsconn import WS_METHOD, Connection, dumps

if TYPE_CHECKING:
    from devnet.exchange.simulator import Simulator
    from devnet.exchange.stream import Deliverer


def execution_report(u: OrderUpdate, now: int) -> dict[str, Any]:
    o, fill = u.order, u.fill
    trade = fill.trade if fill is not None else None
    canceled = u.execution is Execution.CANCELED
    return {
        "e": "executionReport",
        "E": now,
        "s": o.symbol,
        "c": (u.cancel_id or o.client_order_id) if canceled else o.client_order_id,
        "S": o.side.value,
        "o": o.type.value,
        "f": o.tif.value,
        "q": fmt(u.orig_qty),
        "p": price_str(o.price),
        "P": fmt(ZERO),
        "F": fmt(ZERO),
        "g": -1,
        "C": o.client_order_id if canceled else "",
        "x": u.execution.value,
        "X": u.status.value,
        "r": "NONE",
        "i": o.order_id,
        "l": fmt(trade.qty if trade else ZERO),
        "z": fmt(u.executed_qty),
        "L": fmt(trade.price if trade else ZERO),
        "n": fmt(fill.commission if fill else ZERO),
        "N": fill.commission_asset if fill else None,
        "T": u.time,
        "t": trade.trade_id if trade else -1,
        "v": -1 if u.execution is not Execution.TRADE_PREVENTION else 0,
        "I": o.order_id * 10 + 1,
        "w": u.on_book,
        "m": bool(fill and fill.is_maker),
        "M": False,
        "O": o.time,
        "Z": fmt(u.cumm_quote),
        "Y": fmt(trade.quote_qty if trade else ZERO),
        "Q": fmt(o.quote_order_qty),
        "W": o.working_time,
        "V": o.stp.value,
    }


def render(event: AccountEvent, now: int) -> dict[str, Any]:
    if isinstance(event, OrderUpdate):
        return execution_report(event, now)
    if isinstance(event, AccountPosition):
        return {
            "e": "outboundAccountPosition",
            "E": now,
            "u": event.time,
            "B": [{"a": a, "f": fmt(free), "l": fmt(locked)} for a, free, locked in event.balances],
        }
    assert isinstance(event, BalanceDelta)
    return {"e": "balanceUpdate", "E": now, "a": event.asset, "d": fmt(event.delta), "T": event.time}


@dataclass
class Subscription:
    conn: Connection
    subscription_id: int
    account: str
    epoch: int  # expiry rules added after this end it


class UserStreams:
    def __init__(self, sim: Simulator, deliverer: Deliverer) -> None:
        self.sim = sim
        self.deliverer = deliverer
        self._subs: dict[str, list[Subscription]] = {}
        self._queue: deque[tuple[str, dict[str, Any]]] = deque()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        sim.engine.account_listeners.append(self._on_event)
        sim.engine.watching = self.watched

    def watched(self, account_id: str) -> bool:
        return account_id in self._subs

    def _on_event(self, event: AccountEvent) -> None:
        self._queue.append((event.account_id, render(event, self.sim.clock())))
        if self._wake is None or self._loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            self._wake.set()
        else:
            self._loop.call_soon_threadsafe(self._wake.set)

    def subscribe(self, conn: Connection, account: str, subscription_id: int) -> Subscription:
        sub = Subscription(conn, subscription_id, account, self.sim.faults.last_id)
        with self.sim.engine.lock:  # `watched` is read under the engine's lock
            self._subs.setdefault(account, []).append(sub)
        conn.account = account
        return sub

    def unsubscribe(self, conn: Connection, subscription_id: int | None = None) -> list[int]:
        ended: list[int] = []
        with self.sim.engine.lock:
            for account, subs in list(self._subs.items()):
                keep = []
                for s in subs:
                    if s.conn is conn and subscription_id in (None, s.subscription_id):
                        ended.append(s.subscription_id)
                    else:
                        keep.append(s)
                if keep:
                    self._subs[account] = keep
                else:
                    del self._subs[account]
        return ended

    def subscriptions(self, conn: Connection) -> list[Subscription]:
        return [s for subs in self._subs.values() for s in subs if s.conn is conn]

    def expire_faulted(self) -> None:
        """End the subscriptions an expiry rule newer than them covers, telling the client."""
        faults = self.sim.faults
        if not faults.any(frozenset({FaultKind.STREAM_EXPIRE})):
            return
        for sub in [s for subs in list(self._subs.values()) for s in subs]:
            rule = faults.take(
                FaultKind.STREAM_EXPIRE,
                path=sub.conn.path,
                method=WS_METHOD,
                account=sub.account,
                now_ms=self.sim.clock(),
                newer_than=sub.epoch,
                detail=str(sub.subscription_id),
            )
            if rule is not None:
                self.unsubscribe(sub.conn, sub.subscription_id)
                terminated = {"e": "eventStreamTerminated", "E": self.sim.clock()}
                sub.conn.send(dumps({"subscriptionId": sub.subscription_id, "event": terminated}))

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wake = asyncio.Event()
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            account, event = self._queue.popleft()
            for sub in self._subs.get(account, []):
                text = dumps({"subscriptionId": sub.subscription_id, "event": event})
                self.deliverer.deliver([sub.conn], text, event["e"], event.get("s"))
