"""The strategy contract: what a strategy sees each tick, and what it answers. Pure: no I/O, no clock.

A strategy is a function of its inputs: the order book, the job's own open orders, balances, the market's
rules, the time, and its parameters. It answers with the orders it wants resting, and the open orders to
cancel. The engine (not the strategy) owns every exchange call, risk check, and client order id, so that a
strategy can be tested with plain values and swapped without touching the order lifecycle.

All prices and amounts are `Decimal`, exactly as the exchange reports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Literal, Protocol

Side = Literal["buy", "sell"]


@dataclass(frozen=True)
class Level:
    price: Decimal
    amount: Decimal


@dataclass(frozen=True)
class Book:
    bids: tuple[Level, ...]  # best (highest) first
    asks: tuple[Level, ...]  # best (lowest) first
    ts_ms: int

    @property
    def best_bid(self) -> Decimal | None:
        return self.bids[0].price if self.bids else None

    @property
    def best_ask(self) -> Decimal | None:
        return self.asks[0].price if self.asks else None

    @property
    def mid(self) -> Decimal | None:
        if self.best_bid is None or self.best_ask is None:
            return None
        return (self.best_bid + self.best_ask) / 2


@dataclass(frozen=True)
class OpenOrder:
    client_order_id: str
    side: Side
    price: Decimal
    amount: Decimal  # remaining
    placed_at_ms: int
    level: int  # which level of the ladder the engine placed it for


@dataclass(frozen=True)
class Balances:
    base_free: Decimal
    base_locked: Decimal
    quote_free: Decimal
    quote_locked: Decimal

    @property
    def base_total(self) -> Decimal:
        return self.base_free + self.base_locked

    @property
    def quote_total(self) -> Decimal:
        return self.quote_free + self.quote_locked


@dataclass(frozen=True)
class MarketRules:
    tick_size: Decimal
    lot_size: Decimal
    min_amount: Decimal
    min_notional: Decimal

    def floor_price(self, price: Decimal) -> Decimal:
        return (price / self.tick_size).to_integral_value(rounding=ROUND_FLOOR) * self.tick_size

    def ceil_price(self, price: Decimal) -> Decimal:
        return (price / self.tick_size).to_integral_value(rounding=ROUND_CEILING) * self.tick_size

    def floor_amount(self, amount: Decimal) -> Decimal:
        return (amount / self.lot_size).to_integral_value(rounding=ROUND_FLOOR) * self.lot_size

    def tradable(self, price: Decimal, amount: Decimal) -> bool:
        return amount >= self.min_amount and amount > 0 and price * amount >= self.min_notional


@dataclass(frozen=True)
class StrategyInput:
    now_ms: int
    book: Book
    open_orders: tuple[OpenOrder, ...]
    balances: Balances
    rules: MarketRules
    reference_price: Decimal | None = None  # an external price source; None → the book's mid


@dataclass(frozen=True)
class DesiredOrder:
    side: Side
    level: int
    price: Decimal
    amount: Decimal


@dataclass(frozen=True)
class Decision:
    place: tuple[DesiredOrder, ...] = ()
    cancel: tuple[str, ...] = ()  # client order ids
    keep: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())  # why sides or levels were skipped, for the report


class Strategy(Protocol):
    name: str

    def decide(self, state: StrategyInput) -> Decision: ...
