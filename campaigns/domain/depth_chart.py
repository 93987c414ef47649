"""The geometry of a campaign page's depth chart: cumulative bid and ask depth around the mid, with the campaign's
scoring band (±`max_spread_bps` of the mid) shaded. Pure: Decimal in, SVG coordinates (strings, two decimals) out.

The price axis spans the mid ± twice the band, so the band is the middle half of the chart whatever the price;
levels beyond are not drawn. Depth is cumulative quote notional (price × size, summed from the best level out), the
unit the campaign's order minimum is set in. `static/js/campaign_page.js` draws the same geometry from each live
frame; keep the two in step."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

WIDTH = 640
HEIGHT = 240
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 8, 8, 12, 28  # room below for the price labels
SPAN_BANDS = 2  # the axis spans the mid ± this many bands
CENT = Decimal("0.01")

Level = tuple[Decimal, Decimal]  # (price, size)


class ChartRefused(ValueError):
    """The book cannot be drawn: no mid, a band that is not positive, or a level that is not a positive price."""


@dataclass(frozen=True)
class DepthChart:
    width: int
    height: int
    bid_path: str  # SVG path data of the bid side's cumulative depth, closed along the base line ("" when empty)
    ask_path: str
    band_x: str  # the band's left edge
    band_width: str
    mid_x: str
    low_price: Decimal  # the axis' ends and the band's, for the labels
    high_price: Decimal
    band_low: Decimal
    band_high: Decimal
    mid: Decimal
    max_depth: Decimal  # cumulative quote notional at the top of the chart
    bid_depth_in_band: Decimal  # quote notional resting inside the band, each side
    ask_depth_in_band: Decimal


def _coord(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_EVEN))


def _steps(
    levels: Sequence[Level], edge: Decimal, x: Callable[[Decimal], str], y: Callable[[Decimal], str]
) -> tuple[str, Decimal]:
    """The step path of one side's cumulative depth from its best level out to `edge`, and its total."""
    if not levels:
        return "", Decimal(0)
    total = Decimal(0)
    points = [(x(levels[0][0]), y(Decimal(0)))]
    for index, (price, size) in enumerate(levels):
        if index:
            points.append((x(price), y(total)))
        total += price * size
        points.append((x(price), y(total)))
    points.append((x(edge), y(total)))
    points.append((x(edge), y(Decimal(0))))
    return "M" + " L".join(f"{px} {py}" for px, py in points) + " Z", total


def _side(levels: Sequence[Level], *, low: Decimal, high: Decimal) -> list[Level]:
    for price, size in levels:
        if price <= 0 or size < 0:
            raise ChartRefused(f"a level must have a positive price and a size of at least 0, not {price} × {size}")
    return [(price, size) for price, size in levels if low <= price <= high and size > 0]


def _in_band(levels: Sequence[Level], low: Decimal, high: Decimal) -> Decimal:
    return sum((price * size for price, size in levels if low < price < high), Decimal(0))


def depth_chart(
    *, bids: Sequence[Level], asks: Sequence[Level], mid: Decimal | None, band_bps: int, width: int = WIDTH
) -> DepthChart:
    """The chart of one book (levels best first). Raises `ChartRefused`."""
    if mid is None or mid <= 0:
        raise ChartRefused("no mid: one side of the book is empty")
    if band_bps <= 0:
        raise ChartRefused(f"the band must be positive, not {band_bps} bps")
    band = mid * band_bps / 10_000
    low, high = mid - SPAN_BANDS * band, mid + SPAN_BANDS * band
    low = max(low, Decimal(0))
    shown_bids = _side(bids, low=low, high=mid)
    shown_asks = _side(asks, low=mid, high=high)
    plot_w = Decimal(width - PAD_LEFT - PAD_RIGHT)
    plot_h = Decimal(HEIGHT - PAD_TOP - PAD_BOTTOM)
    totals = [sum((p * s for p, s in side), Decimal(0)) for side in (shown_bids, shown_asks)]
    top = max(totals) or Decimal(1)

    def x(price: Decimal) -> str:
        return _coord(PAD_LEFT + (price - low) / (high - low) * plot_w)

    def y(depth: Decimal) -> str:
        return _coord(PAD_TOP + plot_h - depth / top * plot_h)

    bid_path, _ = _steps(shown_bids, low, x, y)
    ask_path, _ = _steps(shown_asks, high, x, y)
    band_low, band_high = mid - band, mid + band
    band_left = PAD_LEFT + (band_low - low) / (high - low) * plot_w
    band_right = PAD_LEFT + (band_high - low) / (high - low) * plot_w
    return DepthChart(
        width=width,
        height=HEIGHT,
        bid_path=bid_path,
        ask_path=ask_path,
        band_x=_coord(band_left),
        band_width=_coord(band_right - band_left),
        mid_x=x(mid),
        low_price=low,
        high_price=high,
        band_low=band_low,
        band_high=band_high,
        mid=mid,
        max_depth=top if any(totals) else Decimal(0),
        bid_depth_in_band=_in_band(shown_bids, band_low, band_high),
        ask_depth_in_band=_in_band(shown_asks, band_low, band_high),
    )


def parse_levels(raw: object) -> list[Level]:
    """A frame's `[[price_str, size_str], ...]` as Decimals. Raises `ChartRefused` on anything else."""
    if not isinstance(raw, list):
        raise ChartRefused("levels must be a list of [price, size]")
    levels = []
    for item in raw:
        if not (isinstance(item, list | tuple) and len(item) == 2 and all(isinstance(v, str) for v in item)):
            raise ChartRefused(f"a level is [price, size] as two decimal strings, not {item!r}")
        try:
            price, size = Decimal(item[0]), Decimal(item[1])
        except ArithmeticError:
            raise ChartRefused(f"not a decimal level: {item!r}") from None
        if not (price.is_finite() and size.is_finite()):
            raise ChartRefused(f"not a finite level: {item!r}")
        levels.append((price, size))
    return levels
