"""The market-data recorder's pure rules: when a sample is due, which levels are kept, when a book is too old,
and which shard records a campaign (docs/scoring.md, "Market-data recorder").

Levels come in as ccxt gives them, `(price, size)` numbers (ccxt's unified book holds floats), and leave as
exact decimal strings: the shortest text that reads back as the same float is the exchange's own decimal for
every value of at most 15 significant digits, which covers the tick and step sizes of spot markets (Binance's
carry at most 8 decimals). A level that does not round-trip, or is not a positive finite number, is refused
rather than rounded.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from payouts.domain.scoring.inputs import Book

BPS = 10_000

Level = tuple[str, str]  # (price, size) as decimal strings


class LevelError(ValueError):
    """A level the recorder cannot store exactly (not a positive finite decimal)."""

    code = "recorder_level_invalid"


def sample_time_at_or_after(*, start_ms: int, sample_ms: int, now_ms: int) -> int:
    """The first sample time `start_ms + k * sample_ms` (k ≥ 0) not before `now_ms`: sample times are aligned
    to the campaign's start, as its epochs are."""
    if sample_ms <= 0:
        raise ValueError("sample_ms must be positive")
    if now_ms <= start_ms:
        return start_ms
    k = -(-(now_ms - start_ms) // sample_ms)
    return start_ms + k * sample_ms


def sample_times(*, start_ms: int, sample_ms: int, from_ms: int, until_ms: int) -> list[int]:
    """Every sample time in [from_ms, until_ms)."""
    t = sample_time_at_or_after(start_ms=start_ms, sample_ms=sample_ms, now_ms=from_ms)
    return list(range(t, until_ms, sample_ms)) if t < until_ms else []


def is_stale(*, book_ms: int | None, t_ms: int, tolerance_ms: int) -> bool:
    """A book stands for sample time t only when its own time is within `tolerance_ms` of t (either way: the
    recorder reads the book just after t, and a REST answer can carry a time just past it)."""
    return book_ms is None or abs(t_ms - book_ms) > tolerance_ms


def decimal_text(value: float | int | str) -> str:
    """A level's number as an exact plain decimal string (no exponent, no trailing zeros)."""
    if isinstance(value, bool):
        raise LevelError(f"{value!r} is not a number")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise LevelError(f"{value!r} is not finite")
        text = repr(value)
        if len(Decimal(text).normalize().as_tuple().digits) > 15:  # beyond what a float carries exactly
            raise LevelError(f"{value!r} has more digits than a float keeps exactly")
    else:
        text = str(value)
    try:
        number = Decimal(text)
    except ArithmeticError:
        raise LevelError(f"{value!r} is not a decimal number") from None
    if not number.is_finite() or number < 0:
        raise LevelError(f"{value!r} is not a non-negative decimal")
    out = format(number.normalize(), "f")
    return out


@dataclass(frozen=True)
class TrimmedBook:
    """The levels kept of one book, best first; `mid` None means a side was empty (stored as a gap)."""

    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    mid: Fraction | None

    def as_json(self) -> dict[str, list[list[str]]]:
        return {"bids": [list(level) for level in self.bids], "asks": [list(level) for level in self.asks]}


def _levels(raw: Iterable[Sequence[float | int | str]]) -> list[tuple[Fraction, Level]]:
    out: list[tuple[Fraction, Level]] = []
    for entry in raw:
        price, size = decimal_text(entry[0]), decimal_text(entry[1])
        if Fraction(size) == 0:  # a removed level
            continue
        if Fraction(price) == 0:
            raise LevelError("a level's price must be positive")
        out.append((Fraction(price), (price, size)))
    return out


def trim_book(
    *,
    bids: Iterable[Sequence[float | int | str]],
    asks: Iterable[Sequence[float | int | str]],
    max_spread_bps: int,
    margin_bps: int,
) -> TrimmedBook:
    """The levels within `max_spread_bps + margin_bps` of the mid, best first (bids high to low, asks low to
    high). Scoring only counts orders within max_spread_bps; the margin keeps a little more so that a reader can
    see the book just outside the band. With a side empty there is no mid and nothing is kept."""
    bid_levels = sorted(_levels(bids), key=lambda x: x[0], reverse=True)
    ask_levels = sorted(_levels(asks), key=lambda x: x[0])
    if not bid_levels or not ask_levels:
        return TrimmedBook(bids=(), asks=(), mid=None)
    mid = (bid_levels[0][0] + ask_levels[0][0]) / 2
    band = mid * Fraction(max_spread_bps + margin_bps, BPS)
    kept_bids = tuple(level for price, level in bid_levels if mid - price <= band)
    kept_asks = tuple(level for price, level in ask_levels if price - mid <= band)
    return TrimmedBook(bids=kept_bids, asks=kept_asks, mid=mid)


def stored_book(document: dict[str, list[list[str]]]) -> Book:
    """A stored row's book as the scoring engine's `Book` (exact fractions)."""
    return Book.from_json(document, "book")


def shard_of(*, chain_id: int, address: str, shards: int) -> int:
    """The shard that records a campaign: a stable hash of (chain id, address), the same in every process and
    every run (Python's own `hash` of a string is salted per process)."""
    if shards < 1:
        raise ValueError("shards must be at least 1")
    digest = hashlib.sha256(f"{chain_id}:{address.lower()}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards
