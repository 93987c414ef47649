"""Risk controls of one job. Pure: the engine asks, the guard answers; no I/O.

Gates, checked every tick before the strategy's orders go out:
- **stale book**: the newest book is older than `stale_book_seconds` → quote nothing, cancel what rests.
- **price sanity**: the book is crossed, or the reference (mid) is further than `PRICE_BAND` from the book's
  VWAP over its top levels, or outside the strategy's external bound (price floor / ceiling) — no quoting.
- **max open orders**, **max order rate** (a token bucket over `max_orders_per_second`) and **max exposure**
  (base value if every live buy filled) trim what is placed, never what is cancelled.

Kill switch, checked every tick: net loss beyond `max_loss_quote`, drawdown from the peak beyond
`max_drawdown_quote`, or `max_consecutive_rejects` refusals in a row. It trips once; the engine cancels
everything and holds the job `halted` until the controller resumes it (which resets the counters).

The limits are the job spec's, parsed (`wire.jobs.RiskLimits`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from executor.strategy.base import Book
from wire.jobs import RiskLimits

PRICE_BAND = Decimal("0.05")  # mid vs VWAP of the top levels
VWAP_LEVELS = 5
ZERO = Decimal(0)


def book_vwap(book: Book, levels: int = VWAP_LEVELS) -> Decimal | None:
    top = book.bids[:levels] + book.asks[:levels]
    volume = sum((lvl.amount for lvl in top), ZERO)
    if volume <= 0:
        return None
    return sum((lvl.price * lvl.amount for lvl in top), ZERO) / volume


def price_insanity(
    book: Book, *, floor: Decimal | None = None, ceiling: Decimal | None = None, band: Decimal = PRICE_BAND
) -> str | None:
    """Why the book's prices cannot be trusted for quoting, or None."""
    bid, ask = book.best_bid, book.best_ask
    if bid is None or ask is None:
        return "one side of the book is empty"
    if bid >= ask:
        return f"crossed book (bid {bid} ≥ ask {ask})"
    mid = (bid + ask) / 2
    vwap = book_vwap(book)
    if vwap is not None and abs(mid - vwap) > vwap * band:
        return f"mid {mid} is more than {band * 100}% from the book VWAP {vwap.quantize(Decimal('1e-8'))}"
    if floor is not None and ceiling is not None and not floor / 2 <= mid <= ceiling * 2:
        return f"mid {mid} is far outside the external bound [{floor}, {ceiling}]"
    return None


@dataclass
class RateBucket:
    """At most `rate` order actions per second, with a burst of `rate`."""

    rate: int
    tokens: Decimal = ZERO
    last_ms: int = 0

    def take(self, now_ms: int, n: int = 1) -> int:
        """Take up to n tokens; returns how many were granted."""
        if self.last_ms == 0:
            self.tokens = Decimal(self.rate)
        else:
            self.tokens = min(Decimal(self.rate), self.tokens + Decimal(now_ms - self.last_ms) * self.rate / 1000)
        self.last_ms = now_ms
        granted = min(n, int(self.tokens))
        self.tokens -= granted
        return granted


@dataclass
class RiskGuard:
    limits: RiskLimits
    consecutive_rejects: int = 0
    bucket: RateBucket = field(init=False)

    def __post_init__(self) -> None:
        self.bucket = RateBucket(self.limits.max_orders_per_second)

    def stale(self, book_seen_ms: int | None, now_ms: int) -> bool:
        return book_seen_ms is None or now_ms - book_seen_ms > self.limits.stale_book_seconds * 1000

    def record_reject(self) -> None:
        self.consecutive_rejects += 1

    def record_accept(self) -> None:
        self.consecutive_rejects = 0

    def kill_reason(self, *, net_pnl: Decimal, drawdown: Decimal) -> str | None:
        if net_pnl <= -self.limits.max_loss_quote:
            return f"loss limit: net PnL {net_pnl} ≤ −{self.limits.max_loss_quote}"
        if drawdown >= self.limits.max_drawdown_quote:
            return f"drawdown limit: {drawdown} from peak ≥ {self.limits.max_drawdown_quote}"
        if self.consecutive_rejects >= self.limits.max_consecutive_rejects:
            return f"{self.consecutive_rejects} consecutive rejects (limit {self.limits.max_consecutive_rejects})"
        return None

    def reset(self) -> None:
        self.consecutive_rejects = 0

    def admit(
        self,
        wanted: list[tuple[str, Decimal, Decimal]],
        *,
        live_orders: int,
        potential_base: Decimal,
        mark: Decimal,
        now_ms: int,
    ) -> tuple[list[int], list[str]]:
        """Which of the wanted (side, price, amount) may be placed now: indexes admitted, and notes on the rest.

        `potential_base` is base held plus every live buy's remaining amount."""
        admitted: list[int] = []
        notes: list[str] = []
        slots = self.limits.max_open_orders - live_orders
        base = potential_base
        for index, (side, _price, amount) in enumerate(wanted):
            if slots <= 0:
                notes.append("max open orders reached")
                break
            if side == "buy" and (base + amount) * mark > self.limits.max_exposure_quote:
                notes.append(f"buy of {amount} would exceed max exposure {self.limits.max_exposure_quote}")
                continue
            if self.bucket.take(now_ms) == 0:
                notes.append("order rate limit reached")
                break
            admitted.append(index)
            slots -= 1
            if side == "buy":
                base += amount
        return admitted, notes
