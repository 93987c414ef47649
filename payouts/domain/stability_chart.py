"""The geometry of the stability page's four charts, drawn on the server as inline SVG (the page's CSP allows no
inline script, and the figures need none). Pure: exact report values in, SVG coordinates (strings, two decimals)
out; the only floats are the coordinates themselves, made at the last step.

- uptime: one bar per chart bucket, its height the share of the bucket's sample times that were up;
- spread: one pair of bars per UTC hour, the 95th percentile behind the median;
- depth: each chart bucket's lowest-to-highest in-band depth as a bar (at least MIN_RANGE high), the running peak
  as a step line, and two marks at the peak and the trough of the largest drawdown;
- distance bands: per distance bucket from the mid, the mean bid depth to the left of the centre line and the mean
  ask depth to the right.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from payouts.domain.stability import HOUR_MS, DistanceBand, StabilityReport

WIDTH = 640
HEIGHT = 180
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 8, 8, 16, 22  # room above for the scale's label, below for the times
BAND_ROW = 28  # height of one distance bucket's row
MIN_RANGE = 3  # the least height a depth bar is drawn with: a stretch of one depth is a 3 px bar, not nothing


def _coord(value: Fraction | int) -> str:
    return f"{float(value):.2f}"


@dataclass(frozen=True)
class Bar:
    x: str
    y: str
    width: str
    height: str


@dataclass(frozen=True)
class TimeAxis:
    """Maps a time in [first_ms, until_ms) to x."""

    first_ms: int
    until_ms: int
    width: int = WIDTH

    @property
    def plot_w(self) -> int:
        return self.width - PAD_LEFT - PAD_RIGHT

    def x(self, t_ms: int) -> Fraction:
        span = max(1, self.until_ms - self.first_ms)
        return PAD_LEFT + Fraction(t_ms - self.first_ms, span) * self.plot_w


PLOT_H = HEIGHT - PAD_TOP - PAD_BOTTOM
BASE_Y = PAD_TOP + PLOT_H


def _y(value: Fraction, top: Fraction) -> Fraction:
    """y of a value on a 0…top scale (clipped to the plot)."""
    if top <= 0:
        return Fraction(BASE_Y)
    share = min(max(value / top, Fraction(0)), Fraction(1))
    return BASE_Y - share * PLOT_H


def _bar(x0: Fraction, x1: Fraction, y: Fraction, base: Fraction = Fraction(BASE_Y)) -> Bar:
    return Bar(_coord(x0), _coord(min(y, base)), _coord(max(x1 - x0, Fraction(0))), _coord(abs(base - y)))


@dataclass(frozen=True)
class UptimeChart:
    width: int
    height: int
    bars: tuple[Bar, ...]
    full_y: str  # the 100 % line


def uptime_chart(report: StabilityReport) -> UptimeChart:
    axis = TimeAxis(report.first_ms, report.until_ms)
    bars = tuple(
        _bar(axis.x(b.from_ms), axis.x(b.to_ms), _y(Fraction(b.up, b.samples), Fraction(1)))
        for b in report.chart
        if b.samples
    )
    return UptimeChart(WIDTH, HEIGHT, bars, _coord(PAD_TOP))


@dataclass(frozen=True)
class SpreadChart:
    width: int
    height: int
    p95_bars: tuple[Bar, ...]
    median_bars: tuple[Bar, ...]
    top_cbps: int  # the scale's top: the highest hourly p95 (at least 1 cbps)


def spread_chart(report: StabilityReport) -> SpreadChart:
    hours = report.spread_hours
    top = max([h.stats.p95_cbps for h in hours] + [1])
    if not hours:
        return SpreadChart(WIDTH, HEIGHT, (), (), top)
    first = hours[0].hour_ms
    axis = TimeAxis(first, hours[-1].hour_ms + HOUR_MS)
    p95, median = [], []
    for h in hours:
        x0, x1 = axis.x(h.hour_ms), axis.x(h.hour_ms + HOUR_MS)
        gap = (x1 - x0) / 8  # a little room between the hours
        p95.append(_bar(x0 + gap, x1 - gap, _y(Fraction(h.stats.p95_cbps), Fraction(top))))
        inner = (x1 - x0) / 4
        median.append(_bar(x0 + inner, x1 - inner, _y(Fraction(h.stats.median_cbps), Fraction(top))))
    return SpreadChart(WIDTH, HEIGHT, tuple(p95), tuple(median), top)


@dataclass(frozen=True)
class DepthChart:
    width: int
    height: int
    range_path: str  # one rectangle per chart bucket, lowest to highest depth ("" when no book)
    peak_path: str  # the running peak as a step line
    peak_x: str | None  # the largest drawdown's peak and trough
    trough_x: str | None
    top: Decimal  # the scale's top: the highest depth


def depth_chart(report: StabilityReport) -> DepthChart:
    axis = TimeAxis(report.first_ms, report.until_ms)
    drawdown = report.drawdown
    top = Fraction(drawdown.highest) if drawdown is not None else Fraction(0)
    rects: list[str] = []
    steps: list[str] = []
    for b in report.chart:
        x0, x1 = _coord(axis.x(b.from_ms)), _coord(axis.x(b.to_ms))
        if b.depth_low is not None and b.depth_high is not None:
            low_y = _y(Fraction(b.depth_low), top)
            high_y = min(_y(Fraction(b.depth_high), top), low_y - MIN_RANGE)  # a steady stretch still shows
            rects.append(f"M{x0} {_coord(high_y)} H{x1} V{_coord(low_y)} H{x0} Z")
        if b.peak is not None:
            y = _coord(_y(Fraction(b.peak), top))
            steps.append(f"{'L' if steps else 'M'}{x0} {y} L{x1} {y}")
    peak_x = trough_x = None
    if drawdown is not None and drawdown.peak_ms is not None and drawdown.trough_ms is not None:
        peak_x, trough_x = _coord(axis.x(drawdown.peak_ms)), _coord(axis.x(drawdown.trough_ms))
    return DepthChart(
        WIDTH,
        HEIGHT,
        " ".join(rects),
        " ".join(steps),
        peak_x,
        trough_x,
        drawdown.highest if drawdown is not None else Decimal(0),
    )


@dataclass(frozen=True)
class BandRow:
    label: str  # "0–10 bps"
    label_y: str
    bid: Bar
    ask: Bar


@dataclass(frozen=True)
class BandsChart:
    width: int
    height: int
    centre_x: str
    rows: tuple[BandRow, ...]


def bands_chart(bands: Sequence[DistanceBand]) -> BandsChart:
    """Bids grow left from the centre, asks right, on one scale (the largest mean of either side)."""
    label_w = 96  # room on the left for the bucket's name
    centre = Fraction(label_w + (WIDTH - label_w - PAD_RIGHT) // 2)
    half = Fraction((WIDTH - label_w - PAD_RIGHT) // 2)
    top = max([b.bid_mean for b in bands] + [b.ask_mean for b in bands] + [Fraction(0)])
    rows = []
    for i, b in enumerate(bands):
        y0 = Fraction(PAD_TOP + i * BAND_ROW + 4)
        y1 = y0 + BAND_ROW - 8
        bid_w = half * b.bid_mean / top if top else Fraction(0)
        ask_w = half * b.ask_mean / top if top else Fraction(0)
        rows.append(
            BandRow(
                label=f"{b.low_bps}–{b.high_bps} bps",
                label_y=_coord(y1 - 4),
                bid=_bar(centre - bid_w, centre, y0, y1),
                ask=_bar(centre, centre + ask_w, y0, y1),
            )
        )
    height = PAD_TOP + len(bands) * BAND_ROW + PAD_BOTTOM
    return BandsChart(WIDTH, height, _coord(centre), tuple(rows))
