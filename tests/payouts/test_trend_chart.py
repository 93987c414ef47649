"""The trend charts' geometry: exact values in, SVG coordinates out; the axis spans the values and zero, and a
limit only when it is near enough to read beside them."""

from __future__ import annotations

from decimal import Decimal

from payouts.domain.trend_chart import HEIGHT, PAD_BOTTOM, PAD_LEFT, PAD_TOP, WIDTH, Series, trend_chart

D = Decimal


def test_fewer_than_two_points_draw_nothing() -> None:
    assert trend_chart(title="t", unit="USDT", series=[Series("a", "c", ((0, D(1)),))]) is None
    assert trend_chart(title="t", unit="USDT", series=[]) is None


def test_points_map_onto_the_plot_and_zero_is_drawn_when_crossed() -> None:
    chart = trend_chart(title="t", unit="USDT", series=[Series("pnl", "line-pnl", ((0, D(-1)), (100, D(3))))])
    assert chart is not None
    (line,) = chart.lines
    left, right = PAD_LEFT, WIDTH - PAD_LEFT  # both paddings are 8
    top, bottom = PAD_TOP, HEIGHT - PAD_BOTTOM
    assert line.points == f"{left}.00,{bottom}.00 {right}.00,{top}.00"
    assert (chart.low, chart.high, line.last) == (D(-1), D(3), "3")
    assert chart.zero_y == "107.50"  # a quarter of the way up from the bottom
    assert chart.limit_y is None


def test_a_limit_near_the_values_is_drawn_and_one_far_off_is_only_named() -> None:
    series = [Series("exposure", "line-exposure", ((0, D(500)), (60, D(600))))]
    near = trend_chart(title="t", unit="USDT", series=series, limit=D(1000))
    assert near is not None
    assert near.limit_y == f"{PAD_TOP}.00"  # the top of the axis
    assert near.high == D(1000)
    far = trend_chart(title="t", unit="USDT", series=series, limit=D(2000))
    assert far is not None
    assert far.limit_y is None
    assert far.limit == D(2000)
    assert far.high == D(600)


def test_a_flat_series_still_has_an_axis() -> None:
    chart = trend_chart(title="t", unit="USDT", series=[Series("d", "c", ((0, D(0)), (10, D(0))))])
    assert chart is not None
    assert (chart.low, chart.high) == (D(0), D(1))
