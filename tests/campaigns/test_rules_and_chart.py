"""The campaign page's pure parts: the rules in plain words (campaigns/domain/rules.py) and the depth chart's
geometry (campaigns/domain/depth_chart.py)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from campaigns.domain.depth_chart import (
    HEIGHT,
    PAD_BOTTOM,
    PAD_LEFT,
    PAD_TOP,
    WIDTH,
    ChartRefused,
    depth_chart,
    parse_levels,
)
from campaigns.domain.rules import RulesUnknown, percent_of_fraction, rules_summary
from campaigns.domain.templates import TEMPLATES

D = Decimal


def test_the_stable_depth_template_in_plain_words() -> None:
    rules = rules_summary(TEMPLATES["stable_depth"].scoring, quote="USDT")
    text = " ".join(rules)
    assert "every 60 seconds" in rules[0]
    assert "orders within 0.50 % of the mid count" in rules[0]
    assert "at least 100 USDT" in rules[1]
    assert "at least 60 seconds" in rules[1]
    assert "or a third of the thicker one if that is more; quoting one side only earns a third of that side" in rules[2]
    assert "80 % of each epoch's budget pays for depth and 20 % for maker volume" in rules[3]
    assert "within 1.00 % of the mid" in rules[3]
    assert "Every sample counts the same" in text


def test_other_parameters_change_the_words() -> None:
    scoring = dict(TEMPLATES["high_volatility"].scoring)
    scoring.update(single_side_divisor=1, depth_weight="1/1", min_rest_seconds=0, min_order_quote="12.50")
    rules = rules_summary(scoring, quote="USDC")
    assert "within 2.00 %" in rules[0]
    assert "at least 12.5 USDC" in rules[1]
    assert "cancelled sooner" not in rules[1]
    assert rules[2] == "Each side counts in full, whether or not the other is quoted."
    assert rules[3] == "The whole of each epoch's budget pays for depth; traded volume earns nothing."
    assert "count more (up to twice)" in rules[4]
    assert "one side only earns 1/7 of that side" in rules_summary({**scoring, "single_side_divisor": 7}, quote="X")[2]


def test_an_inexact_share_is_said_to_be_rounded() -> None:
    assert percent_of_fraction(Fraction(2, 3)) == "about 66.67 %"
    assert percent_of_fraction(Fraction(7, 10)) == "70 %"
    assert percent_of_fraction(Fraction(1, 8)) == "12.5 %"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"max_spread_bps": 0}, "scoring.max_spread_bps"),
        ({"max_spread_bps": True}, "scoring.max_spread_bps"),
        ({"min_order_quote": 100}, "scoring.min_order_quote"),
        ({"min_order_quote": "1e3x"}, "scoring.min_order_quote"),
        ({"depth_weight": "5/4"}, "scoring.depth_weight"),
        ({"depth_weight": "1/0"}, "scoring.depth_weight"),
        ({"volatility_weighting": "no"}, "scoring.volatility_weighting"),
    ],
)
def test_bad_parameters_are_refused_by_name(change: dict[str, object], field: str) -> None:
    with pytest.raises(RulesUnknown, match=field):
        rules_summary({**TEMPLATES["stable_depth"].scoring, **change}, quote="USDT")
    with pytest.raises(RulesUnknown, match="no scoring"):
        rules_summary(None, quote="USDT")  # type: ignore[arg-type]


def test_the_band_is_the_middle_half_and_depth_is_cumulative_notional() -> None:
    chart = depth_chart(
        bids=[(D("99.8"), D("2")), (D("99"), D("1")), (D("90"), D("50"))],  # 90 is beyond the axis: not drawn
        asks=[(D("100.2"), D("1")), (D("101.5"), D("3"))],
        mid=D("100"),
        band_bps=100,
    )
    plot_w = WIDTH - PAD_LEFT - 8
    assert (chart.low_price, chart.high_price) == (D("98"), D("102"))
    assert (chart.band_low, chart.band_high) == (D("99"), D("101"))
    assert D(chart.band_x) == PAD_LEFT + D(plot_w) / 4
    assert D(chart.band_width) == D(plot_w) / 2
    assert D(chart.mid_x) == PAD_LEFT + D(plot_w) / 2
    # Bids 199.6 + 99 = 298.6; asks 100.2 + 304.5 = 404.7: the asks reach the top.
    assert chart.max_depth == D("404.7")
    assert chart.bid_depth_in_band == D("199.6")  # 99 is at the band's edge: it scores nothing
    assert chart.ask_depth_in_band == D("100.2")
    base = str(D(HEIGHT - PAD_BOTTOM).quantize(D("0.01")))
    top = str(D(PAD_TOP).quantize(D("0.01")))

    def x(price: str) -> str:
        return str((PAD_LEFT + (D(price) - 98) / 4 * plot_w).quantize(D("0.01")))

    # Each side steps out from its best level: up at each level by its notional, flat to the next, then to the edge.
    assert chart.ask_path.startswith(f"M{x('100.2')} {base} L{x('100.2')} ")
    assert chart.ask_path.endswith(f"L{D(WIDTH - 8):.2f} {top} L{D(WIDTH - 8):.2f} {base} Z")  # asks reach the top
    assert chart.bid_path.startswith(f"M{x('99.8')} {base} L{x('99.8')} ")
    assert chart.bid_path.endswith(f"L{D(PAD_LEFT):.2f} {base} Z")


def test_an_empty_side_has_no_path_and_a_book_without_mid_is_refused() -> None:
    chart = depth_chart(bids=[], asks=[(D("1.01"), D("5"))], mid=D("1"), band_bps=50)
    assert chart.bid_path == ""
    assert chart.ask_path.endswith("Z")
    empty = depth_chart(bids=[], asks=[], mid=D("1"), band_bps=50)
    assert empty.max_depth == 0
    assert empty.ask_path == ""
    with pytest.raises(ChartRefused, match="no mid"):
        depth_chart(bids=[], asks=[], mid=None, band_bps=50)
    with pytest.raises(ChartRefused, match="band"):
        depth_chart(bids=[], asks=[], mid=D("1"), band_bps=0)
    with pytest.raises(ChartRefused, match="positive price"):
        depth_chart(bids=[(D("-1"), D("1"))], asks=[], mid=D("1"), band_bps=50)


def test_frame_levels_are_parsed_exactly_or_refused() -> None:
    assert parse_levels([["0.1", "3"], ["0.09", "12.5"]]) == [(D("0.1"), D("3")), (D("0.09"), D("12.5"))]
    for bad in ("x", [[1, 2]], [["1"]], [["nan", "1"]], [["1", "abc"]]):
        with pytest.raises(ChartRefused):
            parse_levels(bad)
