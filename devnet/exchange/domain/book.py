"""One side-pair order book with price-time priority: price levels kept sorted, FIFO queues within a level."""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from decimal import Decimal

from devnet.exchange.domain.model import ZERO, Order, Side


class OrderBook:
    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        # Prices ascending on both sides; the best bid is the last, the best ask the first.
        self._prices: dict[Side, list[Decimal]] = {Side.BUY: [], Side.SELL: []}
        self._levels: dict[Side, dict[Decimal, list[Order]]] = {Side.BUY: {}, Side.SELL: {}}

    def add(self, order: Order) -> None:
        assert order.price is not None
        levels = self._levels[order.side]
        queue = levels.get(order.price)
        if queue is None:
            queue = levels[order.price] = []
            bisect.insort(self._prices[order.side], order.price)
        queue.append(order)

    def remove(self, order: Order) -> None:
        assert order.price is not None
        levels = self._levels[order.side]
        queue = levels[order.price]
        queue.remove(order)
        if not queue:
            del levels[order.price]
            prices = self._prices[order.side]
            del prices[bisect.bisect_left(prices, order.price)]

    def best(self, side: Side) -> Decimal | None:
        prices = self._prices[side]
        if not prices:
            return None
        return prices[-1] if side is Side.BUY else prices[0]

    def levels_from_best(self, side: Side) -> Iterator[tuple[Decimal, list[Order]]]:
        """Levels best first. Iterates over a snapshot of the prices, so the caller may empty levels on the way."""
        prices = list(reversed(self._prices[side])) if side is Side.BUY else list(self._prices[side])
        for price in prices:
            queue = self._levels[side].get(price)
            if queue:
                yield price, queue

    def depth(self, side: Side, limit: int) -> list[tuple[Decimal, Decimal]]:
        out: list[tuple[Decimal, Decimal]] = []
        for price, queue in self.levels_from_best(side):
            qty = sum((o.remaining for o in queue), ZERO)
            out.append((price, qty))
            if len(out) >= limit:
                break
        return out

    def orders(self) -> Iterator[Order]:
        for side in (Side.BUY, Side.SELL):
            for queue in self._levels[side].values():
                yield from queue

    def level_qty(self, side: Side, price: Decimal) -> Decimal:
        """What rests at one price (zero when the level is gone)."""
        queue = self._levels[side].get(price)
        return sum((o.remaining for o in queue), ZERO) if queue else ZERO
