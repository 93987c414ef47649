"""What the engine tells its observers about one account, as it happens: order updates (Binance's
executionReport: NEW, TRADE, CANCELED, EXPIRED, TRADE_PREVENTION) and balance changes (outboundAccountPosition
after an order operation, balanceUpdate for a credit or debit).

Each event is a snapshot: the order's mutable fields are copied at the moment, because the order goes on
changing after the listener returns (the user stream renders the event later, on the event loop).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from devnet.exchange.domain.model import Fill, Order, Status


class Execution(StrEnum):
    """Binance's execution types (the `x` of an executionReport)."""

    NEW = "NEW"
    TRADE = "TRADE"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    TRADE_PREVENTION = "TRADE_PREVENTION"


@dataclass(frozen=True)
class OrderUpdate:
    order: Order  # for its immutable fields (ids, side, type, price); the rest is copied below
    execution: Execution
    status: Status
    orig_qty: Decimal
    executed_qty: Decimal
    cumm_quote: Decimal
    fill: Fill | None  # this execution's fill (TRADE only)
    time: int
    on_book: bool  # Binance's `w`: the order is working on the book after this execution
    cancel_id: str | None = None  # the cancel request's own client id (CANCELED)

    @property
    def account_id(self) -> str:
        return self.order.account_id


@dataclass(frozen=True)
class AccountPosition:
    """The account's balances, after an operation, of the assets that operation changed."""

    account_id: str
    balances: tuple[tuple[str, Decimal, Decimal], ...]  # (asset, free, locked)
    time: int


@dataclass(frozen=True)
class BalanceDelta:
    """A credit (positive) or debit (negative) outside trading: deposit, withdrawal, refund, admin credit."""

    account_id: str
    asset: str
    delta: Decimal
    time: int


AccountEvent = OrderUpdate | AccountPosition | BalanceDelta
AccountListener = Callable[[AccountEvent], None]
