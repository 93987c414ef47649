"""Reconciliation with the exchange: what it says our orders, fills and balances are.

By REST (`_sync`): at start, after every reconnect or gap of a stream, at the slow cadence `reconcile_ms` on
streams, and every tick when polling — trades → fills and PnL, open orders → statuses, adoption of this job's
orders from an earlier run, foreign orders by policy, lookups that resolve unanswered creates and cancels,
balances. By stream (`_apply_stream`): the user data stream's order updates, fills and balances as they come.

Both paths meet in the tracker, which books a fill once by its trade id and lets a final status stand, so a fill
seen on both paths is counted once and one the stream dropped is found by the next REST pass.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from executor.engine.connectivity import Connectivity
from executor.engine.tracker import TrackedOrder
from executor.exchange import NotFound, OrderSnapshot, Rejected, TradeSnapshot
from executor.logging import get_logger
from executor.strategy.base import Balances

AMBIGUOUS_RESOLVE_MS = 6_000  # Binance refuses a request older than recvWindow (5 s) from its timestamp
CANCEL_RECHECK_MS = 3_000
TRADE_OVERLAP_MS = 60_000
log = get_logger("executor.job")


async def _nothing() -> list[Any]:
    return []


class Reconciler(Connectivity):
    def _book_trades(self, trades: Iterable[TradeSnapshot], now: int) -> list[TradeSnapshot]:
        """Book fills not seen before (by trade id), oldest first; returns those that were new."""
        booked: list[TradeSnapshot] = []
        for t in sorted(trades, key=lambda t: (t.timestamp_ms, t.trade_id)):
            if t.timestamp_ms < self.created_ms - TRADE_OVERLAP_MS:
                continue
            if self.tracker.trade(t, now) and self.position is not None:
                self.position.fill(side=t.side, price=t.price, amount=t.amount, fee=t.fee, fee_asset=t.fee_asset)
                self._last_trade_ms = max(self._last_trade_ms, t.timestamp_ms)
                booked.append(t)
        return booked

    def _take_balances(self, free_locked: dict[str, tuple[Decimal, Decimal]]) -> None:
        if self.base_asset not in free_locked or self.quote_asset not in free_locked:
            return
        (bf, bl), (qf, ql) = free_locked[self.base_asset], free_locked[self.quote_asset]
        self.balances = Balances(bf, bl, qf, ql)

    def _apply_stream(
        self,
        orders: list[OrderSnapshot],
        trades: list[TradeSnapshot],
        balances: dict[str, tuple[Decimal, Decimal]] | None,
        now: int,
    ) -> bool:
        """The user data stream's news since the last pass. Returns whether our orders changed."""
        # Trades first: an order update saying "filled" and its trade may come in either order.
        booked = self._book_trades(trades, now)
        changed = bool(booked)
        if booked and balances is None:
            # The exchange sends a fill's balance change as a message of its own, after it: until it comes, the
            # balances the strategy would size orders from are those before the fill.
            self.balances_behind_since_ms = self.balances_behind_since_ms or now
        for snap in orders:
            if snap.client_order_id in self.tracker.orders or snap.exchange_order_id in self.tracker.by_exchange_id:
                self.tracker.apply_snapshot(snap, now)
                changed = True
        if balances is not None:
            self._take_balances(balances)
            self.balances_behind_since_ms = None
        return changed

    async def _sync(self, now: int, *, first: bool = False) -> list[TradeSnapshot]:
        """Read trades, open orders and balances (concurrently: one round trip), then apply them in that order.
        Returns the fills it booked that no stream had delivered (yet)."""
        assert self.gateway is not None
        gw, tr = self.gateway, self.tracker
        since = max(0, self._last_trade_ms - TRADE_OVERLAP_MS)
        trades_call = gw.my_trades(self.symbol, since_ms=since) if not first else _nothing()
        balance_events = self.feed.balance_events if self.feed is not None else 0
        trades, open_now, free_locked = await asyncio.gather(
            trades_call, gw.open_orders(self.symbol), gw.balances((self.base_asset, self.quote_asset))
        )
        booked = self._book_trades(trades, now)
        seen_ids = set()
        for snap in open_now:
            cid = snap.client_order_id or ""
            seen_ids.add(cid)
            if cid in tr.orders:
                tr.apply_snapshot(snap, now)
            elif tr.owns(cid):
                # The ladder level an old order was placed for is not on the exchange: adopted at level 0, the
                # strategy keeps it if it fits that slot and replaces it otherwise.
                tr.adopt(snap, level=0, now_ms=now)
            else:
                await self._foreign(snap)
        for order in list(tr.live()):
            if order.client_order_id in seen_ids:
                if order.status == "cancelling" and now - (order.cancel_sent_ms or now) > CANCEL_RECHECK_MS:
                    await self._cancel([order], now)  # the cancel's answer was lost and the order still rests
                continue
            await self._resolve_missing(order, now)
        if self.feed is None or self.feed.balance_events == balance_events:
            self._take_balances(free_locked)  # else the stream's balance, which came meanwhile, is the newer one
            self.balances_behind_since_ms = None
        self.side_cooldown = {s: t for s, t in self.side_cooldown.items() if t > now}
        return booked

    async def _resolve_missing(self, order: TrackedOrder, now: int) -> None:
        """A live order the exchange does not list as open: find out what became of it."""
        assert self.gateway is not None
        if order.status == "pending":
            return  # its create is in flight right now
        if order.status == "unknown" and now - order.created_ms < AMBIGUOUS_RESOLVE_MS:
            return  # the exchange could still accept it: wait, then look it up
        try:
            snap = await self.gateway.order_by_client_id(self.symbol, order.client_order_id)
        except NotFound:
            if order.status == "unknown":
                self.tracker.not_on_exchange(order.client_order_id, now)
            else:
                self.tracker.refused(order.client_order_id, "gone from the exchange without a trace", now)
            return
        self.tracker.apply_snapshot(snap, now)
        if snap.status == "closed" and order.filled < order.amount:
            order.status = "filled"  # the trades may come on the next sync; fills are counted from trades

    async def _foreign(self, snap: OrderSnapshot) -> None:
        """An open order on the job's market not placed by this job."""
        assert self.gateway is not None
        key = snap.exchange_order_id
        if key not in self.foreign_seen:
            self.foreign_seen.add(key)
            log.warning("foreign_order", job_id=self.job_id, policy=self.settings.unknown_orders)
        if self.settings.unknown_orders == "cancel" and snap.client_order_id:
            with contextlib.suppress(NotFound, Rejected):
                await self.gateway.cancel(self.symbol, snap.client_order_id)
