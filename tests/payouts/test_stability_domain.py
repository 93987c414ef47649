"""The stability reports' pure maths (payouts/domain/stability.py): distance buckets, one book's figures against an
exact Fraction reference built on the oracle's own `Book`, nearest-rank percentiles, uptime, drawdown, hours, the
chart's buckets and geometry, carrying the state over, and every refusal."""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payouts.domain import stability_chart as charts
from payouts.domain.recorder import stored_book
from payouts.domain.stability import (
    HOUR_MS,
    StabilityAccumulator,
    StabilityInputError,
    cbps_text,
    distance_edges,
    fixed2,
    nearest_rank,
    report_of,
    sample_figures,
)

BOOK = {  # mid 100, band 100 bps = ±1
    "bids": [["99.95", "2"], ["99.8", "1"], ["99", "5"], ["98.5", "7"]],
    "asks": [["100.05", "3"], ["100.5", "1.5"], ["101", "4"], ["101.2", "1"]],
}


def book(mid: int, size: str = "1", half_spread: str = "0.05") -> dict[str, list[list[str]]]:
    h = Decimal(half_spread)
    return {"bids": [[str(mid - h), size]], "asks": [[str(mid + h), size]]}


# --- distance buckets -------------------------------------------------------------------------------------------


def test_the_buckets_follow_the_ladder_up_to_the_band() -> None:
    assert distance_edges(100) == (10, 25, 50, 100)
    assert distance_edges(40) == (10, 25, 40)
    assert distance_edges(50) == (10, 25, 50)
    assert distance_edges(5) == (5,)
    assert distance_edges(10) == (10,)
    assert distance_edges(1000) == (10, 25, 50, 100, 250, 500, 1000)
    assert distance_edges(300) == (10, 25, 50, 100, 250, 300)
    with pytest.raises(ValueError, match="at least 1 bps"):
        distance_edges(0)


@given(st.integers(min_value=1, max_value=100_000))
def test_the_buckets_rise_and_end_at_the_band(band: int) -> None:
    edges = distance_edges(band)
    assert edges[-1] == band
    assert list(edges) == sorted(set(edges))
    assert all(e < band for e in edges[:-1])


# --- one book -----------------------------------------------------------------------------------------------------


def test_one_book_figures() -> None:
    f = sample_figures(BOOK, distance_edges(100))
    # Distances from the mid (100): 99.95 → 5 bps, 99.8 → 20, 99 → 100 (the band's edge: out), 98.5 → out.
    assert f.bids == (Decimal("199.9"), Decimal("99.8"), Decimal(0), Decimal(0))
    # 100.05 → 5 bps; 100.5 → 50 (an edge: the farther bucket); 101 → 100 (out); 101.2 → out.
    assert f.asks == (Decimal("300.15"), Decimal(0), Decimal(0), Decimal("150.75"))
    assert f.two_sided
    assert f.spread_cbps == 1000  # 0.1 / 100 = 10 bps
    assert f.depth == Decimal("750.6")


def test_a_side_with_nothing_in_the_band_is_not_up_and_an_empty_side_has_no_spread() -> None:
    far = {"bids": [["99", "1"]], "asks": [["100.1", "1"]]}  # mid 99.55: the bid is 55 bps away, band 50
    f = sample_figures(far, distance_edges(50))
    assert not f.two_sided
    assert f.spread_cbps == round(Fraction("1.1") / Fraction("99.55") * 10**6)
    empty = sample_figures({"bids": [], "asks": [["100", "1"]]}, distance_edges(50))
    assert (empty.two_sided, empty.spread_cbps, empty.depth) == (False, None, Decimal(0))


def test_the_spread_rounds_half_to_even() -> None:
    # mid 10000, spread 0.0125 → 0.0125 bps → 1.25 cbps → 1 (even); 0.0375 → 3.75 → 4.
    assert sample_figures(book(10_000, half_spread="0.00625"), (50,)).spread_cbps == 1
    assert sample_figures(book(10_000, half_spread="0.01875"), (50,)).spread_cbps == 4


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({"bids": "x", "asks": []}, "list of"),
        ({"bids": [["1", "2", "3"]], "asks": []}, "two decimal strings"),
        ({"bids": [[1, "2"]], "asks": [["2", "1"]]}, "decimal string"),
        ({"bids": [["-1", "2"]], "asks": [["2", "1"]]}, "decimal string"),
        ({"bids": [["1e3", "2"]], "asks": [["2", "1"]]}, "decimal string"),
        ({"bids": [["0", "2"]], "asks": [["2", "1"]]}, "price 0"),
        ({"bids": ["12"], "asks": [["2", "1"]]}, "list of"),
        ([], "bids, asks"),
    ],
)
def test_an_unreadable_book_is_refused(bad: Any, match: str) -> None:
    with pytest.raises(StabilityInputError, match=match):
        sample_figures(bad, (50,))


decimals = st.builds(
    lambda whole, frac, places: f"{whole}.{str(frac).zfill(places)}" if places else str(whole),
    st.integers(min_value=1, max_value=200),
    st.integers(min_value=0, max_value=9999),
    st.sampled_from([0, 4]),
).filter(lambda t: Fraction(t) > 0)
sizes = st.sampled_from(["1", "0.5", "2.25", "10", "0.001", "3"])


def sides() -> st.SearchStrategy[list[list[str]]]:
    return st.lists(st.tuples(decimals, sizes), min_size=0, max_size=6, unique_by=lambda lv: Fraction(lv[0])).map(
        lambda levels: [list(lv) for lv in levels]
    )


@settings(max_examples=300)
@given(bids=sides(), asks=sides(), band=st.integers(min_value=5, max_value=1000))
def test_one_book_matches_an_exact_reference_on_the_oracles_book(
    bids: list[list[str]], asks: list[list[str]], band: int
) -> None:
    document = {"bids": bids, "asks": asks}
    edges = distance_edges(band)
    got = sample_figures(document, edges)
    reference = stored_book(document)  # the scoring engine's Book: its mid is the oracle's
    mid = reference.mid
    if mid is None:
        assert got.spread_cbps is None
        assert not got.two_sided
        assert got.depth == 0
        return

    def buckets(levels: tuple[tuple[Fraction, Fraction], ...]) -> list[Fraction]:
        sums = [Fraction(0)] * len(edges)
        for price, size in levels:
            distance = abs(price - mid) / mid * 10_000
            for i, edge in enumerate(edges):
                if distance < edge:
                    sums[i] += price * size
                    break
        return sums

    want_bids, want_asks = buckets(reference.bids), buckets(reference.asks)
    assert [Fraction(v) for v in got.bids] == want_bids
    assert [Fraction(v) for v in got.asks] == want_asks
    best_bid = max(p for p, _ in reference.bids)
    best_ask = min(p for p, _ in reference.asks)
    assert got.spread_cbps == round((best_ask - best_bid) / mid * 10_000 * 100)
    assert got.two_sided == (any(want_bids) and any(want_asks))


# --- rounding and ranks ------------------------------------------------------------------------------------------


def test_fixed_two_decimals_round_half_to_even() -> None:
    assert fixed2(Decimal("1234.565")) == "1234.56"
    assert fixed2(Decimal("1234.575")) == "1234.58"
    assert fixed2(Fraction(1, 3)) == "0.33"
    assert fixed2(Decimal("0.005")) == "0.00"
    assert fixed2(2) == "2.00"
    assert fixed2(Fraction(-1, 8)) == "-0.12"
    assert cbps_text(1234) == "12.34"
    assert cbps_text(5) == "0.05"


def test_nearest_rank_examples() -> None:
    counts = {1: 1, 2: 1, 3: 1, 4: 1}
    assert nearest_rank(counts, 50) == 2  # an even count: the lower middle one
    assert nearest_rank(counts, 95) == 4
    assert nearest_rank({7: 20}, 95) == 7
    many = {v: 1 for v in range(1, 101)}
    assert nearest_rank(many, 95) == 95
    assert nearest_rank(many, 50) == 50
    with pytest.raises(ValueError, match="no values"):
        nearest_rank({}, 50)
    with pytest.raises(ValueError, match="within"):
        nearest_rank(counts, 0)


@given(st.lists(st.integers(min_value=-500, max_value=10_000), min_size=1, max_size=200))
def test_nearest_rank_is_the_sorted_lists_value_and_p95_is_never_below_the_median(values: list[int]) -> None:
    counts: dict[int, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    ordered = sorted(values)
    for percent in (1, 50, 95, 100):
        rank = -(-percent * len(values) // 100)
        assert nearest_rank(counts, percent) == ordered[rank - 1]
    assert nearest_rank(counts, 95) >= nearest_rank(counts, 50)
    assert nearest_rank(counts, 95) in values


# --- the reports over a selection ----------------------------------------------------------------------------------


def test_uptime_counts_missing_rows_gap_rows_and_thin_books_as_not_up() -> None:
    rows = [
        (0, book(100)),
        (1_000, None),  # a gap row
        # 2_000: no row
        (3_000, {"bids": [["90", "1"]], "asks": [["110", "1"]]}),  # nothing within the band
        (4_000, book(100)),
    ]
    r = report_of(rows, start_ms=0, sample_ms=1_000, from_ms=0, until_ms=6_000, band_bps=50)
    u = r.uptime
    assert (u.samples, u.up, u.missing, u.gap_rows, u.thin) == (6, 2, 2, 1, 1)  # 5_000 has no row either
    assert u.share == Fraction(1, 3)
    assert r.first_ms == 0
    assert r.until_ms == 6_000


def test_the_drawdown_is_the_largest_fall_from_the_running_peak() -> None:
    # Depths 2·mid·size: sizes 1, 2, 1.5, 2, 0.5, 3, 2.5 at mid 100 → 200, 400, 300, 400, 100, 600, 500.
    size_list = ["1", "2", "1.5", "2", "0.5", "3", "2.5"]
    rows = [(k * 1_000, book(100, size=s)) for k, s in enumerate(size_list)]
    r = report_of(rows, start_ms=0, sample_ms=1_000, from_ms=0, until_ms=7_000, band_bps=50)
    d = r.drawdown
    assert d is not None
    assert (d.amount, d.peak, d.trough) == (Decimal(300), Decimal(400), Decimal(100))
    assert (d.peak_ms, d.trough_ms) == (3_000, 4_000)  # the last sample at the peak before the fall
    assert d.share == Fraction(3, 4)
    assert (d.highest, d.lowest, d.last) == (Decimal(600), Decimal(100), Decimal(500))


def test_a_depth_that_never_falls_has_no_drawdown_times() -> None:
    rows = [(k * 1_000, book(100, size=str(k + 1))) for k in range(4)]
    d = report_of(rows, start_ms=0, sample_ms=1_000, from_ms=0, until_ms=4_000, band_bps=50).drawdown
    assert d is not None
    assert (d.amount, d.peak_ms, d.trough_ms, d.peak) == (0, None, None, Decimal(800))
    assert d.share == 0


def test_an_empty_selection_has_no_drawdown_or_spread() -> None:
    r = report_of([], start_ms=0, sample_ms=1_000, from_ms=0, until_ms=3_000, band_bps=50)
    assert r.uptime.samples == 3
    assert r.uptime.missing == 3
    assert r.drawdown is None
    assert r.spread is None
    assert all(b.bid_mean == 0 and b.samples == 0 for b in r.bands)


def test_spreads_are_grouped_by_utc_hour() -> None:
    start = 10 * HOUR_MS - 2_000  # two samples before 10:00, three after
    rows = [(start + k * 1_000, book(10_000, half_spread=h)) for k, h in enumerate(["1", "2", "3", "4", "5"])]
    r = report_of(rows, start_ms=start, sample_ms=1_000, from_ms=start, until_ms=start + 5_000, band_bps=50)
    assert [h.hour_ms for h in r.spread_hours] == [9 * HOUR_MS, 10 * HOUR_MS]
    first, second = r.spread_hours
    assert (first.stats.samples, first.stats.median_cbps, first.stats.p95_cbps) == (2, 200, 400)
    assert (second.stats.samples, second.stats.median_cbps, second.stats.p95_cbps) == (3, 800, 1000)
    assert r.spread is not None
    assert (r.spread.samples, r.spread.median_cbps, r.spread.min_cbps, r.spread.max_cbps) == (5, 600, 200, 1000)


def test_depth_by_distance_is_the_mean_over_the_samples_with_a_book() -> None:
    rows = [(0, BOOK), (1_000, None), (2_000, {"bids": [["99.95", "4"]], "asks": [["100.05", "1"]]})]
    r = report_of(rows, start_ms=0, sample_ms=1_000, from_ms=0, until_ms=3_000, band_bps=100)
    first = r.bands[0]
    assert (first.low_bps, first.high_bps, first.samples) == (0, 10, 2)
    assert first.bid_mean == (Fraction("199.9") + Fraction("399.8")) / 2
    assert first.ask_mean == (Fraction("300.15") + Fraction("100.05")) / 2
    assert r.bands[3].ask_mean == Fraction("150.75") / 2
    assert [(b.low_bps, b.high_bps) for b in r.bands] == [(0, 10), (10, 25), (25, 50), (50, 100)]


def test_a_selection_starts_on_the_campaigns_grid() -> None:
    rows = [(1_500, book(100)), (2_500, book(100))]
    r = report_of(rows, start_ms=500, sample_ms=1_000, from_ms=1_200, until_ms=3_000, band_bps=50)
    assert r.first_ms == 1_500
    assert r.uptime.samples == 2
    assert r.uptime.up == 2


def test_rows_off_the_grid_or_out_of_order_are_refused() -> None:
    acc = StabilityAccumulator(start_ms=0, sample_ms=1_000, first_ms=0, band_bps=50, bucket_samples=1)
    with pytest.raises(StabilityInputError, match="sample grid"):
        acc.add(1_500, book(100))
    acc.add(2_000, book(100))
    with pytest.raises(StabilityInputError, match="out of order"):
        acc.add(2_000, book(100))
    with pytest.raises(StabilityInputError, match="out of order"):
        acc.add(1_000, book(100))
    assert acc.report().uptime.samples == 3  # the refusals changed nothing
    with pytest.raises(ValueError, match="sample time"):
        StabilityAccumulator(start_ms=0, sample_ms=1_000, first_ms=500, band_bps=50, bucket_samples=1)


series = st.lists(
    st.one_of(st.none(), st.just("missing"), st.sampled_from(["0.5", "1", "2", "3.25", "7", "0.001"])),
    min_size=0,
    max_size=120,
)


def rows_of(spec: list[str | None]) -> list[tuple[int, dict[str, Any] | None]]:
    out: list[tuple[int, dict[str, Any] | None]] = []
    for k, item in enumerate(spec):
        if item == "missing":
            continue
        out.append((k * 1_000, None if item is None else book(100 + k % 3, size=item)))
    return out


@settings(max_examples=200)
@given(spec=series, points=st.integers(min_value=1, max_value=50))
def test_report_invariants(spec: list[str | None], points: int) -> None:
    until = len(spec) * 1_000
    r = report_of(rows_of(spec), start_ms=0, sample_ms=1_000, from_ms=0, until_ms=until, band_bps=50, points=points)
    u = r.uptime
    assert u.samples == len(spec)
    assert u.up + u.missing + u.gap_rows + u.thin == u.samples
    if u.share is not None:
        assert 0 <= u.share <= 1
    # The chart: at most `points` buckets, covering every sample time once, in order.
    assert len(r.chart) <= points
    assert sum(b.samples for b in r.chart) == u.samples
    assert sum(b.up for b in r.chart) == u.up
    assert all(a.to_ms == b.from_ms for a, b in zip(r.chart, r.chart[1:], strict=False))
    depths = [sample_figures(b, (50,)).depth for _, b in rows_of(spec) if b is not None]
    d = r.drawdown
    if not depths:
        assert d is None
        return
    assert d is not None
    assert 0 <= d.amount <= d.peak
    if d.share is not None:
        assert 0 <= d.share <= 1
    brute = max(max(depths[: j + 1]) - depths[j] for j in range(len(depths)))
    assert d.amount == brute
    assert (d.highest, d.lowest, d.last) == (max(depths), min(depths), depths[-1])
    if r.spread is not None:
        assert r.spread.p95_cbps >= r.spread.median_cbps
        assert r.spread.min_cbps <= r.spread.median_cbps <= r.spread.max_cbps


@settings(max_examples=100)
@given(spec=series, cut=st.integers(min_value=0, max_value=120))
def test_a_state_carried_over_through_json_gives_the_same_report(spec: list[str | None], cut: int) -> None:
    rows = rows_of(spec)
    until = len(spec) * 1_000
    whole = report_of(rows, start_ms=0, sample_ms=1_000, from_ms=0, until_ms=until, band_bps=50)
    acc = StabilityAccumulator.for_selection(start_ms=0, sample_ms=1_000, from_ms=0, end_ms=until, band_bps=50)
    cut_ms = min(cut * 1_000, until)
    for t, b in rows:
        if t < cut_ms:
            acc.add(t, b)
    acc.advance(cut_ms)
    resumed = StabilityAccumulator.resume(json.loads(json.dumps(acc.state())))
    assert resumed.report() == acc.report()
    for t, b in rows:
        if t >= cut_ms:
            resumed.add(t, b)
    resumed.advance(until)
    assert resumed.report() == whole


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s.update(version=99),
        lambda s: s.update(counts=[1, 2]),
        lambda s: s.update(bid_sums=["x"] * len(s["bid_sums"])),
        lambda s: s.update(bid_sums=[]),
        lambda s: s["buckets"][0].append(1),
        lambda s: s.pop("fall"),
        lambda s: s.update(next_ms="soon"),
    ],
)
def test_a_state_that_is_not_one_is_refused(mangle: Any) -> None:
    acc = StabilityAccumulator(start_ms=0, sample_ms=1_000, first_ms=0, band_bps=50, bucket_samples=1)
    acc.add(0, book(100))
    state = acc.state()
    mangle(state)
    with pytest.raises(StabilityInputError):
        StabilityAccumulator.resume(state)
    with pytest.raises(StabilityInputError):
        StabilityAccumulator.resume("not a dict")


# --- chart geometry ---------------------------------------------------------------------------------------------


def _within(bar: charts.Bar, width: int, height: int) -> bool:
    x, y, w, h = (float(v) for v in (bar.x, bar.y, bar.width, bar.height))
    return x >= 0 and x + w <= width + 0.01 and y >= 0 and y + h <= height + 0.01 and w >= 0 and h >= 0


def test_the_charts_are_drawn_inside_their_boxes() -> None:
    size_list = ["1", "2", "1.5", "2", "0.5", "3", "2.5"]
    rows: list[tuple[int, dict[str, Any] | None]] = [(k * 1_000, book(100, size=s)) for k, s in enumerate(size_list)]
    rows[2] = (2_000, None)
    r = report_of(rows, start_ms=0, sample_ms=1_000, from_ms=0, until_ms=8_000, band_bps=100)
    up = charts.uptime_chart(r)
    assert len(up.bars) == 8
    assert all(_within(b, up.width, up.height) for b in up.bars)
    assert float(up.bars[0].height) == charts.PLOT_H  # up: a full bar
    assert float(up.bars[2].height) == 0  # the gap row
    spread = charts.spread_chart(r)
    assert len(spread.p95_bars) == len(spread.median_bars) == 1
    assert all(_within(b, spread.width, spread.height) for b in (*spread.p95_bars, *spread.median_bars))
    depth = charts.depth_chart(r)
    assert depth.range_path.count("Z") == 6  # six samples with a book, one bar each
    assert depth.peak_path.startswith("M")
    assert depth.peak_x is not None
    assert depth.trough_x is not None
    assert float(depth.peak_x) < float(depth.trough_x)
    assert depth.top == Decimal(600)
    bands = charts.bands_chart(r.bands)
    assert [row.label for row in bands.rows] == ["0–10 bps", "10–25 bps", "25–50 bps", "50–100 bps"]
    assert all(_within(b, bands.width, bands.height) for row in bands.rows for b in (row.bid, row.ask))
    assert float(bands.rows[0].bid.width) > 0
    assert float(bands.rows[1].bid.width) == 0


def test_an_empty_selection_draws_empty_charts() -> None:
    r = report_of([], start_ms=0, sample_ms=1_000, from_ms=0, until_ms=3_000, band_bps=50)
    assert all(float(b.height) == 0 for b in charts.uptime_chart(r).bars)
    assert charts.spread_chart(r).p95_bars == ()
    assert charts.depth_chart(r).range_path == ""
    assert all(float(row.bid.width) == 0 for row in charts.bands_chart(r.bands).rows)
