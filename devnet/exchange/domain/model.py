"""Value types of the engine: markets with Binance's filters, orders, trades, balances. Decimal only."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from enum import StrEnum

from devnet.exchange.domain import errors

ZERO = Decimal(0)
# Binance reports every balance, fee and quote amount with 8 decimals; the engine keeps the same grid, so what
# it stores is exactly what it sends.
ASSET_EXP = Decimal("0.00000001")


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrderType(StrEnum):
    LIMIT = "LIMIT"
    MARKET = "MARKET"
    LIMIT_MAKER = "LIMIT_MAKER"


class TimeInForce(StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class Status(StrEnum):
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    EXPIRED_IN_MATCH = "EXPIRED_IN_MATCH"  # removed by self-trade prevention


OPEN_STATUSES = frozenset({Status.NEW, Status.PARTIALLY_FILLED})


class Stp(StrEnum):
    """Binance's self-trade prevention modes; the taker's mode decides, as on Binance."""

    NONE = "NONE"
    EXPIRE_TAKER = "EXPIRE_TAKER"
    EXPIRE_MAKER = "EXPIRE_MAKER"
    EXPIRE_BOTH = "EXPIRE_BOTH"


def fmt(value: Decimal) -> str:
    """Binance's wire form: fixed point with 8 decimals ("0.01000000")."""
    return f"{value.quantize(ASSET_EXP):f}"


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


def fee_of(amount: Decimal, rate: Decimal) -> Decimal:
    # Rounded up to the asset grid (the exchange never undercharges), and never more than the amount itself.
    return min(amount, (amount * rate).quantize(ASSET_EXP, rounding=ROUND_UP))


@dataclass(frozen=True)
class MarketSpec:
    """One spot market and its filters, in the units Binance's exchangeInfo publishes."""

    base: str
    quote: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_price: Decimal
    max_price: Decimal
    min_notional: Decimal
    max_notional: Decimal = Decimal("9000000")
    maker_fee: Decimal = Decimal("0.001")
    taker_fee: Decimal = Decimal("0.001")
    default_stp: Stp = Stp.NONE
    max_num_orders: int = 200  # open orders per account on this symbol (Binance's MAX_NUM_ORDERS filter)

    def __post_init__(self) -> None:
        # price × qty must land on the 8-decimal grid, or balances would need rounding on every fill.
        scale = -(self.tick_size.as_tuple().exponent + self.step_size.as_tuple().exponent)  # type: ignore[operator]
        if scale > 8:
            raise ValueError(f"{self.symbol}: tick × step has {scale} decimals; at most 8")

    @property
    def symbol(self) -> str:
        return f"{self.base}{self.quote}"

    @property
    def price_decimals(self) -> int:
        return max(0, -int(self.tick_size.normalize().as_tuple().exponent))

    @property
    def qty_decimals(self) -> int:
        return max(0, -int(self.step_size.normalize().as_tuple().exponent))

    def check_price(self, price: Decimal) -> None:
        if price < self.min_price or price > self.max_price or (price - self.min_price) % self.tick_size != 0:
            raise errors.filter_failure("PRICE_FILTER")

    def check_qty(self, qty: Decimal) -> None:
        if qty < self.min_qty or qty > self.max_qty or (qty - self.min_qty) % self.step_size != 0:
            raise errors.filter_failure("LOT_SIZE")

    def check_notional(self, notional: Decimal) -> None:
        if notional < self.min_notional or notional > self.max_notional:
            raise errors.filter_failure("NOTIONAL")


@dataclass
class Balance:
    free: Decimal = ZERO
    locked: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@dataclass
class Order:
    order_id: int
    client_order_id: str
    account_id: str
    symbol: str
    side: Side
    type: OrderType
    tif: TimeInForce
    price: Decimal | None  # None for market orders
    orig_qty: Decimal
    time: int
    stp: Stp
    quote_order_qty: Decimal = ZERO
    executed_qty: Decimal = ZERO
    cumm_quote: Decimal = ZERO
    status: Status = Status.NEW
    update_time: int = 0
    locked: Decimal = ZERO  # what this order still holds locked (quote for buys, base for sells)
    fill_cap: Decimal | None = None  # partial-fill-only fault: never fill beyond this
    working_time: int = 0

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def fillable(self) -> Decimal:
        if self.fill_cap is None:
            return self.remaining
        return max(ZERO, min(self.remaining, self.fill_cap - self.executed_qty))


@dataclass(frozen=True)
class Trade:
    """One match, as the public tape sees it."""

    trade_id: int
    symbol: str
    price: Decimal
    qty: Decimal
    time: int
    buyer_is_maker: bool
    buy_order_id: int
    sell_order_id: int
    buyer_account: str
    seller_account: str

    @property
    def quote_qty(self) -> Decimal:
        return self.price * self.qty


@dataclass(frozen=True)
class Fill:
    """One side of a trade as its account sees it (Binance's myTrades row)."""

    trade: Trade
    order_id: int
    is_buyer: bool
    is_maker: bool
    commission: Decimal
    commission_asset: str


@dataclass
class Account:
    account_id: str
    balances: dict[str, Balance] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)

    def balance(self, asset: str) -> Balance:
        bal = self.balances.get(asset)
        if bal is None:
            bal = self.balances[asset] = Balance()
        return bal
