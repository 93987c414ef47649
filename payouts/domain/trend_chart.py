"""The geometry of the operator panel's trend charts (PnL, exposure, depth over a job's report windows): one or more
lines over time, an optional limit drawn across, and the zero line when the values cross it. Pure: exact values in,
SVG coordinates out (strings, two decimals, as `campaigns.domain.depth_chart` draws), for a server-rendered inline
SVG (the pages' CSP allows no script to draw them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

WIDTH = 480
HEIGHT = 150
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 8, 8, 10, 10
CENT = Decimal("0.01")

Point = tuple[int, Decimal]  # (time in ms, value)


@dataclass(frozen=True)
class Series:
    label: str
    css: str  # the line's class in static/css/operator_panel.css
    points: tuple[Point, ...]


@dataclass(frozen=True)
class Line:
    label: str
    css: str
    points: str  # SVG polyline points "x,y x,y …"
    last: str  # the latest value, for the legend


@dataclass(frozen=True)
class TrendChart:
    title: str
    unit: str
    width: int
    height: int
    lines: tuple[Line, ...]
    low: Decimal  # the value axis' ends, for the labels
    high: Decimal
    start_ms: int
    end_ms: int
    zero_y: str | None  # where 0 is, when the axis spans it
    limit_y: str | None  # where the limit is, when it is drawn (near enough to the values to be read beside them)
    limit: Decimal | None


def _coord(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_EVEN))


def _plain(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def trend_chart(
    *, title: str, unit: str, series: Sequence[Series], limit: Decimal | None = None, width: int = WIDTH
) -> TrendChart | None:
    """The chart of the series over their common time span; None when there are fewer than two points in all (no
    trend to draw). The value axis spans every value and zero, and the limit when it lies within the values' own
    span of them: a limit far off would flatten the trend into a line (the caption still names it)."""
    points = [p for s in series for p in s.points]
    if len(points) < 2:
        return None
    start, end = min(t for t, _ in points), max(t for t, _ in points)
    values = [v for _, v in points]
    low, high = min([*values, Decimal(0)]), max([*values, Decimal(0)])
    span = high - low
    drawn = limit is not None and low - span <= limit <= high + span
    if drawn and limit is not None:
        low, high = min(low, limit), max(high, limit)
    if low == high:
        high = low + 1
    span_t = Decimal(max(end - start, 1))
    plot_w, plot_h = Decimal(width - PAD_LEFT - PAD_RIGHT), Decimal(HEIGHT - PAD_TOP - PAD_BOTTOM)

    def x(t: int) -> str:
        return _coord(PAD_LEFT + (t - start) / span_t * plot_w)

    def y(v: Decimal) -> str:
        return _coord(PAD_TOP + plot_h - (v - low) / (high - low) * plot_h)

    lines = tuple(
        Line(s.label, s.css, " ".join(f"{x(t)},{y(v)}" for t, v in sorted(s.points)), _plain(sorted(s.points)[-1][1]))
        for s in series
        if s.points
    )
    return TrendChart(
        title=title,
        unit=unit,
        width=width,
        height=HEIGHT,
        lines=lines,
        low=low,
        high=high,
        start_ms=start,
        end_ms=end,
        zero_y=y(Decimal(0)) if low < 0 < high else None,
        limit_y=y(limit) if drawn and limit is not None else None,
        limit=limit,
    )
