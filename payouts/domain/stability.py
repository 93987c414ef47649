"""The stability reports of a campaign's market, from the oracle's own book snapshots only (docs/stability.md):
liquidity uptime, spread stability per UTC hour, depth drawdown, and depth by distance from the mid. Pure.

A snapshot's book is what the recorder stored (`payouts.models.BookSnapshot.book`): `{"bids": [[price, size], ...],
"asks": [...]}`, exact decimal strings, trimmed to the band plus a margin. The mid is the oracle's (the scoring
engine's `Book.mid`): (best bid + best ask) / 2. A level is *in the band* when it is strictly closer to the mid than
`max_spread_bps` — `|price − mid| × 10⁴ < max_spread_bps × mid` — the scoring rule's own edge ("an order this far
from the mid or farther scores nothing").

Everything is exact: each book is read into integers on one decimal scale (a campaign can hold 100k+ samples, and
Fractions per level would take a minute), sums are Decimals under a context that refuses to round, ratios are
Fractions. Rounding happens once, when a figure is written for people (`fixed2`), half to even. Spreads are kept per
sample already rounded to hundredths of a basis point: rounding is monotone, so the nearest-rank percentile of the
rounded values is the rounded percentile of the exact ones.

`StabilityAccumulator` takes a campaign's rows in time order, one at a time, and keeps only counts, sums, a histogram
of the spreads per UTC hour and a bounded chart series, so a selector can stream rows from the database; its state
carries over as JSON, so a long campaign's settled past is counted once.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Context, Decimal, Inexact, InvalidOperation, localcontext
from fractions import Fraction
from functools import lru_cache
from typing import Any

from payouts.domain.recorder import sample_time_at_or_after

BPS = 10_000
HOUR_MS = 3_600_000
CENTI_BPS = 100  # spreads are kept in hundredths of a basis point: the page shows two decimals
LADDER_STEPS = (10, 25, 50)  # distance bucket edges in bps: 10, 25, 50, then ×10 (100, 250, 500, 1000, ...)
CHART_POINTS = 240  # the most chart buckets a selection is drawn with: under 3 px each on the 640-unit-wide chart
BASE_PER_POINT = 32  # base chart buckets kept per drawn point: a running campaign's chart keeps its detail as it grows
MEDIAN, P95 = 50, 95
# Exact decimal sums: a refusal (Inexact) instead of a silent rounding, should a sum ever outgrow the precision.
EXACT = Context(prec=200, traps=[Inexact, InvalidOperation])
_DECIMAL_RE = re.compile(r"(\d{1,40})(?:\.(\d{1,40}))?")
ZERO = Decimal(0)


class StabilityInputError(ValueError):
    """A stored book or row that cannot be read exactly, or rows not in sample-time order."""

    code = "stability_input_invalid"


# --- Distance buckets -----------------------------------------------------------------------------------------


def distance_edges(max_spread_bps: int) -> tuple[int, ...]:
    """The upper edges of the distance buckets, in bps from the mid: the 10-25-50 ladder (10, 25, 50, 100, 250,
    500, 1000, ...) below the band, then the band itself. 100 → (10, 25, 50, 100); 40 → (10, 25, 40); 5 → (5,).
    Bucket i holds the levels at distance d with edges[i−1] ≤ d < edges[i] (edges[−1] = 0)."""
    if max_spread_bps < 1:
        raise ValueError(f"the band must be at least 1 bps, not {max_spread_bps}")
    edges: list[int] = []
    scale = 1
    while True:
        for step in LADDER_STEPS:
            edge = step * scale
            if edge >= max_spread_bps:
                return (*edges, max_spread_bps)
            edges.append(edge)
        scale *= 10


# --- One sample --------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1 << 16)
def _scaled(text: str) -> tuple[int, int]:
    """A decimal string as (digits as an integer, places): "0.0125" → (125, 4)."""
    m = _DECIMAL_RE.fullmatch(text) if type(text) is str else None
    if m is None:
        raise StabilityInputError(f"{text!r} is not a plain non-negative decimal string")
    whole, frac = m.group(1), (m.group(2) or "").rstrip("0")
    return int(whole + frac), len(frac)


@lru_cache(maxsize=1 << 17)
def _level(price_text: str, size_text: str) -> tuple[int, int, int, int]:
    """A level as (price digits, price places, size digits, size places). Levels repeat from one sample to the
    next (a resting order stays), so the parse is cached."""
    price, places = _scaled(price_text)
    size, size_places = _scaled(size_text)
    if price == 0:
        raise StabilityInputError("a level has price 0")
    return price, places, size, size_places


_POW10 = tuple(10**k for k in range(41))  # _DECIMAL_RE allows 40 places


def _side(raw: Any, name: str) -> list[tuple[int, int, int, int]]:
    """This runs for every level of every sample: checks that loop in C where they can."""
    if type(raw) is not list or not set(map(type, raw)) <= {list}:
        raise StabilityInputError(f"book.{name} must be a list of [price, size]")
    try:
        return [_level(*level) for level in raw]
    except TypeError:  # not two values, or an unhashable one
        raise StabilityInputError(f"a level of book.{name} is [price, size] as two decimal strings") from None


@dataclass(frozen=True)
class SampleFigures:
    """What one stored book shows. `bids` and `asks` are the quote notional (Σ price × size) resting in each
    distance bucket; `spread_cbps` is None when a side is empty (the recorder trimmed it away: the spread was wider
    than the band plus its margin on both sides)."""

    two_sided: bool  # at least one bid and one ask inside the band
    spread_cbps: int | None  # (best ask − best bid) / mid in hundredths of a bps, rounded half to even
    bids: tuple[Decimal, ...]
    asks: tuple[Decimal, ...]

    @property
    def depth(self) -> Decimal:
        with localcontext(EXACT):
            return sum(self.bids, ZERO) + sum(self.asks, ZERO)


def sample_figures(book: Mapping[str, Any], edges: Sequence[int]) -> SampleFigures:
    """The figures of one stored book for distance buckets `edges` (the last one is the band). Raises
    `StabilityInputError`."""
    if not isinstance(book, Mapping):
        raise StabilityInputError("a stored book is {bids, asks}")
    bids, asks = _side(book.get("bids"), "bids"), _side(book.get("asks"), "asks")
    empty = (ZERO,) * len(edges)
    if not bids or not asks:
        return SampleFigures(two_sided=False, spread_cbps=None, bids=empty, asks=empty)
    # One scale for every price and one for every size of the book: integers compare and multiply exactly.
    p_places = max(max(level[1] for level in bids), max(level[1] for level in asks))
    s_places = max(max(level[3] for level in bids), max(level[3] for level in asks))
    best_bid = max(p * _POW10[p_places - pp] for p, pp, _, _ in bids)
    best_ask = min(p * _POW10[p_places - pp] for p, pp, _, _ in asks)
    mid2 = best_bid + best_ask  # twice the mid: |price − mid| × 10⁴ < e × mid  ⇔  |2·price − mid2| × 10⁴ < e × mid2
    limits = [edge * mid2 for edge in edges]
    last = len(edges)

    def buckets(levels: list[tuple[int, int, int, int]]) -> list[int]:
        sums = [0] * (last + 1)  # the extra one gathers what is outside the band
        for p, pp, size, sp in levels:
            price = p * _POW10[p_places - pp]
            # bisect_right: the first limit above the distance, so a level at an edge goes to the farther bucket.
            sums[bisect_right(limits, abs(2 * price - mid2) * BPS)] += price * size * _POW10[s_places - sp]
        return sums[:last]

    bid_sums, ask_sums = buckets(bids), buckets(asks)
    places = p_places + s_places
    spread = round(Fraction(2 * (best_ask - best_bid) * BPS * CENTI_BPS, mid2))  # round() of a Fraction: half even
    return SampleFigures(
        two_sided=any(bid_sums) and any(ask_sums),
        spread_cbps=spread,
        bids=tuple(_decimal(n, places) for n in bid_sums),
        asks=tuple(_decimal(n, places) for n in ask_sums),
    )


def _decimal(units: int, places: int) -> Decimal:
    return Decimal(units).scaleb(-places, context=EXACT)


# --- Rounding for people -------------------------------------------------------------------------------------------


def fixed2(value: Fraction | Decimal | int) -> str:
    """A number with exactly two decimals, rounded half to even: 1234.565 → "1234.56", 0.005 → "0.00", 2 → "2.00".
    Every figure the page, the CSV and the JSON show goes through here (bps, percentages, quote amounts)."""
    hundredths = round(Fraction(value) * 100)
    sign = "-" if hundredths < 0 else ""
    whole, cents = divmod(abs(hundredths), 100)
    return f"{sign}{whole}.{cents:02d}"


def cbps_text(cbps: int) -> str:
    """Hundredths of a bps as bps with two decimals: 1234 → "12.34"."""
    return fixed2(Fraction(cbps, CENTI_BPS))


def nearest_rank(counts: Mapping[int, int], percent: int) -> int:
    """The nearest-rank percentile of a multiset given as {value: how many times}: the value at rank
    ⌈percent/100 × n⌉ (1-based) of the n values sorted ascending. Always one of the values, never an interpolation;
    the median (50) of an even count is the lower of the two middle values."""
    if not 0 < percent <= 100:
        raise ValueError(f"a percentile is within (0, 100], not {percent}")
    n = sum(counts.values())
    if n == 0:
        raise ValueError("no values to rank")
    rank = -(-percent * n // 100)
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= rank:
            return value
    raise AssertionError("unreachable: the ranks add up to n")


# --- The reports ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Uptime:
    """Of `samples` sample times, `up` had two-sided depth in the band. The rest: `missing` (no row: the recorder
    was not running), `gap_rows` (a row without a book: why is in the row) and `thin` (a book, but a side with
    nothing in the band)."""

    samples: int
    up: int
    missing: int
    gap_rows: int
    thin: int

    @property
    def share(self) -> Fraction | None:
        return Fraction(self.up, self.samples) if self.samples else None


@dataclass(frozen=True)
class SpreadStats:
    """The quoted spread over `samples` samples (those whose stored book has both sides), in hundredths of a bps:
    median and 95th percentile by nearest rank, lowest and highest."""

    samples: int
    median_cbps: int
    p95_cbps: int
    min_cbps: int
    max_cbps: int


@dataclass(frozen=True)
class SpreadHour:
    hour_ms: int  # the UTC hour's start
    stats: SpreadStats


@dataclass(frozen=True)
class Drawdown:
    """The largest fall of in-band depth (quote notional, both sides) from its running peak, over the `samples`
    samples with a stored book. `amount` 0 and no times when the depth never fell."""

    samples: int
    amount: Decimal
    peak: Decimal  # the running peak the fall started from (the highest depth when it never fell)
    trough: Decimal
    peak_ms: int | None  # the last sample at that peak before the trough
    trough_ms: int | None  # the first sample of the largest fall
    highest: Decimal
    lowest: Decimal
    last: Decimal

    @property
    def share(self) -> Fraction | None:
        """The fall as a fraction of its peak; None when the peak is 0 (nothing to fall from)."""
        return Fraction(self.amount) / Fraction(self.peak) if self.peak else None


@dataclass(frozen=True)
class DistanceBand:
    """Mean in-band quote notional at distance [low_bps, high_bps) from the mid, per side, over `samples`."""

    low_bps: int
    high_bps: int
    samples: int
    bid_mean: Fraction
    ask_mean: Fraction


@dataclass(frozen=True)
class ChartBucket:
    """Consecutive sample times drawn as one point: [from_ms, to_ms)."""

    from_ms: int
    to_ms: int
    samples: int
    up: int
    depth_low: Decimal | None  # None: no stored book in the stretch
    depth_high: Decimal | None
    peak: Decimal | None  # the running peak at the stretch's end (None before the first stored book)


@dataclass(frozen=True)
class StabilityReport:
    band_bps: int
    sample_ms: int
    first_ms: int  # the first sample time of the selection
    until_ms: int  # the sample times in [first_ms, until_ms) are counted
    uptime: Uptime
    spread: SpreadStats | None  # over the whole selection; None: no sample had both sides
    spread_hours: tuple[SpreadHour, ...]
    drawdown: Drawdown | None  # None: no stored book
    bands: tuple[DistanceBand, ...]
    chart: tuple[ChartBucket, ...]


def _stats(counts: Mapping[int, int]) -> SpreadStats:
    return SpreadStats(
        samples=sum(counts.values()),
        median_cbps=nearest_rank(counts, MEDIAN),
        p95_cbps=nearest_rank(counts, P95),
        min_cbps=min(counts),
        max_cbps=max(counts),
    )


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _dec(value: Any) -> Decimal:
    if not isinstance(value, str):
        raise StabilityInputError(f"a saved sum is a decimal string, not {value!r}")
    try:
        return Decimal(value)
    except ArithmeticError:
        raise StabilityInputError(f"a saved sum is a decimal string, not {value!r}") from None


def _opt_dec(value: Any) -> Decimal | None:
    return None if value is None else _dec(value)


STATE_VERSION = 1
CONFIG_KEYS = ("start_ms", "sample_ms", "first_ms", "band_bps", "bucket_samples")


class StabilityAccumulator:
    """The four reports over a campaign's sample times (`start_ms + k · sample_ms`) from `first_ms` on, fed the
    stored rows in increasing `t_ms` (`add`) and told how far the selection reaches (`advance`): a sample time
    passed without a row is a gap, as is a row whose book is None. `report()` reads the state without changing it,
    and `state()` / `resume()` carry it over (JSON-able), so that a long campaign's settled past is read once.

    The chart keeps one base bucket per `bucket_samples` sample times; `report()` groups them into at most
    `points` buckets for drawing."""

    def __init__(self, *, start_ms: int, sample_ms: int, first_ms: int, band_bps: int, bucket_samples: int) -> None:
        if sample_ms <= 0 or bucket_samples <= 0:
            raise ValueError("sample_ms and bucket_samples must be positive")
        if first_ms < start_ms or (first_ms - start_ms) % sample_ms:
            raise ValueError("first_ms must be a sample time of the campaign")
        self.start_ms, self.sample_ms, self.first_ms = start_ms, sample_ms, first_ms
        self.band_bps, self.bucket_samples = band_bps, bucket_samples
        self.edges = distance_edges(band_bps)
        self.next_ms = first_ms  # the next sample time not yet counted
        self.rows = 0  # rows taken, gap rows included
        self.up = self.missing = self.gap_rows = self.thin = self.observed = 0
        self.hours: dict[int, dict[int, int]] = {}  # UTC hour → {spread in cbps: samples}
        self.bid_sums = [ZERO] * len(self.edges)
        self.ask_sums = [ZERO] * len(self.edges)
        self.peak: Decimal | None = None
        self.peak_ms: int | None = None
        self.fall: tuple[Decimal, Decimal, Decimal, int, int] | None = None  # amount, peak, trough, their times
        self.highest: Decimal | None = None
        self.lowest: Decimal | None = None
        self.last: Decimal | None = None
        # Base chart buckets, one list entry per bucket, appended as sample times pass.
        self.b_samples: list[int] = []
        self.b_up: list[int] = []
        self.b_low: list[Decimal | None] = []
        self.b_high: list[Decimal | None] = []
        self.b_peak: list[Decimal | None] = []

    @classmethod
    def for_selection(
        cls, *, start_ms: int, sample_ms: int, from_ms: int, end_ms: int, band_bps: int, points: int = CHART_POINTS
    ) -> StabilityAccumulator:
        """An accumulator for the sample times in [from_ms, end_ms): its base chart buckets are sized so that the
        whole selection fits in `BASE_PER_POINT × points` of them, however far it has run."""
        first = sample_time_at_or_after(start_ms=start_ms, sample_ms=sample_ms, now_ms=max(from_ms, start_ms))
        total = max(0, -(-(end_ms - first) // sample_ms))
        bucket = max(1, -(-total // (points * BASE_PER_POINT)))
        return cls(start_ms=start_ms, sample_ms=sample_ms, first_ms=first, band_bps=band_bps, bucket_samples=bucket)

    # --- feeding ---

    def _base(self, t_ms: int) -> int:
        index = (t_ms - self.first_ms) // self.sample_ms // self.bucket_samples
        while len(self.b_samples) <= index:
            self.b_samples.append(0)
            self.b_up.append(0)
            self.b_low.append(None)
            self.b_high.append(None)
            self.b_peak.append(self.peak)
        return index

    def _gap(self, t_ms: int) -> None:
        self.b_samples[self._base(t_ms)] += 1

    def advance(self, until_ms: int) -> None:
        """Every sample time before until_ms not yet counted had no row (the recorder was not running)."""
        while self.next_ms < until_ms:
            self.missing += 1
            self._gap(self.next_ms)
            self.next_ms += self.sample_ms

    def add(self, t_ms: int, book: Mapping[str, Any] | None) -> None:
        """One stored row, in increasing time from `next_ms` on; a row off the sample grid or out of order is
        refused (`StabilityInputError`)."""
        if (t_ms - self.start_ms) % self.sample_ms:
            raise StabilityInputError(f"a row at {t_ms} is not on the campaign's sample grid")
        if t_ms < self.next_ms:
            raise StabilityInputError(f"a row at {t_ms} is out of order (the next sample time is {self.next_ms})")
        self.advance(t_ms)
        self.next_ms = t_ms + self.sample_ms
        self.rows += 1
        if book is None:
            self.gap_rows += 1
            self._gap(t_ms)
            return
        self._observe(t_ms, sample_figures(book, self.edges))

    def _observe(self, t_ms: int, figures: SampleFigures) -> None:
        index = self._base(t_ms)
        self.b_samples[index] += 1
        if figures.two_sided:
            self.up += 1
            self.b_up[index] += 1
        else:
            self.thin += 1
        if figures.spread_cbps is not None:
            hour = self.hours.setdefault(t_ms // HOUR_MS, {})
            hour[figures.spread_cbps] = hour.get(figures.spread_cbps, 0) + 1
        self.observed += 1
        with localcontext(EXACT):
            for i in range(len(self.edges)):
                self.bid_sums[i] += figures.bids[i]
                self.ask_sums[i] += figures.asks[i]
            depth = figures.depth
            if self.peak is None or depth >= self.peak:
                self.peak, self.peak_ms = depth, t_ms
            elif self.fall is None or self.peak - depth > self.fall[0]:
                assert self.peak_ms is not None
                self.fall = (self.peak - depth, self.peak, depth, self.peak_ms, t_ms)
        self.highest = depth if self.highest is None else max(self.highest, depth)
        self.lowest = depth if self.lowest is None else min(self.lowest, depth)
        self.last = depth
        low, high = self.b_low[index], self.b_high[index]
        self.b_low[index] = depth if low is None else min(low, depth)
        self.b_high[index] = depth if high is None else max(high, depth)
        self.b_peak[index] = self.peak

    # --- reading ---

    def report(self, *, points: int = CHART_POINTS) -> StabilityReport:
        """The reports over [first_ms, next_ms)."""
        samples = (self.next_ms - self.first_ms) // self.sample_ms
        uptime = Uptime(samples=samples, up=self.up, missing=self.missing, gap_rows=self.gap_rows, thin=self.thin)
        assert uptime.up + uptime.missing + uptime.gap_rows + uptime.thin == uptime.samples
        every: dict[int, int] = {}
        for counts in self.hours.values():
            for value, n in counts.items():
                every[value] = every.get(value, 0) + n
        hours = tuple(SpreadHour(hour * HOUR_MS, _stats(counts)) for hour, counts in sorted(self.hours.items()))
        drawdown = None
        if self.observed:
            assert self.highest is not None
            assert self.lowest is not None
            assert self.last is not None
            extremes = (self.highest, self.lowest, self.last)
            if self.fall is None:
                drawdown = Drawdown(self.observed, ZERO, self.highest, self.highest, None, None, *extremes)
            else:
                drawdown = Drawdown(self.observed, *self.fall, *extremes)
        lows = (0, *self.edges[:-1])
        n = self.observed
        bands = tuple(
            DistanceBand(
                low_bps=low,
                high_bps=high,
                samples=n,
                bid_mean=Fraction(bid) / n if n else Fraction(0),
                ask_mean=Fraction(ask) / n if n else Fraction(0),
            )
            for low, high, bid, ask in zip(lows, self.edges, self.bid_sums, self.ask_sums, strict=True)
        )
        return StabilityReport(
            band_bps=self.band_bps,
            sample_ms=self.sample_ms,
            first_ms=self.first_ms,
            until_ms=self.next_ms,
            uptime=uptime,
            spread=_stats(every) if every else None,
            spread_hours=hours,
            drawdown=drawdown,
            bands=bands,
            chart=self._chart(points),
        )

    def _chart(self, points: int) -> tuple[ChartBucket, ...]:
        if points < 1:
            raise ValueError("points must be positive")
        used = len(self.b_samples)
        group = max(1, -(-used // points))
        width = self.bucket_samples * self.sample_ms
        out = []
        for g in range(0, used, group):
            lows = [v for v in self.b_low[g : g + group] if v is not None]
            highs = [v for v in self.b_high[g : g + group] if v is not None]
            out.append(
                ChartBucket(
                    from_ms=self.first_ms + g * width,
                    to_ms=min(self.first_ms + (g + group) * width, self.next_ms),
                    samples=sum(self.b_samples[g : g + group]),
                    up=sum(self.b_up[g : g + group]),
                    depth_low=min(lows) if lows else None,
                    depth_high=max(highs) if highs else None,
                    peak=self.b_peak[min(g + group, used) - 1],
                )
            )
        return tuple(out)

    # --- carrying over ---

    def state(self) -> dict[str, Any]:
        """The whole state as JSON-able values (decimals as strings)."""
        return {
            "version": STATE_VERSION,
            **{key: getattr(self, key) for key in CONFIG_KEYS},
            "next_ms": self.next_ms,
            "counts": [self.rows, self.up, self.missing, self.gap_rows, self.thin, self.observed],
            "hours": [[hour, sorted(counts.items())] for hour, counts in sorted(self.hours.items())],
            "bid_sums": [str(v) for v in self.bid_sums],
            "ask_sums": [str(v) for v in self.ask_sums],
            "peak": [_text(self.peak), self.peak_ms],
            "fall": None if self.fall is None else [str(v) for v in self.fall[:3]] + list(self.fall[3:]),
            "depths": [_text(self.highest), _text(self.lowest), _text(self.last)],
            "buckets": [
                self.b_samples,
                self.b_up,
                [_text(v) for v in self.b_low],
                [_text(v) for v in self.b_high],
                [_text(v) for v in self.b_peak],
            ],
        }

    @classmethod
    def resume(cls, state: Any) -> StabilityAccumulator:
        """The accumulator `state()` described. Raises `StabilityInputError` on anything else."""
        try:
            if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
                raise StabilityInputError("not a stability state of this version")
            acc = cls(**{key: _int(state[key]) for key in CONFIG_KEYS})
            acc.next_ms = _int(state["next_ms"])
            acc.rows, acc.up, acc.missing, acc.gap_rows, acc.thin, acc.observed = map(_int, state["counts"])
            acc.hours = {
                _int(hour): {_int(value, signed=True): _int(n) for value, n in counts}
                for hour, counts in state["hours"]
            }
            acc.bid_sums = [_dec(v) for v in state["bid_sums"]]
            acc.ask_sums = [_dec(v) for v in state["ask_sums"]]
            if len(acc.bid_sums) != len(acc.edges) or len(acc.ask_sums) != len(acc.edges):
                raise StabilityInputError("the saved sums do not match the distance buckets")
            acc.peak, acc.peak_ms = _opt_dec(state["peak"][0]), _opt_int(state["peak"][1])
            fall = state["fall"]
            if fall is not None:
                acc.fall = (_dec(fall[0]), _dec(fall[1]), _dec(fall[2]), _int(fall[3]), _int(fall[4]))
            acc.highest, acc.lowest, acc.last = (_opt_dec(v) for v in state["depths"])
            samples, up, low, high, peak = state["buckets"]
            acc.b_samples, acc.b_up = [_int(v) for v in samples], [_int(v) for v in up]
            acc.b_low, acc.b_high = [_opt_dec(v) for v in low], [_opt_dec(v) for v in high]
            acc.b_peak = [_opt_dec(v) for v in peak]
            if len({len(acc.b_samples), len(acc.b_up), len(acc.b_low), len(acc.b_high), len(acc.b_peak)}) != 1:
                raise StabilityInputError("the saved chart buckets do not line up")
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, StabilityInputError):
                raise
            raise StabilityInputError(f"not a stability state: {exc!r}") from None
        return acc


def _int(value: Any, *, signed: bool = False) -> int:
    if type(value) is not int or (value < 0 and not signed):
        raise StabilityInputError(f"a saved count is a whole number, not {value!r}")
    return value


def _opt_int(value: Any) -> int | None:
    return None if value is None else _int(value)


def report_of(
    rows: Sequence[tuple[int, Mapping[str, Any] | None]],
    *,
    start_ms: int,
    sample_ms: int,
    from_ms: int,
    until_ms: int,
    band_bps: int,
    points: int = CHART_POINTS,
) -> StabilityReport:
    """The reports of rows held in memory, over the sample times in [from_ms, until_ms)."""
    acc = StabilityAccumulator.for_selection(
        start_ms=start_ms, sample_ms=sample_ms, from_ms=from_ms, end_ms=until_ms, band_bps=band_bps, points=points
    )
    for t_ms, book in rows:
        acc.add(t_ms, book)
    acc.advance(until_ms)
    return acc.report(points=points)
