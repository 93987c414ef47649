"""The market-making quality figures of bench_mm_quality: each definition on a hand-worked case, and the
invariants that hold for any sequence of fills (PnL is the account's value change, fees counted once)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.mm_quality import (
    AverageCost,
    BandSample,
    Fill,
    MidSeries,
    Resting,
    band_sample,
    cash_flow,
    difference,
    excursion,
    in_band,
    inventory_path,
    markout,
    markout_bps,
    mean_depth,
    mid_of,
    pnl,
    ratio,
    show,
    uptime_pct,
    volume_base,
)

T0 = 1_700_000_000_000


def fill(side: str, price: str, amount: str, *, fee: str = "0", asset: str = "", ts: int = T0, tid: int = 1) -> Fill:
    fee_asset = asset or ("MMT" if side == "buy" else "USDT")
    return Fill(ts, tid, side, D(price), D(amount), D(fee), fee_asset)


# -- the band ----------------------------------------------------------------------------------------------------


def test_two_sided_needs_a_resting_order_of_each_side_inside_the_band() -> None:
    mid = D("100")
    both = [Resting("buy", D("99.5"), D(2)), Resting("sell", D("100.5"), D(1))]
    assert band_sample(both, mid) == BandSample(True, D("99.5") * 2 + D("100.5"))
    far_ask = [Resting("buy", D("99.5"), D(2)), Resting("sell", D("101.01"), D(1))]
    assert band_sample(far_ask, mid) == BandSample(False, D("199.0"))
    assert band_sample([Resting("buy", D(99), D(1)), Resting("buy", D("99.9"), D(1))], mid).two_sided is False


def test_the_band_edge_is_inside_and_a_filled_order_is_not_resting() -> None:
    assert in_band(D(99), D(100))
    assert in_band(D(101), D(100))
    assert not in_band(D("98.99"), D(100))
    gone = [Resting("buy", D("99.5"), D(0)), Resting("sell", D("100.5"), D(1))]
    assert band_sample(gone, D(100)) == BandSample(False, D("100.5"))


def test_no_mid_no_quote() -> None:
    assert mid_of(None, D(1)) is None
    assert mid_of(D(1), D(3)) == D(2)
    assert band_sample([Resting("buy", D(1), D(1)), Resting("sell", D(1), D(1))], None) == BandSample(False, D(0))


def test_uptime_and_depth_over_samples() -> None:
    samples = [BandSample(True, D(10)), BandSample(False, D(4)), BandSample(True, D(1)), BandSample(True, D(5))]
    assert uptime_pct(samples) == D(75)
    assert mean_depth(samples) == D(5)
    assert uptime_pct([]) is None
    assert mean_depth([]) is None


# -- cash flows and PnL ------------------------------------------------------------------------------------------


def test_a_fee_leaves_the_asset_it_is_charged_in() -> None:
    assert cash_flow(fill("buy", "0.5", "100", fee="0.1"), "MMT", "USDT") == (D("99.9"), D("-50.0"))
    assert cash_flow(fill("sell", "0.5", "100", fee="0.05"), "MMT", "USDT") == (D(-100), D("49.95"))
    assert cash_flow(fill("buy", "0.5", "100", fee="0.05", asset="USDT"), "MMT", "USDT") == (D(100), D("-50.05"))
    with pytest.raises(ValueError, match="fee in BNB"):
        cash_flow(fill("buy", "0.5", "100", fee="0.01", asset="BNB"), "MMT", "USDT")


def test_average_cost_long_then_flipped_short() -> None:
    book = AverageCost()
    book.apply(D(10), D(-10))  # 10 @ 1
    book.apply(D(10), D(-20))  # 10 @ 2: average 1.5
    assert (book.position, book.cost) == (D(20), D(30))
    book.apply(D(-5), D(15))  # 5 @ 3: 7.5 realized
    assert book.realized == D("7.5")
    assert book.position == D(15)
    assert book.cost == D("22.5")
    book.apply(D(-20), D(20))  # 20 @ 1: closes 15 (−7.5), opens 5 short at 1
    assert book.realized == D(0)
    assert (book.position, book.cost) == (D(-5), D(-5))
    assert book.unrealized(D("0.5")) == D("2.5")  # short 5 from 1, marked at 0.5
    book.apply(D(5), D("-2.5"))  # bought back at 0.5
    assert (book.position, book.cost, book.realized) == (D(0), D(0), D("2.5"))


def test_fees_are_counted_once() -> None:
    # Buy 100 at 0.5 with 0.1 MMT of fee, sell the 99.9 received at 0.5 with 0.04995 USDT of fee: the loss is
    # exactly the two fees, valued in quote — no more.
    fills = [fill("buy", "0.5", "100", fee="0.1", tid=1), fill("sell", "0.5", "99.9", fee="0.04995", tid=2, ts=T0 + 1)]
    out = pnl(fills, base="MMT", quote="USDT", base0=D(0), mark0=D("0.5"), mark_end=D("0.5"))
    assert out.unrealized == 0
    assert out.realized == -(D("0.1") * D("0.5") + D("0.04995"))
    assert out.fees_quote == D("0.1") * D("0.5") + D("0.04995")


def test_opening_inventory_is_booked_at_the_opening_mid() -> None:
    out = pnl([], base="MMT", quote="USDT", base0=D(1000), mark0=D("0.5"), mark_end=D("0.6"))
    assert (out.realized, out.unrealized) == (D(0), D(100))
    sold = pnl([fill("sell", "0.55", "1000")], base="MMT", quote="USDT", base0=D(1000), mark0=D("0.5"), mark_end=D(1))
    assert (sold.realized, sold.unrealized) == (D(50), D(0))


prices = st.decimals(min_value=D("0.0001"), max_value=D("1000"), places=4)
amounts = st.decimals(min_value=D("0.1"), max_value=D("10000"), places=1)
fee_rates = st.sampled_from([D(0), D("0.0001"), D("0.001")])
fill_lists = st.lists(st.tuples(st.sampled_from(["buy", "sell"]), prices, amounts, fee_rates), max_size=40)


def make_fills(raw: list[tuple[str, D, D, D]]) -> list[Fill]:
    out = []
    for i, (side, price, amount, rate) in enumerate(raw):
        fee = (amount * rate) if side == "buy" else (price * amount * rate)
        out.append(Fill(T0 + i, i, side, price, amount, fee.quantize(D("1e-8")), "MMT" if side == "buy" else "USDT"))
    return out


@settings(max_examples=300, deadline=None)
@given(fill_lists, st.decimals(D(0), D(10000), places=1), prices, prices)
def test_pnl_is_the_value_change_of_the_account(raw, base0, mark0, mark_end) -> None:
    """Whatever the fills (long, short, flips): realized + unrealized = Δquote + base_end·mark_end − base0·mark0,
    where Δquote and base_end are the account's own balances moved by the fills net of their fees."""
    fills = make_fills(raw)
    out = pnl(fills, base="MMT", quote="USDT", base0=base0, mark0=mark0, mark_end=mark_end)
    flows = [cash_flow(f, "MMT", "USDT") for f in fills]
    base_end = base0 + sum((b for b, _ in flows), D(0))
    d_quote = sum((q for _, q in flows), D(0))
    expected = d_quote + base_end * mark_end - base0 * mark0
    assert abs(out.total - expected) <= D("1e-12") * (1 + abs(expected))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(prices, amounts), min_size=1, max_size=20), prices)
def test_without_fees_buying_and_selling_back_at_the_same_prices_earns_nothing(legs, mark) -> None:
    fills = []
    for i, (price, amount) in enumerate(legs):
        fills += [fill("buy", str(price), str(amount), ts=T0 + 2 * i, tid=2 * i)]
        fills += [fill("sell", str(price), str(amount), ts=T0 + 2 * i + 1, tid=2 * i + 1)]
    out = pnl(fills, base="MMT", quote="USDT", base0=D(0), mark0=mark, mark_end=mark)
    assert abs(out.realized) <= D("1e-16") * sum((p * a for p, a in legs), D(1))
    assert out.unrealized == 0


# -- markouts ----------------------------------------------------------------------------------------------------


def test_markout_is_signed_for_the_maker() -> None:
    assert markout_bps(fill("buy", "100", "1"), D("100.1")) == D(10)  # bought, then the mid rose: earned
    assert markout_bps(fill("sell", "100", "1"), D("100.1")) == D(-10)  # sold, then it rose: picked off
    assert markout_bps(fill("sell", "100", "1"), D("99.8")) == D(20)


@given(prices, prices)
def test_a_buy_and_a_sell_at_one_price_mark_out_opposite(price, later) -> None:
    buy, sell = fill("buy", str(price), "1"), fill("sell", str(price), "1")
    assert markout_bps(buy, later) == -markout_bps(sell, later)


def test_mid_series_is_an_as_of_join_and_knows_where_it_ends() -> None:
    mids = MidSeries()
    mids.add(T0, D(100))
    mids.add(T0 + 100, None)  # a book without a mid is no sample
    mids.add(T0 + 200, D(101))
    assert mids.at(T0 - 1) is None
    assert mids.at(T0 + 150) == D(100)
    assert mids.at(T0 + 200) == D(101)
    assert mids.at(T0 + 201) is None
    assert mids.last == D(101)
    with pytest.raises(ValueError, match="time order"):
        mids.add(T0 + 100, D(1))


def test_markout_is_volume_weighted_over_the_fills_the_series_covers() -> None:
    mids = MidSeries()
    mids.add(T0, D(100))
    mids.add(T0 + 1000, D("100.2"))
    fills = [
        fill("buy", "100", "3", ts=T0, tid=1),  # +20 bps
        fill("sell", "100", "1", ts=T0, tid=2),  # −20 bps
        fill("buy", "100", "50", ts=T0 + 500, tid=3),  # t+1 s beyond the series: left out
    ]
    assert markout(fills, mids, 1000) == D(10)
    assert markout(fills[2:], mids, 1000) is None
    assert volume_base(fills) == D(54)


# -- inventory and printing --------------------------------------------------------------------------------------


def test_inventory_excursion_against_the_caps() -> None:
    fills = [
        fill("buy", "1", "300", fee="0.3", ts=T0, tid=1),
        fill("sell", "1", "800", ts=T0 + 1, tid=2),
        fill("buy", "1", "100", ts=T0 + 2, tid=3),
    ]
    path = inventory_path(fills, base="MMT", quote="USDT", base0=D(1000))
    assert path == [D(1000), D("1299.7"), D("499.7"), D("599.7")]
    got = excursion(path, min_base=D(600), max_base=D(2000))
    assert (got.largest, got.low, got.high, got.beyond_caps) == (D("500.3"), D("499.7"), D("1299.7"), D("100.3"))
    assert excursion(path, min_base=None, max_base=None).beyond_caps == 0


def test_printing_and_comparisons() -> None:
    assert show(None) == "n/a"
    assert show(D("1.005"), 2) == "1.00"  # banker's rounding, as Decimal quantizes by default
    assert show(7) == "7"
    assert ratio(D(3), D(2)) == D("1.5")
    assert ratio(D(1), D(0)) is None
    assert ratio(None, D(1)) is None
    assert difference(D(-2), D(3)) == D(-5)
    assert difference(D(1), None) is None
