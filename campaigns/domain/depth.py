"""Live depth frames for the public campaign pages: a ccxt order book made into what a browser draws.

Levels come in as ccxt gives them, `[price, size]` numbers best first, and leave as exact decimal strings: a
float is read through its shortest `repr`, which is the exchange's own decimal for the tick and step sizes of spot
markets, and nothing kept is ever computed in floating point. A frame keeps at most DEPTH_FRAME_LEVELS levels a
side within DEPTH_FRAME_RANGE_BPS of the mid. When a side holds more levels than that within the range, they are
merged into equal-width price buckets, each shown at its worst price with the sum of its sizes: the cumulative
depth at every price shown is then still exact, which is what a depth chart draws.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

BPS = 10_000
DEPTH_FRAME_LEVELS = 50  # per side: enough for a chart, small enough for a thousand clients a second
DEPTH_FRAME_RANGE_BPS = 1000  # ±10 % of the mid: wider than any campaign's band (the schema caps max_spread_bps)
EXACT = 60  # digits for sums and the mid: two 15-digit decimals never need more

Level = tuple[str, str]  # (price, size) as plain decimal strings


class DepthLevelError(ValueError):
    """A level that is not a finite non-negative number: the book is not drawn rather than drawn wrong."""

    code = "depth_level_invalid"


@dataclass(frozen=True)
class Market:
    exchange: str
    symbol: str


@dataclass(frozen=True)
class DepthBook:
    """One side each of levels best first; `mid` None when a side is empty (one-sided book, nothing to centre)."""

    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    mid: str | None


def exact_decimal(value: Any) -> Decimal:
    """A ccxt number as the decimal it stands for: floats through their shortest repr, never their binary value."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise DepthLevelError(f"{value!r} is not a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise DepthLevelError(f"{value!r} is not finite")
    try:
        number = Decimal(repr(value) if isinstance(value, float) else str(value))
    except ArithmeticError:
        raise DepthLevelError(f"{value!r} is not a decimal number") from None
    if not number.is_finite() or number < 0:
        raise DepthLevelError(f"{value!r} is not a non-negative decimal")
    return number


def decimal_text(number: Decimal) -> str:
    """Plain notation, no exponent, no trailing zeros: "0.00012", "65000"."""
    text = format(number.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _merged(raw: Iterable[Sequence[Any]]) -> dict[Decimal, Decimal]:
    """Size by price: equal prices summed, empty levels (size 0, a removed level) dropped."""
    out: dict[Decimal, Decimal] = {}
    with localcontext(prec=EXACT):
        for entry in raw:
            if len(entry) < 2:
                raise DepthLevelError(f"{entry!r} is not a [price, size] level")
            price, size = exact_decimal(entry[0]), exact_decimal(entry[1])
            if price == 0:
                raise DepthLevelError("a level's price must be positive")
            if size != 0:
                out[price] = out.get(price, Decimal(0)) + size
    return out


def _side(levels: dict[Decimal, Decimal], *, mid: Fraction, bids: bool, cap: int, range_bps: int) -> tuple[Level, ...]:
    reach = mid * Fraction(range_bps, BPS)

    def distance(price: Decimal) -> Fraction:
        return mid - Fraction(price) if bids else Fraction(price) - mid

    within = sorted((p for p in levels if distance(p) <= reach), reverse=bids)
    if len(within) <= cap:
        return tuple((decimal_text(p), decimal_text(levels[p])) for p in within)
    # Bucket k holds the levels at distance in [k, k+1) widths of reach/cap from the mid (a crossed level, at a
    # negative distance, counts in the first); each shows the worst price it holds, so cumulative depth is exact.
    buckets: dict[int, tuple[Decimal, Decimal]] = {}
    with localcontext(prec=EXACT):
        for price in within:
            k = min(cap - 1, max(0, math.floor(distance(price) * cap / reach)))
            _, total = buckets.get(k, (price, Decimal(0)))
            buckets[k] = (price, total + levels[price])  # `within` runs best to worst: the last price is the worst
    return tuple((decimal_text(p), decimal_text(s)) for _, (p, s) in sorted(buckets.items()))


def depth_book(
    *,
    bids: Iterable[Sequence[Any]],
    asks: Iterable[Sequence[Any]],
    levels: int = DEPTH_FRAME_LEVELS,
    range_bps: int = DEPTH_FRAME_RANGE_BPS,
) -> DepthBook:
    """The frame's levels of one book. With a side empty there is no mid: the other side is kept whole up to
    `levels` (nothing to measure a range from), so the page can still show what is there."""
    if levels < 1 or range_bps < 1:
        raise ValueError("levels and range_bps must be positive")
    bid_levels, ask_levels = _merged(bids), _merged(asks)
    if not bid_levels or not ask_levels:
        best_bids = sorted(bid_levels, reverse=True)[:levels]
        best_asks = sorted(ask_levels)[:levels]
        return DepthBook(
            bids=tuple((decimal_text(p), decimal_text(bid_levels[p])) for p in best_bids),
            asks=tuple((decimal_text(p), decimal_text(ask_levels[p])) for p in best_asks),
            mid=None,
        )
    with localcontext(prec=EXACT):
        mid = (max(bid_levels) + min(ask_levels)) / 2  # exact: a sum of two short decimals, halved
    exact_mid = Fraction(mid)
    return DepthBook(
        bids=_side(bid_levels, mid=exact_mid, bids=True, cap=levels, range_bps=range_bps),
        asks=_side(ask_levels, mid=exact_mid, bids=False, cap=levels, range_bps=range_bps),
        mid=decimal_text(mid),
    )


def depth_frame(
    *, market: Market, seq: int, created_ms: int, exchange_ts_ms: int | None, book: DepthBook
) -> dict[str, Any]:
    """The `depth.frame` message of docs/api/live-depth.md."""
    return {
        "type": "depth.frame",
        "exchange": market.exchange,
        "symbol": market.symbol,
        "seq": seq,
        "created_ms": created_ms,
        "exchange_ts_ms": exchange_ts_ms,
        "mid": book.mid,
        "bids": [list(level) for level in book.bids],
        "asks": [list(level) for level in book.asks],
    }


def down_frame(*, market: Market, created_ms: int) -> dict[str, Any]:
    """The `depth.down` message: the producer has no book of this market (its stream failed)."""
    return {"type": "depth.down", "exchange": market.exchange, "symbol": market.symbol, "created_ms": created_ms}


def market_shard(market: Market, *, shards: int) -> int:
    """The one producer shard of a market: a stable hash, the same in every process (Python's `hash` is salted)."""
    if shards < 1:
        raise ValueError("shards must be at least 1")
    digest = hashlib.sha256(f"{market.exchange}\n{market.symbol}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards
