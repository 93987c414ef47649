"""The order lifecycle of one job: every place, cancel and fill, and the client order ids. Pure: no I/O.

Client order ids are deterministic and unique: `<prefix><incarnation>-<seq>` where the prefix is derived from
the job id (so orders of this job are recognised on the exchange after a restart), the incarnation is the
start time of this run of the job (base 36 seconds) and seq counts intents. An intent keeps its id for every
retry, so a create that timed out is resolved by looking that id up — never by sending a second order.

States of a tracked order:

    pending ──ack──▶ open ──cancel sent──▶ cancelling ──▶ cancelled
       │               │                       │
       │               └──fully filled──▶ filled ◀─┘ (a fill can beat the cancel)
       ├──refused──▶ rejected
       └──no answer──▶ unknown ──lookup──▶ open / filled / cancelled / rejected (not on the exchange)

`live` orders (pending, open, cancelling, unknown) count against the open-order limit and the exposure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from executor.exchange import OrderSnapshot, TradeSnapshot
from executor.strategy.base import OpenOrder, Side
from wire.jobs import client_order_prefix

LIVE = frozenset({"pending", "open", "cancelling", "unknown"})
FINAL = frozenset({"filled", "cancelled", "rejected"})
ZERO = Decimal(0)


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def job_prefix(job_id: str) -> str:
    """`mm` + 10 hex characters of SHA-256(job id): 12 characters, the same on every run of the job."""
    return client_order_prefix(job_id)


@dataclass
class TrackedOrder:
    client_order_id: str
    side: Side
    level: int
    price: Decimal
    amount: Decimal
    created_ms: int
    status: str = "pending"
    exchange_order_id: str | None = None
    filled: Decimal = ZERO
    placed_at_ms: int | None = None
    cancel_sent_ms: int | None = None
    adopted: bool = False

    @property
    def remaining(self) -> Decimal:
        return max(self.amount - self.filled, ZERO)

    @property
    def live(self) -> bool:
        return self.status in LIVE


@dataclass
class OrderTracker:
    job_id: str
    incarnation_s: int
    orders: dict[str, TrackedOrder] = field(default_factory=dict)
    by_exchange_id: dict[str, str] = field(default_factory=dict)
    trade_ids: set[str] = field(default_factory=set)
    events: list[dict[str, Any]] = field(default_factory=list)
    fills: list[dict[str, Any]] = field(default_factory=list)
    _seq: int = 0
    # The orders not yet final, in creation order: what the views walk, so that a long run's history (every order
    # ever placed stays in `orders` for lookups) does not slow each pass down.
    _active: dict[str, TrackedOrder] = field(default_factory=dict)
    _last_ts: int = 0  # events and fills are stamped in the order they are recorded, never backwards

    @property
    def prefix(self) -> str:
        return job_prefix(self.job_id)

    def owns(self, client_order_id: str | None) -> bool:
        return bool(client_order_id) and str(client_order_id).startswith(self.prefix)

    # -- intents and answers ---------------------------------------------------------------------------------

    def new_intent(self, *, side: Side, level: int, price: Decimal, amount: Decimal, now_ms: int) -> TrackedOrder:
        self._seq += 1
        cid = f"{self.prefix}{_base36(self.incarnation_s)}-{self._seq}"
        order = TrackedOrder(cid, side, level, price, amount, created_ms=now_ms)
        self.orders[cid] = order
        self._active[cid] = order
        return order

    def acknowledged(self, cid: str, snap: OrderSnapshot, now_ms: int) -> None:
        order = self.orders[cid]
        self._link(order, snap.exchange_order_id)
        if order.placed_at_ms is None:
            order.placed_at_ms = snap.timestamp_ms or now_ms
            self._event(now_ms, "placed", order, amount=order.amount, exchange_ts_ms=snap.timestamp_ms)
        self.apply_snapshot(snap, now_ms)

    def refused(self, cid: str, reason: str, now_ms: int) -> None:
        order = self.orders[cid]
        if order.status in FINAL:
            return
        order.status = "rejected"
        self._event(now_ms, "rejected", order, amount=order.amount, reason=reason)

    def unanswered(self, cid: str) -> None:
        order = self.orders[cid]
        if order.status == "pending":
            order.status = "unknown"

    def not_on_exchange(self, cid: str, now_ms: int) -> None:
        """An unknown create looked up after the exchange could still have accepted it: it never happened."""
        self.refused(cid, "not received by the exchange (timed out)", now_ms)

    def cancel_sent(self, cid: str, now_ms: int) -> None:
        order = self.orders[cid]
        if order.status in ("open", "cancelling"):
            order.status = "cancelling"
            order.cancel_sent_ms = now_ms

    def apply_snapshot(self, snap: OrderSnapshot, now_ms: int) -> None:
        """The exchange's view of one of our orders wins: fills are taken from trades, the status from here."""
        cid = snap.client_order_id
        order = self.orders.get(cid or "") or self.orders.get(self.by_exchange_id.get(snap.exchange_order_id, ""))
        if order is None:
            return
        self._link(order, snap.exchange_order_id)
        if order.placed_at_ms is None:
            order.placed_at_ms = snap.timestamp_ms or now_ms
            self._event(now_ms, "placed", order, amount=order.amount, exchange_ts_ms=snap.timestamp_ms)
        if order.status in FINAL:
            return
        if snap.status == "open":
            if order.status in ("pending", "unknown"):
                order.status = "open"
        elif snap.status == "closed":
            order.status = "filled"
        elif snap.status in ("canceled", "cancelled", "expired", "rejected"):
            order.status = "cancelled" if snap.status != "rejected" else "rejected"
            event = {"canceled": "cancelled", "cancelled": "cancelled"}.get(snap.status, snap.status)
            self._event(
                now_ms, event, order, amount=max(snap.amount - snap.filled, ZERO), exchange_ts_ms=snap.last_update_ms
            )

    def adopt(self, snap: OrderSnapshot, *, level: int, now_ms: int) -> TrackedOrder:
        """An open order of this job found on the exchange but not in memory (an earlier run): tracked again."""
        cid = str(snap.client_order_id)
        order = TrackedOrder(
            cid,
            "buy" if snap.side == "buy" else "sell",
            level,
            snap.price or ZERO,
            snap.amount,
            created_ms=now_ms,
            status="open",
            filled=snap.filled,
            placed_at_ms=snap.timestamp_ms or now_ms,
            adopted=True,
        )
        self.orders[cid] = order
        self._active[cid] = order
        self._link(order, snap.exchange_order_id)
        self._event(
            now_ms,
            "placed",
            order,
            amount=order.remaining,
            reason="adopted from an earlier run",
            exchange_ts_ms=snap.timestamp_ms,
        )
        return order

    def trade(self, t: TradeSnapshot, now_ms: int) -> bool:
        """Record a fill once (by trade id). Returns False for a trade already seen or not of this job."""
        if t.trade_id in self.trade_ids:
            return False
        cid = self.by_exchange_id.get(t.exchange_order_id)
        if cid is None:
            return False
        order = self.orders[cid]
        self.trade_ids.add(t.trade_id)
        order.filled += t.amount
        if order.filled >= order.amount and order.status not in ("rejected",):
            order.status = "filled"
        now_ms = self._stamp(now_ms)
        self.fills.append(
            {
                "ts_ms": now_ms,
                "exchange_ts_ms": t.timestamp_ms,
                "trade_id": t.trade_id,
                "client_order_id": cid,
                "exchange_order_id": t.exchange_order_id,
                "side": t.side,
                "price": t.price,
                "amount": t.amount,
                "fee": t.fee,
                "fee_asset": t.fee_asset,
                "liquidity": t.liquidity,
            }
        )
        self._event(now_ms, "filled", order, amount=t.amount, price=t.price, exchange_ts_ms=t.timestamp_ms)
        return True

    # -- views -------------------------------------------------------------------------------------------------

    def active(self) -> list[TrackedOrder]:
        """The orders not yet final (statuses are set in place, so the final ones are dropped here, lazily)."""
        done = [cid for cid, o in self._active.items() if o.status in FINAL]
        for cid in done:
            del self._active[cid]
        return list(self._active.values())

    def live(self) -> list[TrackedOrder]:
        return [o for o in self.active() if o.live]

    def resting(self) -> list[TrackedOrder]:
        """Orders the exchange holds and we have not asked to cancel: what the strategy may keep."""
        return [o for o in self.active() if o.status == "open" and o.remaining > 0]

    def for_strategy(self) -> tuple[OpenOrder, ...]:
        return tuple(
            OpenOrder(o.client_order_id, o.side, o.price, o.remaining, o.placed_at_ms or o.created_ms, o.level)
            for o in self.resting()
        )

    def in_state(self, *states: str) -> list[TrackedOrder]:
        pool = self.active() if LIVE.issuperset(states) else list(self.orders.values())
        return [o for o in pool if o.status in states]

    def take_events(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        events, fills = self.events, self.fills
        self.events, self.fills = [], []
        return events, fills

    # -- internals -----------------------------------------------------------------------------------------------

    def _stamp(self, now_ms: int) -> int:
        # Concurrent paths (a quote's answers, the REST pass, the stream) record with the time each started; the
        # report requires its events in time order, so a record never carries an earlier time than the last.
        self._last_ts = max(self._last_ts, now_ms)
        return self._last_ts

    def _link(self, order: TrackedOrder, exchange_order_id: str) -> None:
        if exchange_order_id and order.exchange_order_id is None:
            order.exchange_order_id = exchange_order_id
            self.by_exchange_id[exchange_order_id] = order.client_order_id

    def _event(
        self,
        now_ms: int,
        event: str,
        order: TrackedOrder,
        *,
        amount: Decimal,
        price: Decimal | None = None,
        reason: str | None = None,
        exchange_ts_ms: int | None = None,
    ) -> None:
        """`now_ms` is the executor's clock, which orders the stream; `exchange_ts_ms` the exchange's own time of
        the event (None when it did not say), which is what the recording oracle checks against the exchange."""
        now_ms = self._stamp(now_ms)
        self.events.append(
            {
                "ts_ms": now_ms,
                "exchange_ts_ms": exchange_ts_ms,
                "event": event,
                "client_order_id": order.client_order_id,
                "exchange_order_id": order.exchange_order_id,
                "side": order.side,
                "price": price if price is not None else order.price,
                "amount": amount,
                "reason": reason,
            }
        )
