"""Orders out: the strategy's decision through the risk gates to the exchange, and cancels.

A create without an answer is `unknown`; it is looked up by its client order id once the exchange could no longer
accept it and is never re-sent. A cancel without an answer is re-checked and re-sent. A refused order for lack of
balance puts that side on a cooldown until balances are re-read (shrink or skip, never spin). On streams, orders
go over the exchange's WebSocket API where it has one (the gateway decides), REST otherwise.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from executor.engine.sync import AMBIGUOUS_RESOLVE_MS, Reconciler
from executor.engine.tracker import TrackedOrder
from executor.exchange import NotFound, Rejected, Transient
from executor.strategy.base import Book, StrategyInput

SIDE_COOLDOWN_MS = 5_000
ZERO = Decimal(0)


class OrderFlow(Reconciler):
    async def _quote(self, book: Book, seen: int, *, arrival_ns: int | None = None, streams: bool = False) -> None:
        """Ask the strategy, admit through the risk gates, send cancels and places concurrently.

        `arrival_ns` (streams) is when the book update this decision answers reached the process
        (`time.perf_counter_ns`); the time until the orders were written to the socket and until the exchange
        acknowledged them is kept for the status and the bench."""
        assert self.rules is not None
        assert self.gateway is not None
        decision = self.strategy.decide(
            StrategyInput(
                now_ms=seen,
                book=book,
                open_orders=self.tracker.for_strategy(),
                balances=self.balances,
                rules=self.rules,
            )
        )
        cancels = [self.tracker.orders[c] for c in decision.cancel if c in self.tracker.orders]
        wanted = [d for d in decision.place if self.side_cooldown.get(d.side, 0) <= seen]
        if not cancels and not wanted:
            return
        live = self.tracker.live()
        still_live = len(live) - len(cancels)
        potential_base = self.balances.base_total + sum(
            (o.remaining for o in live if o.side == "buy" and o not in cancels), ZERO
        )
        admitted, _notes = self.risk.admit(
            [(d.side, d.price, d.amount) for d in wanted],
            live_orders=max(still_live, 0),
            potential_base=potential_base,
            mark=book.mid or ZERO,
            now_ms=seen,
        )
        intents = [
            self.tracker.new_intent(
                side=wanted[i].side, level=wanted[i].level, price=wanted[i].price, amount=wanted[i].amount, now_ms=seen
            )
            for i in admitted
        ]
        if not cancels and not intents:
            return
        self.requotes += 1
        started_ns = time.perf_counter_ns()
        # Cancels first, in the order the exchange receives them (one WebSocket keeps it): a replacement's funds are
        # those its cancel frees, so the new order must not reach the exchange before that cancel.
        cancelling = [o for o in cancels if o.status in ("open", "cancelling")]
        await asyncio.gather(*(self._cancel_one(o, seen) for o in cancelling), *(self._place(o) for o in intents))
        done_ns = time.perf_counter_ns()
        if arrival_ns is not None:
            sent_ns = self.gateway.last_send_ns
            if sent_ns >= started_ns:  # written to the WebSocket (an order sent by REST has no such moment)
                # The executor's own processing: an update that arrived while this market's previous requote was
                # in flight waited, by the coalescing rule, for the exchange's answers; that wait is in quote_ack.
                taken_up_ns = max(arrival_ns, self.requote_done_ns)
                self.tick_to_quote_ms.append((sent_ns - taken_up_ns) / 1e6)
            self.quote_ack_ms.append((done_ns - arrival_ns) / 1e6)
        elif intents and not streams:  # polling: from the book's fetch to the acknowledgements
            self.tick_to_quote_ms.append((self.clock() - seen) * 1.0)
        self.requote_done_ns = done_ns
        self._flush_events()

    async def _place(self, order: TrackedOrder) -> None:
        assert self.gateway is not None
        try:
            snap = await self.gateway.create_limit(
                self.symbol,
                order.side,
                order.amount,
                order.price,
                client_order_id=order.client_order_id,
                post_only=True,
            )
        except Transient as exc:
            self.tracker.unanswered(order.client_order_id)  # resolved by lookup, never re-sent
            self._honour_retry_after(exc)
            if self.feed is not None:
                self.feed.order_call_failed(exc)  # and the next pass reconciles by REST
            return
        except Rejected as exc:
            now = self.clock()
            self.tracker.refused(order.client_order_id, exc.kind, now)
            if exc.kind == "insufficient_balance":
                self.side_cooldown[order.side] = now + SIDE_COOLDOWN_MS
            elif exc.kind == "duplicate":
                order.status = "unknown"  # an earlier attempt landed: look it up
            elif exc.kind != "would_take":
                self.risk.record_reject()
            return
        self.risk.record_accept()
        self.tracker.acknowledged(order.client_order_id, snap, self.clock())

    async def _cancel(self, orders: list[TrackedOrder], now: int) -> None:
        await asyncio.gather(*(self._cancel_one(o, now) for o in orders if o.status in ("open", "cancelling")))

    async def _cancel_one(self, order: TrackedOrder, now: int) -> None:
        assert self.gateway is not None
        self.tracker.cancel_sent(order.client_order_id, now)
        try:
            snap = await self.gateway.cancel(self.symbol, order.client_order_id)
        except Transient as exc:
            self._honour_retry_after(exc)
            if self.feed is not None:
                self.feed.order_call_failed(exc)
            return  # lost ack: re-checked on the next sync
        except NotFound:
            await self._resolve_missing(order, self.clock())
            return
        except Rejected:
            return
        self.tracker.apply_snapshot(snap, self.clock())

    async def _cancel_everything(self) -> None:
        """Cancel every order of the job and confirm with the exchange that none rests; retries through outages."""
        assert self.gateway is not None
        gw = self.gateway
        while True:
            try:
                await gw.cancel_all(self.symbol)
                now = self.clock()
                for order in self.tracker.in_state("open", "cancelling"):
                    self.tracker.cancel_sent(order.client_order_id, now)
                await self._sync(now)
                self._contact()
                remaining = [o for o in self.tracker.live() if o.status != "pending"]
                if not remaining:  # _sync just listed the exchange's open orders: none of ours rests
                    self._flush_events()
                    return
                if all(o.status == "unknown" for o in remaining):
                    await asyncio.sleep(AMBIGUOUS_RESOLVE_MS / 4000)
            except Transient as exc:
                await asyncio.sleep(self._backoff(exc) / 1000)
