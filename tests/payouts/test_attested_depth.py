"""The attribution of a market's in-band depth to reporting identities (payouts.domain.attested_depth): orders
matched to the oracle's book levels as the depth score matches them, a level over-claimed shared pro rata, orders
the book does not show and fills the exchange does not show counted against their identity."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from payouts.domain.attested_depth import UNATTRIBUTED, attribute_depth, band_depth
from payouts.domain.scoring.inputs import Book
from tests.payouts.scoring_fixtures import BOOK, A, B, fill, inputs, order, participant

K1, K2 = "11" * 32, "22" * 32
R1, R2 = "a1" * 32, "b2" * 32  # report digests, one per identity
KEYS = {R1: K1, R2: K2}


def signed(o: dict[str, Any], report: str) -> dict[str, Any]:
    return {**o, "report_digest": report}


# BOOK (mid 100, band 100 bps → strictly inside 99..101): bids 99.95×2, 99.9×10, 99.8×10; asks 100.05×5, 100.1×10,
# 100.3×10: in-band depth = 99.95·2 + 99.9·10 + 99.8·10 + 100.05·5 + 100.1·10 + 100.3·10.
BOOK_DEPTH = (
    Fraction("99.95") * 2
    + Fraction("99.9") * 10
    + Fraction("99.8") * 10
    + Fraction("100.05") * 5
    + Fraction("100.1") * 10
    + Fraction("100.3") * 10
)


def test_the_book_depth_counts_only_levels_inside_the_band() -> None:
    book = Book.from_json({"bids": [["99.5", "1"], ["98.9", "100"]], "asks": [["100.5", "1"], ["101", "100"]]}, "b")
    # mid 100; 99 and 101 are exactly 100 bps away: out (strictly closer counts), 98.9 farther still.
    assert band_depth(book, Fraction(100), 10_000) == Fraction("99.5") + Fraction("100.5")


def test_each_identity_gets_its_orders_depth_and_the_rest_is_nobodys() -> None:
    a = participant(A, [signed(order("a1", "buy", "99.9", "4"), R1), signed(order("a2", "sell", "100.1", "2"), R1)])
    b = participant(B, [signed(order("b1", "sell", "100.05", "5"), R2)])
    out = attribute_depth(inputs([a, b], samples=3), KEYS)
    assert out.samples == 3
    assert out.book_quote == 3 * BOOK_DEPTH
    assert out.by_identity[K1].depth_quote == 3 * (Fraction("99.9") * 4 + Fraction("100.1") * 2)
    assert out.by_identity[K2].depth_quote == 3 * Fraction("100.05") * 5
    assert out.by_identity[K1].orders_checked == 6
    assert out.by_identity[K1].orders_not_visible == 0
    assert out.share({K1, K2}) == (out.by_identity[K1].depth_quote + out.by_identity[K2].depth_quote) / out.book_quote


def test_an_over_claimed_level_is_shared_pro_rata() -> None:
    # The best bid has 2; A claims 3 and B claims 1 there: 4 claimed, so each counts 2 × its part.
    a = participant(A, [signed(order("a1", "buy", "99.95", "3"), R1)])
    b = participant(B, [signed(order("b1", "buy", "99.95", "1"), R2)])
    out = attribute_depth(inputs([a, b], samples=1), KEYS)
    assert out.by_identity[K1].depth_quote == Fraction("99.95") * Fraction(3, 2)
    assert out.by_identity[K2].depth_quote == Fraction("99.95") * Fraction(1, 2)


def test_orders_the_book_does_not_show_count_against_their_identity_and_add_nothing() -> None:
    ghost = signed(order("g", "buy", "99.93", "5"), R1)  # no level at 99.93
    real = signed(order("r", "sell", "100.1", "1"), R1)
    out = attribute_depth(inputs([participant(A, [ghost, real])], samples=2), KEYS)
    figures = out.by_identity[K1]
    assert (figures.orders_checked, figures.orders_not_visible) == (4, 2)
    assert figures.depth_quote == 2 * Fraction("100.1")


def test_unconfirmed_orders_are_checked_but_bring_no_depth_and_unknown_reports_are_unattributed() -> None:
    unconfirmed = signed(order("u", "buy", "99.9", "1", confirmed=False), R1)
    anonymous = order("n", "buy", "99.8", "1")  # no report digest
    out = attribute_depth(inputs([participant(A, [unconfirmed, anonymous])], samples=1), KEYS)
    assert out.by_identity[K1].orders_checked == 1
    assert out.by_identity[K1].depth_quote == 0
    assert out.by_identity[UNATTRIBUTED].depth_quote == Fraction("99.8")


def test_orders_too_young_or_too_small_are_not_checked() -> None:
    young = signed(order("y", "buy", "99.9", "4", live=[(1_700_000_040_000 - 10_000, None, "4")]), R1)
    small = signed(order("s", "buy", "99.8", "0.1"), R1)  # 9.98 quote, under the minimum of 50
    out = attribute_depth(inputs([participant(A, [young, small])], samples=1), KEYS)
    assert K1 not in out.by_identity or out.by_identity[K1].orders_checked == 0


def test_fills_the_exchange_does_not_show_count_against_their_identity() -> None:
    fills = [
        {**fill("t1", "buy", "99.9", "1", maker=True), "report_digest": R1},
        {**fill("t2", "buy", "99.9", "1", maker=True, confirmed=False), "report_digest": R1},
    ]
    out = attribute_depth(inputs([participant(A, [], fills)], samples=1), KEYS)
    assert (out.by_identity[K1].fills_checked, out.by_identity[K1].fills_unconfirmed) == (2, 1)


def test_gaps_are_not_samples() -> None:
    out = attribute_depth(
        inputs([participant(A, [signed(order("a", "buy", "99.9", "1"), R1)])], books=[BOOK, None]), KEYS
    )
    assert out.samples == 1
    assert out.book_quote == BOOK_DEPTH


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["99.95", "99.9", "99.8", "100.05", "100.1", "100.3"]), st.integers(1, 30)),
        min_size=1,
        max_size=8,
    )
)
def test_the_attributed_depth_never_exceeds_the_book(claims: list[tuple[str, int]]) -> None:
    orders = [
        signed(order(f"o{i}", "buy" if Fraction(p) < 100 else "sell", p, str(n)), R1 if i % 2 else R2)
        for i, (p, n) in enumerate(claims)
    ]
    out = attribute_depth(inputs([participant(A, orders)], samples=1), KEYS)
    share = out.share({K1, K2, UNATTRIBUTED})
    assert share is not None
    assert 0 < share <= 1


def test_orders_outside_the_band_are_not_checked() -> None:
    # 100 bps band around 100: 98.5 is out, and the recorder keeps no level that far anyway.
    deep = signed(order("d", "buy", "98.5", "5"), R1)
    out = attribute_depth(inputs([participant(A, [deep])], samples=2), KEYS)
    assert K1 not in out.by_identity or out.by_identity[K1].orders_checked == 0
