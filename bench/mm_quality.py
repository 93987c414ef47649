"""Market-making quality, computed from what the exchange saw: pure functions, Decimal only, no I/O.

`bench_mm_quality.py` collects the raw observations (the job's resting orders and the public book once a second,
the public mid every ~100 ms, the job's fills from the exchange at the end) and hands them here. Definitions and
sign conventions are in docs/executor-streams.md ("Market-making quality"); in short:

- **two-sided uptime**: share of samples where the job has at least one resting buy and one resting sell whose
  price is within `band` (1 %) of the mid of the same instant;
- **in-band depth**: Σ price × remaining of those in-band orders (quote units), averaged over the samples;
- **PnL**: average cost, fees counted once: a fill is reduced to the cash it moved (base received net of a fee
  in base, quote paid or received net of a fee in quote), so a fee is never subtracted a second time; the
  opening inventory is booked at the mid when the run started; unrealized is marked at the final mid;
- **markout** at horizon h, in bps, higher is better for the maker: buy (mid(t+h) − price)/price × 10⁴, sell
  (price − mid(t+h))/price × 10⁴; volume-weighted over the fills whose t+h the mid series covers;
- **inventory excursion**: the largest distance of the base held from where it started, with the lowest and
  highest base held and how far (if at all) the path went beyond the job's `min_base` / `max_base`.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

ZERO = Decimal(0)
BPS = Decimal(10_000)
BAND = Decimal("0.01")


@dataclass(frozen=True)
class Fill:
    """One fill of the job as the exchange reports it (Binance `myTrades`: price, qty, commission, isBuyer)."""

    ts_ms: int
    trade_id: int
    side: str  # "buy" | "sell"
    price: Decimal
    amount: Decimal
    fee: Decimal
    fee_asset: str


@dataclass(frozen=True)
class Resting:
    side: str
    price: Decimal
    remaining: Decimal


@dataclass(frozen=True)
class BandSample:
    two_sided: bool
    depth_quote: Decimal


def mid_of(bid: Decimal | None, ask: Decimal | None) -> Decimal | None:
    if bid is None or ask is None or bid <= 0 or ask <= 0:
        return None
    return (bid + ask) / 2


def in_band(price: Decimal, mid: Decimal, band: Decimal = BAND) -> bool:
    return abs(price - mid) <= mid * band


def band_sample(orders: Iterable[Resting], mid: Decimal | None, band: Decimal = BAND) -> BandSample:
    """One instant: are both sides resting inside the band, and how much quote sits there. No mid: nothing is
    in band (a book without one side is no instant at which the job can be said to quote well)."""
    if mid is None:
        return BandSample(False, ZERO)
    inside = [o for o in orders if o.remaining > 0 and in_band(o.price, mid, band)]
    sides = {o.side for o in inside}
    depth = sum((o.price * o.remaining for o in inside), ZERO)
    return BandSample({"buy", "sell"} <= sides, depth)


def uptime_pct(samples: Sequence[BandSample]) -> Decimal | None:
    if not samples:
        return None
    return Decimal(sum(1 for s in samples if s.two_sided)) * 100 / len(samples)


def mean_depth(samples: Sequence[BandSample]) -> Decimal | None:
    if not samples:
        return None
    return sum((s.depth_quote for s in samples), ZERO) / len(samples)


# -- fills: volume, cash flows, PnL ------------------------------------------------------------------------------


def ordered(fills: Iterable[Fill]) -> list[Fill]:
    return sorted(fills, key=lambda f: (f.ts_ms, f.trade_id))


def volume_base(fills: Iterable[Fill]) -> Decimal:
    return sum((f.amount for f in fills), ZERO)


def cash_flow(fill: Fill, base: str, quote: str) -> tuple[Decimal, Decimal]:
    """(Δbase, Δquote) of the account for one fill, each net of the fee charged in that asset — the one place a
    fee is counted."""
    if fill.fee_asset not in (base, quote) and fill.fee != 0:
        raise ValueError(f"fee in {fill.fee_asset}: only {base} or {quote} can be accounted")
    fee_base = fill.fee if fill.fee_asset == base else ZERO
    fee_quote = fill.fee if fill.fee_asset == quote else ZERO
    notional = fill.price * fill.amount
    if fill.side == "buy":
        return fill.amount - fee_base, -notional - fee_quote
    if fill.side == "sell":
        return -fill.amount - fee_base, notional - fee_quote
    raise ValueError(f"side {fill.side!r}")


def fee_quote_value(fills: Iterable[Fill], base: str) -> Decimal:
    """Fees in quote units (a fee in base valued at its fill's price): reported, never subtracted again."""
    return sum((f.fee * f.price if f.fee_asset == base else f.fee for f in fills), ZERO)


@dataclass
class AverageCost:
    """A position under average cost, long or short: `cost` is the signed cost basis of `position` (quote)."""

    position: Decimal = ZERO
    cost: Decimal = ZERO
    realized: Decimal = ZERO

    def apply(self, d_base: Decimal, d_quote: Decimal) -> None:
        """The account's base moved by `d_base` for `d_quote` of cash (negative when paid).

        Adding to the position (or opening one) adds the cash paid to the basis. Reducing it realizes the cash of
        the closing part less the basis of the units closed, for a long (sold for cash above its cost) and a
        short alike (bought back for less than it was sold: its basis is minus the cash received). A trade
        larger than the position closes it and opens the rest the other way at its own price. Throughout,
        realized − cost = Σ cash, so realized + unrealized is the account's value change at the mark."""
        if d_base == 0:
            self.realized += d_quote  # cash without base (a fee alone): straight to realized
            return
        if self.position == 0 or (self.position > 0) == (d_base > 0):
            self.position += d_base
            self.cost -= d_quote
            return
        closed = min(abs(d_base), abs(self.position))
        share = closed / abs(d_base)
        basis = self.cost * closed / abs(self.position)
        self.realized += d_quote * share - basis
        rest = abs(d_base) - closed
        sign = 1 if d_base > 0 else -1
        if closed == abs(self.position):
            self.position, self.cost = sign * rest, -d_quote * (1 - share) if rest > 0 else ZERO
        else:
            self.position += sign * closed
            self.cost -= basis

    def unrealized(self, mark: Decimal) -> Decimal:
        return self.position * mark - self.cost


@dataclass(frozen=True)
class Pnl:
    realized: Decimal
    unrealized: Decimal
    fees_quote: Decimal  # for information: already inside realized/unrealized through the cash flows

    @property
    def total(self) -> Decimal:
        return self.realized + self.unrealized


def pnl(fills: Iterable[Fill], *, base: str, quote: str, base0: Decimal, mark0: Decimal, mark_end: Decimal) -> Pnl:
    """Average-cost PnL of a run: the opening inventory `base0` booked at `mark0`, then every fill's cash flow,
    unrealized at `mark_end`."""
    book = AverageCost()
    book.apply(base0, -base0 * mark0)
    fills = ordered(fills)
    for fill in fills:
        book.apply(*cash_flow(fill, base, quote))
    return Pnl(book.realized, book.unrealized(mark_end), fee_quote_value(fills, base))


# -- markouts ----------------------------------------------------------------------------------------------------


@dataclass
class MidSeries:
    """Mid samples in time order; `at(t)` is the last mid observed at or before t (an as-of join). A time after
    the last sample is not known yet: None (the series may not extend to it)."""

    times: list[int] = field(default_factory=list)
    mids: list[Decimal] = field(default_factory=list)

    def add(self, ts_ms: int, mid: Decimal | None) -> None:
        if mid is None:
            return
        if self.times and ts_ms < self.times[-1]:
            raise ValueError("mid samples must come in time order")
        self.times.append(ts_ms)
        self.mids.append(mid)

    def at(self, ts_ms: int) -> Decimal | None:
        if not self.times or ts_ms > self.times[-1]:
            return None
        i = bisect.bisect_right(self.times, ts_ms) - 1
        return self.mids[i] if i >= 0 else None

    @property
    def last(self) -> Decimal | None:
        return self.mids[-1] if self.mids else None


def markout_bps(fill: Fill, mid_later: Decimal) -> Decimal:
    """Signed so that higher is better for the maker: a buy that the mid then rose above earned."""
    move = mid_later - fill.price if fill.side == "buy" else fill.price - mid_later
    return move / fill.price * BPS


def markout(fills: Iterable[Fill], mids: MidSeries, horizon_ms: int) -> Decimal | None:
    """Volume-weighted markout at `horizon_ms` over the fills the series covers; None when it covers none."""
    weighted, volume = ZERO, ZERO
    for fill in fills:
        later = mids.at(fill.ts_ms + horizon_ms)
        if later is None:
            continue
        weighted += markout_bps(fill, later) * fill.amount
        volume += fill.amount
    return weighted / volume if volume > 0 else None


# -- inventory ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Excursion:
    largest: Decimal  # max |base held − base0| along the path
    low: Decimal  # the least base held
    high: Decimal  # the most base held
    beyond_caps: Decimal  # how far past min_base / max_base the path went (0: never)


def inventory_path(fills: Iterable[Fill], *, base: str, quote: str, base0: Decimal) -> list[Decimal]:
    """Base held after each fill (by the exchange's fills, net of fees in base), starting at `base0`."""
    held, path = base0, [base0]
    for fill in ordered(fills):
        held += cash_flow(fill, base, quote)[0]
        path.append(held)
    return path


def excursion(path: Sequence[Decimal], *, min_base: Decimal | None, max_base: Decimal | None) -> Excursion:
    start = path[0]
    low, high = min(path), max(path)
    beyond = ZERO
    if max_base is not None:
        beyond = max(beyond, high - max_base)
    if min_base is not None:
        beyond = max(beyond, min_base - low)
    return Excursion(max(abs(p - start) for p in path), low, high, beyond)


# -- printing ----------------------------------------------------------------------------------------------------


def ratio(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    """a / b for two non-negative figures; None when either is missing or b is zero."""
    if a is None or b is None or b == 0:
        return None
    return a / b


def difference(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    return None if a is None or b is None else a - b


def show(value: Decimal | int | None, places: int = 2) -> str:
    """A BENCH value: fixed point with `places` decimals, `n/a` when there is none."""
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return str(value)
    # Rounding named, not taken from the thread's decimal context (which other code may have changed).
    return f"{value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN):f}"
