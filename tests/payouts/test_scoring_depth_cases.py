"""The depth score D (docs/scoring.md, "Depth score D" and its implementation choices) on small hand-built epochs,
every number worked out by hand from the model. Each case runs through both depth paths, which must agree bit for
bit: the exact reference (`depth.depth_reference`) and the numpy one (`depth_vector.depth_vector`), the latter also
with the binary-search lookup and two-sample blocks, so every branch of it is reached by a few samples.

Fast and pure (no database, no Hypothesis): the mutation run (tests/reliability/mutation.py) uses these for
depth.py and depth_vector.py; test_scoring_properties.py checks the two paths on random epochs.

Per sample at mid 100 (the fixtures' BOOK) with v = 100 bps (max_ppm 10000), c = 3:
bid 99.80 × 2: dist 2000, closeness floor(8000² × 10⁶ / 10⁸) = 640000, notional_cents 19960 → 12774 points;
one-sided Q = 12774 // 3 = 4258. Ask 100.30 × 1: dist 3000, closeness 490000, notional_cents 10030 → 4914.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any
from unittest import mock

import numpy as np
import pytest

from payouts.domain.scoring import depth_vector
from payouts.domain.scoring.depth import DepthOutcome, depth_reference, sample_context, weighted
from payouts.domain.scoring.depth_vector import INT64_MAX, _ceil_div, _scaled, _weighted
from payouts.domain.scoring.inputs import EpochInputs
from tests.payouts.scoring_fixtures import BEFORE, BOOK, STEP, T0, A, B, C, inputs, order, participant

BID = 12774  # bid 99.80 × 2 at mid 100
ONE_SIDED = 4258  # 12774 // 3
HALF_SPREAD = Decimal("0.05")
HONEST = [order("b1", "buy", "99.8", "2"), order("a1", "sell", "100.3", "1")]


def both(doc: EpochInputs) -> DepthOutcome:
    """The reference's outcome, once the vector path (dense lookup, then binary search in blocks of two samples)
    has been checked to give the very same."""
    ctx = sample_context(doc)
    reference = depth_reference(doc, ctx)
    assert depth_vector.depth_vector(doc, ctx) == reference
    with mock.patch.object(depth_vector, "DENSE_LOOKUP_MAX", 0), mock.patch.object(depth_vector, "BLOCK_SAMPLES", 2):
        assert depth_vector.depth_vector(doc, ctx) == reference
    return reference


def outcome(depth: dict[str, int], not_visible: dict[str, int], over_claimed: dict[str, int]) -> DepthOutcome:
    return DepthOutcome(depth=depth, not_visible=not_visible, over_claimed=over_claimed)


def book(bids: list[list[str]], asks: list[list[str]]) -> dict[str, Any]:
    return {"bids": bids, "asks": asks}


def mid_at(mid: str) -> dict[str, Any]:
    """A book whose mid is `mid`: best bid mid − 0.05, best ask mid + 0.05 (no order of the tests rests there)."""
    return book([[str(Decimal(mid) - HALF_SPREAD), "1"]], [[str(Decimal(mid) + HALF_SPREAD), "1"]])


# --- the honest maker, sides, samples, gaps -----------------------------------------------------------------------


def test_a_two_sided_maker_scores_its_thinner_side_at_every_sample() -> None:
    got = both(inputs([participant(A, HONEST)], samples=5))
    assert got == outcome({A: 5 * 4914}, {A: 0}, {A: 0})


def test_one_sided_quoters_on_either_side_score_their_side_divided_by_c() -> None:
    bid_only = participant(A, [order("b", "buy", "99.8", "2")])
    ask_only = participant(B, [order("a", "sell", "100.3", "1")])  # 4914 // 3 = 1638
    got = both(inputs([bid_only, ask_only], samples=3))
    assert got == outcome({A: 3 * ONE_SIDED, B: 3 * 1638}, {A: 0, B: 0}, {A: 0, B: 0})


def test_a_divisor_of_one_scores_the_one_side_whole_and_two_sides_by_the_thinner() -> None:
    got = both(
        inputs([participant(A, [order("b", "buy", "99.8", "2")]), participant(B, HONEST)], single_side_divisor=1)
    )
    assert got.depth == {A: 3 * BID, B: 3 * max(min(BID, 4914), BID)}


def test_gap_samples_score_nothing_and_later_samples_still_count() -> None:
    # gaps first, in the middle and last: only the two sampled books count, and a gap counts no flag either
    # (in blocks of two samples the first block is all gaps)
    books = [None, None, BOOK, None, BOOK, None]
    ghost = order("g", "buy", "99.85", "2")  # no level at 99.85: not visible at each of the two non-gap samples
    got = both(inputs([participant(A, HONEST), participant(B, [ghost])], books=books))
    assert got == outcome({A: 2 * 4914, B: 0}, {A: 0, B: 2}, {A: 0, B: 0})


def test_nobody_with_a_countable_order_scores_zero_on_both_paths() -> None:
    unconfirmed = order("u", "buy", "99.8", "2", confirmed=False)
    tiny = order("t", "buy", "99.8", "0.5")  # notional 49.9 < 50
    got = both(inputs([participant(A, [unconfirmed]), participant(B, [tiny]), participant(C)]))
    assert got == outcome({A: 0, B: 0, C: 0}, {A: 0, B: 0, C: 0}, {A: 0, B: 0, C: 0})


def test_an_epoch_without_participants_has_no_depth() -> None:
    assert both(inputs([])) == outcome({}, {}, {})


def test_an_unconfirmed_order_before_a_confirmed_one_does_not_hide_it() -> None:
    orders = [order("u", "buy", "99.8", "2", confirmed=False), order("b", "buy", "99.8", "2")]
    got = both(inputs([participant(A, orders)]))
    assert got == outcome({A: 3 * ONE_SIDED}, {A: 0}, {A: 0})


def test_orders_that_are_not_visible_count_per_sample_and_do_not_hide_visible_ones() -> None:
    # the ghost bid comes first; the ask at 100.2 has no level either (asks are 100.05, 100.1, 100.3)
    orders = [order("g1", "buy", "99.85", "2"), order("g2", "sell", "100.2", "1"), order("b", "buy", "99.8", "2")]
    got = both(inputs([participant(A, orders)], samples=3))
    assert got == outcome({A: 3 * ONE_SIDED}, {A: 2 * 3}, {A: 0})


def test_only_not_visible_orders_score_nothing_and_are_all_flagged() -> None:
    got = both(inputs([participant(A, [order("g1", "buy", "99.85", "2"), order("g2", "sell", "100.2", "1")])]))
    assert got == outcome({A: 0}, {A: 6}, {A: 0})


def test_a_bid_at_an_ask_price_is_not_the_ask_level() -> None:
    # 100.3 is a level of the asks only: a bid there is not visible; 99.8 is a bid level only
    orders = [order("x", "buy", "100.3", "1"), order("y", "sell", "99.8", "2")]
    got = both(inputs([participant(A, orders)], samples=2))
    assert got == outcome({A: 0}, {A: 4}, {A: 0})


def test_an_ask_placed_before_a_bid() -> None:
    # the ask's level is met first, the bid's first in the book: the lookups must not depend on that order
    assert both(inputs([participant(A, HONEST[::-1])])) == outcome({A: 3 * 4914}, {A: 0}, {A: 0})


def test_a_level_missing_from_some_books_is_visible_only_where_it_is() -> None:
    # 99.80 is in the third book only: A's bid scores there (4258) and is not visible at the other three
    without = book([["99.95", "2"], ["99.9", "10"]], [["100.05", "5"]])
    got = both(inputs([participant(A, [order("b", "buy", "99.8", "2")])], books=[without, without, BOOK, without]))
    assert got == outcome({A: ONE_SIDED}, {A: 3}, {A: 0})


# --- min_rest_seconds, sample instants, continuous runs -----------------------------------------------------------


def test_an_order_counts_once_it_has_rested_exactly_min_rest_seconds() -> None:
    exactly = order("b", "buy", "99.8", "2", [(T0 + STEP - 30_000, None, "2")])  # rested 30 s at the second sample
    short = order("b", "buy", "99.8", "2", [(T0 + STEP - 29_999, None, "2")])  # 1 ms short there: from the third
    got = both(inputs([participant(A, [exactly]), participant(B, [short])]))
    assert got.depth == {A: 2 * ONE_SIDED, B: ONE_SIDED}


def test_min_rest_seconds_zero_counts_an_order_placed_on_the_sample_instant() -> None:
    placed = order("b", "buy", "99.8", "2", [(T0 + STEP, None, "2")])
    later = order("c", "buy", "99.8", "2", [(T0 + STEP + 1, None, "2")])
    got = both(inputs([participant(A, [placed]), participant(B, [later])], min_rest_seconds=0))
    assert got.depth == {A: 2 * ONE_SIDED, B: ONE_SIDED}


def test_a_longer_min_rest_is_measured_in_seconds() -> None:
    # min_rest 90 s: placed 120 s before T0 (BEFORE) counts from T0; placed 60 s before the epoch, from T0 + 30 s,
    # so from the second sample on
    early = order("e", "buy", "99.8", "2")
    late = order("l", "buy", "99.8", "2", [(T0 - 60_000, None, "2")])
    got = both(inputs([participant(A, [early]), participant(B, [late])], min_rest_seconds=90))
    assert got.depth == {A: 3 * ONE_SIDED, B: 2 * ONE_SIDED}


def test_an_order_cancelled_on_a_sample_instant_is_not_live_there() -> None:
    on_the_instant = order("b", "buy", "99.8", "2", [(BEFORE, T0 + STEP, "2")])  # live at T0 only
    one_ms_later = order("c", "buy", "99.8", "2", [(BEFORE, T0 + STEP + 1, "2")])  # live at T0 and T0 + STEP
    got = both(inputs([participant(A, [on_the_instant]), participant(B, [one_ms_later])]))
    assert got.depth == {A: ONE_SIDED, B: 2 * ONE_SIDED}


def test_an_order_closed_after_the_epoch_end_counts_to_the_last_sample() -> None:
    got = both(inputs([participant(A, [order("b", "buy", "99.8", "2", [(BEFORE, T0 + 10 * STEP, "2")])])]))
    assert got.depth == {A: 3 * ONE_SIDED}


def test_an_order_closed_before_the_epoch_counts_nowhere_but_its_later_run_does() -> None:
    # closed 60 s before the epoch, placed again 10 s before it: rested 30 s from T0 + 20 s, so from the second
    # sample (and the first interval, before the epoch, covers no sample)
    again = order("b", "buy", "99.8", "2", [(BEFORE, T0 - 60_000, "2"), (T0 - 10_000, None, "2")])
    got = both(inputs([participant(A, [again])]))
    assert got.depth == {A: 2 * ONE_SIDED}


def test_a_partial_fill_does_not_restart_the_rest_and_the_new_size_counts() -> None:
    # placed 30 s before the second sample, filled down to 1 at T0 + 100 s: one continuous run.
    # Second sample: 4258. Third: 99.80 × 1 → notional_cents 9980, floor(640000 × 9980 / 10⁶) = 6387, // 3 = 2129
    placed = T0 + STEP - 30_000
    bid = order("b", "buy", "99.8", "2", [(placed, T0 + 100_000, "2"), (T0 + 100_000, None, "1")])
    assert both(inputs([participant(A, [bid])])).depth == {A: ONE_SIDED + 2129}


def test_a_fill_on_a_sample_instant_counts_the_new_size_there() -> None:
    bid = order("b", "buy", "99.8", "2", [(BEFORE, T0 + STEP, "2"), (T0 + STEP, None, "1")])
    assert both(inputs([participant(A, [bid])])).depth == {A: ONE_SIDED + 2 * 2129}


def test_a_run_restarts_after_a_break_between_intervals() -> None:
    # live until T0 + 30 s, again from T0 + 40 s: the second run has rested 20 s at T0 + 60 s (not counted) and
    # 80 s at T0 + 120 s; the first counts at T0
    bid = order("b", "buy", "99.8", "2", [(BEFORE, T0 + 30_000, "2"), (T0 + 40_000, None, "2")])
    assert both(inputs([participant(A, [bid])])).depth == {A: 2 * ONE_SIDED}


def test_the_run_of_a_third_interval_reaches_back_over_two_fills() -> None:
    # placed at T0 + 70 s, filled at T0 + 80 s and T0 + 90 s (sizes 2, 1.5, 1): at T0 + 120 s the run has rested
    # 50 s with min_rest 40 s, so the third interval counts: 99.80 × 1 → 6387 // 3 = 2129. Counted from the
    # third interval's own start it would have rested 30 s only.
    live = [(T0 + 70_000, T0 + 80_000, "2"), (T0 + 80_000, T0 + 90_000, "1.5"), (T0 + 90_000, None, "1")]
    bid = order("b", "buy", "99.8", "2", live)
    assert both(inputs([participant(A, [bid])], min_rest_seconds=40)).depth == {A: 2129}


def test_a_break_before_a_fill_restarts_the_run_at_the_break() -> None:
    # runs: [BEFORE, T0 + 10 s) and [T0 + 50 s, …) filled at T0 + 100 s; with min_rest 30 s the second run counts
    # from T0 + 80 s: at T0 (first run, 4258), not at T0 + 60 s, at T0 + 120 s with size 1 (2129)
    live = [(BEFORE, T0 + 10_000, "2"), (T0 + 50_000, T0 + 100_000, "2"), (T0 + 100_000, None, "1")]
    bid = order("b", "buy", "99.8", "2", live)
    assert both(inputs([participant(A, [bid])])).depth == {A: ONE_SIDED + 2129}


def test_an_interval_too_short_to_rest_covers_no_sample() -> None:
    # [T0 + 10 s, T0 + 50 s) with min_rest 30 s: rested from T0 + 40 s, gone before the sample at T0 + 60 s
    bid = order("b", "buy", "99.8", "2", [(T0 + 10_000, T0 + 50_000, "2")])
    assert both(inputs([participant(A, [bid])])).depth == {A: 0}


# --- min_order_quote ----------------------------------------------------------------------------------------------


def test_a_notional_exactly_min_order_quote_counts_and_one_below_does_not() -> None:
    # 99.80 × 2 = 199.6 exactly; 99.80 × 1.9999 = 199.59002 < 199.6 (both at the 99.80 level, size 10)
    at = participant(A, [order("a", "buy", "99.8", "2")])
    below = participant(B, [order("b", "buy", "99.8", "1.9999")])
    got = both(inputs([at, below], min_order_quote="199.6"))
    assert got == outcome({A: 3 * ONE_SIDED, B: 0}, {A: 0, B: 0}, {A: 0, B: 0})


def test_the_notional_test_uses_the_remaining_size_of_the_interval() -> None:
    # filled from 2 down to 0.5 at T0 + 90 s: 99.80 × 0.5 = 49.9 < 50, so only the first two samples count
    bid = order("b", "buy", "99.8", "2", [(BEFORE, T0 + 90_000, "2"), (T0 + 90_000, None, "0.5")])
    assert both(inputs([participant(A, [bid])])).depth == {A: 2 * ONE_SIDED}


def test_the_notional_test_is_per_interval_a_small_one_does_not_hide_a_later_one() -> None:
    # an interval of 0.1 (9.98 < 50) until T0 + STEP, then one of 2: the second and third samples count
    bid = order("b", "buy", "99.8", "2", [(BEFORE, T0 + STEP, "0.1"), (T0 + STEP, None, "2")])
    assert both(inputs([participant(A, [bid])])).depth == {A: 2 * ONE_SIDED}


def test_a_below_quote_order_does_not_claim_its_level() -> None:
    # level 99.95 has size 2; B's 1.9 at 99.95 (189.905 < 190) claims nothing, so A's 2 are not over-claimed:
    # dist 500, closeness floor(9500² / 100) = 902500, notional_cents 19990 → floor(18040.975) = 18040, // 3 = 6013
    got = both(
        inputs(
            [participant(A, [order("a", "buy", "99.95", "2")]), participant(B, [order("b", "buy", "99.95", "1.9")])],
            min_order_quote="190",
            samples=1,
        )
    )
    assert got == outcome({A: 6013, B: 0}, {A: 0, B: 0}, {A: 0, B: 0})


# --- shared levels --------------------------------------------------------------------------------------------------


def test_claims_adding_up_to_the_level_exactly_are_not_over_claimed() -> None:
    # level 99.80 of size 10, claimed 6 + 4 = 10 = S: each counts its own size.
    # A: 99.80 × 6 → 59880 cents, floor(640000 × 59880 / 10⁶) = 38323, // 3 = 12774
    # B: 99.80 × 4 → 39920 cents, floor(25548.8) = 25548, // 3 = 8516
    a = participant(A, [order("a", "buy", "99.8", "6")])
    b = participant(B, [order("b", "buy", "99.8", "4")])
    got = both(inputs([a, b], samples=1))
    assert got == outcome({A: 12774, B: 8516}, {A: 0, B: 0}, {A: 0, B: 0})


def test_claims_past_the_level_are_shared_pro_rata_and_flagged() -> None:
    # 6 + 4 + 1 = 11 > 10: counted r × 10 / 11.
    # A: 60/11 → floor(99.8 × 60/11 × 100) = floor(598800/11) = 54436, floor(640000 × 54436 / 10⁶) = 34839, // 3 = 11613
    # B: 40/11 → floor(399200/11) = 36290, floor(23225.6) = 23225, // 3 = 7741
    # C: 10/11 → floor(99800/11) = 9072, floor(5806.08) = 5806, // 3 = 1935 (three samples: two blocks of two)
    a = participant(A, [order("a", "buy", "99.8", "6")])
    b = participant(B, [order("b", "buy", "99.8", "4")])
    c = participant(C, [order("c", "buy", "99.8", "1")])
    got = both(inputs([a, b, c], samples=3))
    assert got == outcome({A: 3 * 11613, B: 3 * 7741, C: 3 * 1935}, {A: 0, B: 0, C: 0}, {A: 3, B: 3, C: 3})


def test_a_fractional_level_size_is_shared_exactly() -> None:
    # level 99.80 of size 2.5, claimed 2 + 1 = 3: A counts 2 × 2.5 / 3 = 5/3, B 5/6.
    # A: floor(99.8 × 5/3 × 100) = floor(49900/3) = 16633, floor(640000 × 16633 / 10⁶) = 10645, // 3 = 3548
    # B: floor(24950/3) = 8316, floor(5322.24) = 5322, // 3 = 1774
    # Only the over-claimed level is in Python ints; A's ask at 100.3 (4914 points) is an ordinary row.
    level = book([["99.95", "2"], ["99.8", "2.5"]], [["100.05", "5"], ["100.3", "10"]])
    a = participant(A, [order("a", "buy", "99.8", "2"), order("s", "sell", "100.3", "1")])
    b = participant(B, [order("b", "buy", "99.8", "1")])
    got = both(inputs([a, b], books=[level]))
    # A: bids 10645, asks 4914: Q = max(min(10645, 4914), 10645 // 3) = 4914
    assert got == outcome({A: 4914, B: 1774}, {A: 0, B: 0}, {A: 1, B: 1})


def test_a_participants_own_orders_at_one_level_share_it_too() -> None:
    # 99.95 has size 2; A claims 1.5 + 1.5 = 3: each counts 1.5 × 2 / 3 = 1, notional_cents 9995,
    # floor(902500 × 9995 / 10⁶) = 9020 each; bids 18040, one-sided // 3 = 6013; flagged once per order
    orders = [order("x", "buy", "99.95", "1.5"), order("y", "buy", "99.95", "1.5")]
    assert both(inputs([participant(A, orders)], samples=1)) == outcome({A: 6013}, {A: 0}, {A: 2})


def test_an_over_claimed_level_at_one_sample_only_is_flagged_there_only() -> None:
    # the level 99.80 has size 10 at the first sample and 1 at the second: 2 claimed on 1 counts 1 (6387 → 2129)
    thin = book([["99.95", "2"], ["99.8", "1"]], [["100.05", "5"]])
    got = both(inputs([participant(A, [order("b", "buy", "99.8", "2")])], books=[BOOK, thin]))
    assert got == outcome({A: ONE_SIDED + 2129}, {A: 0}, {A: 1})


# --- points: the band, the mid ----------------------------------------------------------------------------------------


def test_the_band_edge_an_order_at_max_ppm_scores_nothing_one_ppm_inside_scores() -> None:
    # v = 1 bp: max_ppm 100. At mid 100: 99.99 is dist 100 → 0 points; 99.9901 is dist 99 → closeness
    # floor(1² × 10⁶ / 100²) = 100, notional_cents floor(99.9901 × 100 × 100) = 999901, points floor(99.9901) = 99.
    # Asks likewise: 100.01 → 0; 100.0099 → 100 × 1000099 // 10⁶ = 100. Q = min(99, 100) = 99 for B, 0 for A.
    edge = book(
        [["99.995", "100"], ["99.99", "100"], ["99.9901", "100"]],
        [["100.005", "100"], ["100.01", "100"], ["100.0099", "100"]],
    )
    a = participant(A, [order("a1", "buy", "99.99", "100"), order("a2", "sell", "100.01", "100")])
    b = participant(B, [order("b1", "buy", "99.9901", "100"), order("b2", "sell", "100.0099", "100")])
    got = both(inputs([a, b], books=[edge], max_spread_bps=1))
    assert got.depth == {A: 0, B: 99}


def test_an_order_past_the_band_scores_nothing_whatever_its_size() -> None:
    far = book([["99.95", "2"], ["98", "1000"]], [["100.05", "5"], ["101.2", "1000"]])
    orders = [order("b", "buy", "98", "1000"), order("a", "sell", "101.2", "1000")]
    assert both(inputs([participant(A, orders)], books=[far])).depth == {A: 0}


def test_a_mid_with_a_finer_denominator_than_the_prices() -> None:
    # best bid 99.99, best ask 100.02: mid 100.005. v = 300 bps: max_ppm 30000.
    # bid 99 × 1: dist floor(1.005 × 10⁶ / 100.005) = 10049, closeness floor(19951² × 10⁶ / 30000²) = 442269,
    #   notional_cents 9900, points floor(442269 × 9900 / 10⁶) = 4378
    # ask 101 × 1: dist floor(0.995 × 10⁶ / 100.005) = 9949, closeness floor(20051² × 10⁶ / 30000²) = 446714,
    #   notional_cents 10100, points floor(4511.8) = 4511;  Q = max(min(4378, 4511), 4511 // 3) = 4378
    level = book([["99.99", "1"], ["99", "10"]], [["100.02", "1"], ["101", "10"]])
    orders = [order("b", "buy", "99", "1"), order("a", "sell", "101", "1")]
    assert both(inputs([participant(A, orders)], books=[level], max_spread_bps=300)).depth == {A: 4378}


def test_a_crossed_book_is_taken_as_it_is() -> None:
    # best bid 100.1 above best ask 99.9: mid 100. A's bid at 99.8 is dist 2000 as at mid 100 → 12774 // 3
    crossed = book([["100.1", "1"], ["99.8", "10"]], [["99.9", "1"]])
    assert both(inputs([participant(A, [order("b", "buy", "99.8", "2")])], books=[crossed])).depth == {A: ONE_SIDED}


def test_prices_above_and_below_the_mid_at_another_mid() -> None:
    # mid 50 (49.95 / 50.05), v = 100: bid 49.9 × 4: dist floor(0.1 × 10⁶ / 50) = 2000, closeness 640000,
    # notional_cents 19960 → 12774; ask 50.15 × 2: dist 3000, closeness 490000, notional_cents 10030 → 4914
    level = book([["49.95", "1"], ["49.9", "10"]], [["50.05", "1"], ["50.15", "10"]])
    orders = [order("b", "buy", "49.9", "4"), order("a", "sell", "50.15", "2")]
    assert both(inputs([participant(A, orders)], books=[level])).depth == {A: 4914}


def test_notional_cents_are_floored_before_the_points() -> None:
    # bid 99.80 × 1.99999: notional_cents floor(19959.8002) = 19959, points floor(640000 × 19959 / 10⁶) =
    # floor(12773.76) = 12773, // 3 = 4257 (unfloored cents would give 12774 and 4258)
    got = both(inputs([participant(A, [order("b", "buy", "99.8", "1.99999")])], samples=1))
    assert got.depth == {A: 4257}


def test_closeness_is_floored_before_the_points() -> None:
    # mid 100.1: bid 99.80 × 1000 at dist floor(0.3 × 10⁶ / 100.1) = 2997, closeness floor(7003² / 100) =
    # floor(490420.09) = 490420, notional_cents 9980000, points floor(4894391.6) = 4894391, // 3 = 1631463
    # (the unfloored closeness would give 4894392 and 1631464)
    level = book([["100.05", "1"], ["99.8", "1000"]], [["100.15", "1"]])
    got = both(inputs([participant(A, [order("b", "buy", "99.8", "1000")])], books=[level]))
    assert got.depth == {A: 1631463}


def test_large_points_are_floored_exactly() -> None:
    # mid 100.1, c = 1: bid 99.80 × 900000233.4, closeness 490420, notional_cents 8982002329332;
    # 490420 × 8982002329332 = 4404953582350999440, so points floor(4404953582350.99944) = 4404953582350
    # (as a float the quotient rounds to …351)
    level = book([["100.05", "1"], ["99.8", "1000000000"]], [["100.15", "1"]])
    doc = inputs([participant(A, [order("b", "buy", "99.8", "900000233.4")])], books=[level], single_side_divisor=1)
    assert both(doc).depth == {A: 4404953582350}


def test_a_pro_rata_notional_just_under_a_whole_cent_is_floored() -> None:
    # price 1 at mid 1 (bid 1 / ask 1: dist 0, closeness 10⁶), c = 1, min_order_quote 0. A claims 3 and B 10⁻¹⁶
    # on a level of 3: A counts 3 × 3 / (3 + 10⁻¹⁶), notional_cents floor(900 / (3 + 10⁻¹⁶)) = floor(300 − 10⁻¹⁴…)
    # = 299, points 299 (in floats the quotient comes out as 300); B's cents are 0
    level = book([["1", "3"]], [["1", "1"]])
    a = participant(A, [order("a", "buy", "1", "3")])
    b = participant(B, [order("b", "buy", "1", "0.0000000000000001")])
    got = both(inputs([a, b], books=[level], single_side_divisor=1, min_order_quote="0"))
    assert got == outcome({A: 299, B: 0}, {A: 0, B: 0}, {A: 1, B: 1})


def test_a_depth_past_a_floats_53_bits_is_summed_exactly() -> None:
    # 150 samples, nine bids at the mid (100 / 100: closeness 10⁶) of 920000000.0001 each: notional_cents and
    # points 9200000000001 an order, Q = 9 × 9200000000001 = 82800000000009 per sample (c = 1, odd), and
    # D = 150 × Q = 12420000000001350 > 2⁵³ (also summed in one-sample blocks)
    level = book([["100", "1000000000000"]], [["100", "1"]])
    bids = [order(f"b{i}", "buy", "100", "920000000.0001") for i in range(9)]
    doc = inputs([participant(A, bids)], books=[level] * 150, single_side_divisor=1)
    assert both(doc).depth == {A: 12420000000001350}
    with mock.patch.object(depth_vector, "BLOCK_SAMPLES", 1):
        assert vector_path(doc) == outcome({A: 12420000000001350}, {A: 0}, {A: 0})


# --- the volatility weight --------------------------------------------------------------------------------------------


def test_the_weighting_function_on_each_side_of_each_condition() -> None:
    # M = 10, Q = 11: 2m < M halves (floor), m > 2M doubles, otherwise floor(Q × m / M); tried in that order.
    cases = {4: 5, 5: 5, 6: 6, 10: 11, 13: 14, 20: 22, 21: 22, 25: 22}  # m → weighted
    assert {m: weighted(11, m, 10) for m in cases} == cases
    assert weighted(11, 25, 0) == 11  # M = 0: unweighted
    assert weighted(11, 0, 1) == 5  # M = 1: 2 × 0 < 1 halves
    assert weighted(11, 3, 1) == 22  # 3 > 2 doubles
    got = _weighted(np.array([[11] * len(cases)], dtype=np.int64), np.array(list(cases), dtype=np.int64), 10, True)
    assert got.dtype == np.int64
    assert got.tolist() == [list(cases.values())]


def test_the_vector_weighting_is_off_when_disabled_or_the_median_is_zero() -> None:
    q = np.array([[11, 11]], dtype=np.int64)
    m = np.array([0, 25], dtype=np.int64)
    assert _weighted(q, m, 10, False).tolist() == [[11, 11]]
    assert _weighted(q, m, 0, True).tolist() == [[11, 11]]
    assert _weighted(q, m, 1, True).tolist() == [[5, 22]]


def test_the_moves_and_their_window_of_ten_samples() -> None:
    # mids 100, 100.1, 100, 100.1, …: moves 0, then 1000 (0.1 × 10⁶ / 100) and 999 (floor(0.1 × 10⁶ / 100.1))
    # in turn. m_t sums the 10 moves ending at t: at the 10th sample 5 × 1000 + 4 × 999 = 8996; from the 11th on,
    # 5 × 1000 + 5 × 999 = 9995.
    mids = ["100", "100.1"] * 6
    ctx = sample_context(inputs([], books=[mid_at(m) for m in mids], volatility_weighting=True))
    assert ctx.moves == (0, 1000, 999, 1000, 999, 1000, 999, 1000, 999, 1000, 999, 1000)
    assert ctx.window_moves == (0, 1000, 1999, 2999, 3998, 4998, 5997, 6997, 7996, 8996, 9995, 9995)
    assert ctx.median_move == 4998  # 12 values: the lower middle one, position (12 − 1) // 2 = 5
    assert ctx.weighting is True
    assert ctx.gaps == ()


def test_the_first_move_of_a_later_epoch_is_from_the_last_prior_sample() -> None:
    # Epoch 2 of 3-sample epochs: 6 prior sample times, of which the first two have no snapshot and the fourth is a
    # gap; prior mids –, –, 100, –, 100.1, 100.1, then the epoch's 100, 100, 100.2. Prior moves are all 0 (no
    # previous, a gap, out of a gap, no change); the epoch's first is floor(0.1 × 10⁶ / 100.1) = 999 (divided by
    # the previous mid), then 0, then floor(0.2 × 10⁶ / 100) = 2000. m_t: 999, 999, 2999; M = 999.
    prior = [mid_at("100"), None, mid_at("100.1"), mid_at("100.1")]
    doc = inputs([], books=[mid_at("100"), mid_at("100"), mid_at("100.2")], prior_books=prior, epoch_index=2)
    ctx = sample_context(doc)
    assert ctx.prior_mids == (None, None, Fraction(100), None, Fraction(1001, 10), Fraction(1001, 10))
    assert ctx.moves == (999, 0, 2000)
    assert ctx.window_moves == (999, 999, 2999)
    assert ctx.median_move == 999


def test_the_window_reaches_ten_samples_back_into_the_prior_ones() -> None:
    # 10 prior samples: mids 100, 101, 100, 101, … (moves 0, 10000, floor(10⁶ / 101) = 9900, 10000, …), then the
    # epoch's 3 samples at 100, 100, 100 (moves 9900, 0, 0). Windows of 10 ending at each epoch sample:
    # the first holds prior moves 1..9 (5 × 10000 + 4 × 9900 = 89600) and 9900: 99500; the second prior moves 2..9
    # (79600), 9900 and 0: 89500; the third prior moves 3..9 (69700), 9900, 0, 0: 79600. M = 89500.
    prior_mids = ["100", "101"] * 5
    prior_moves = [0] + [10000 if k % 2 else 9900 for k in range(1, 10)]
    assert prior_moves == [0, 10000, 9900, 10000, 9900, 10000, 9900, 10000, 9900, 10000]
    doc = inputs(
        [],
        books=[mid_at("100")] * 3,
        prior_books=[mid_at(m) for m in prior_mids],
        epoch_index=4,  # 3-sample epochs: four earlier epochs give 12 sample times, the last 10 are carried
    )
    ctx = sample_context(doc)
    every = [*prior_moves, 9900, 0, 0]
    assert ctx.moves == (9900, 0, 0)
    # the window at epoch sample j (index 10 + j of all 13) holds moves 1 + j .. 10 + j
    assert ctx.window_moves == tuple(sum(every[1 + j : 11 + j]) for j in range(3)) == (99500, 89500, 79600)
    assert ctx.median_move == 89500


def test_gaps_in_the_epoch_are_listed_and_stop_the_moves() -> None:
    books = [mid_at("100"), None, mid_at("100.1"), mid_at("100.2")]
    ctx = sample_context(inputs([], books=books, volatility_weighting=True))
    assert ctx.gaps == (T0 + STEP,)
    assert ctx.mids[1] is None
    assert ctx.moves == (0, 0, 0, 999)  # floor(0.1 × 10⁶ / 100.1) = 999 from 100.1 to 100.2
    assert ctx.window_moves == (0, 0, 0, 999)
    assert ctx.median_move == 0
    assert ctx.weighting is True


def test_a_first_epoch_has_no_move_into_its_first_sample_even_from_its_last() -> None:
    # the last mid (100.5) differs from the first (100): the first move is still 0, not a wrap-around
    ctx = sample_context(inputs([], books=[mid_at("100"), mid_at("100"), mid_at("100.5")]))
    assert ctx.moves == (0, 0, 5000)
    assert ctx.window_moves == (0, 0, 5000)
    assert ctx.median_move == 0
    assert ctx.weighting is False


def test_volatility_weighting_end_to_end_on_both_paths() -> None:
    # The model's worked example: mids 100, 100.10, 100.40, 100.40, 100; m = 0, 1000, 3997, 3997, 7981, M = 3997.
    # A one-sided bid 99.80 × 2 (19960 cents), Q = points // 3 at the five mids:
    #   mid 100:    dist 2000 → closeness 640000 → 12774 → Q 4258
    #   mid 100.1:  dist floor(0.3 × 10⁶ / 100.1) = 2997 → floor(7003² / 100) = 490420 → 9788 → Q 3262
    #   mid 100.4:  dist floor(0.6 × 10⁶ / 100.4) = 5976 → floor(4024² / 100) = 161925 → 3232 → Q 1077
    # weighted: 4258 // 2 = 2129 (2m < M), 3262 // 2 = 1631, 1077 and 1077 (m = M), floor(4258 × 7981 / 3997) = 8502
    books = [
        book([["99.95", "1"], ["99.8", "10"]], [["100.05", "1"]]),
        book([["100.05", "1"], ["99.8", "10"]], [["100.15", "1"]]),
        book([["100.35", "1"], ["99.8", "10"]], [["100.45", "1"]]),
        book([["100.35", "1"], ["99.8", "10"]], [["100.45", "1"]]),
        book([["99.95", "1"], ["99.8", "10"]], [["100.05", "1"]]),
    ]
    doc = inputs([participant(A, [order("b", "buy", "99.8", "2")])], books=books, volatility_weighting=True)
    assert both(doc).depth == {A: 2129 + 1631 + 1077 + 1077 + 8502}
    unweighted = inputs([participant(A, [order("b", "buy", "99.8", "2")])], books=books)
    assert both(unweighted).depth == {A: 4258 + 3262 + 1077 + 1077 + 4258}


# --- the vector path's helpers and bounds -------------------------------------------------------------------------


def test_scaled_and_ceil_div_are_exact_integers() -> None:
    assert _scaled(Fraction(499, 5), 100) == 9980
    assert _scaled(Fraction(10**16 + 1, 10**16), 10**16) == 10**16 + 1  # past a float's 53 bits
    assert type(_scaled(Fraction(3, 4), 8)) is int
    assert [_ceil_div(a, 60) for a in (-61, -60, -1, 0, 1, 59, 60, 61)] == [-1, -1, 0, 0, 1, 1, 1, 2]
    assert type(_ceil_div(7, 2)) is int


@pytest.mark.parametrize("size", [str(INT64_MAX), str(INT64_MAX - 1)])
def test_a_level_of_up_to_int64_max_stays_on_the_vector_path(size: str) -> None:
    huge = book([["99.95", "2"], ["99.8", size]], [["100.05", "5"]])
    doc = inputs([participant(A, [order("b", "buy", "99.8", "2")])], books=[huge], samples=1)
    got = both(doc)
    assert got.depth == {A: ONE_SIDED}
    assert depth_vector.depth_vector(doc, sample_context(doc)) is not None


def test_a_level_past_int64_falls_back_to_the_reference() -> None:
    huge = book([["99.95", "2"], ["99.8", str(INT64_MAX + 1)]], [["100.05", "5"]])
    doc = inputs([participant(A, [order("b", "buy", "99.8", "2")])], books=[huge], samples=1)
    ctx = sample_context(doc)
    assert depth_vector.depth_vector(doc, ctx) is None
    assert depth_reference(doc, ctx).depth == {A: ONE_SIDED}


def test_orders_that_never_count_do_not_push_the_epoch_off_the_vector_path() -> None:
    # 21 decimals would put price × scale × 10⁶ past int64 (test_scoring_properties.py), but these orders never
    # claim a level: unconfirmed, below min_order_quote, or cancelled before they rested at a sample
    fine = "99.800000000000000000001"
    level = book([["99.95", "2"], [fine, "10"], ["99.8", "10"]], [["100.05", "5"]])
    never = [
        order("u", "buy", fine, "2", confirmed=False),
        order("t", "buy", fine, "0.1"),
        order("s", "buy", fine, "2", [(T0 + 10_000, T0 + 50_000, "2")]),
        order("b", "buy", "99.8", "2"),
    ]
    doc = inputs([participant(A, never)], books=[level] * 2)
    assert depth_vector.depth_vector(doc, sample_context(doc)) is not None
    assert both(doc) == outcome({A: 2 * ONE_SIDED}, {A: 0}, {A: 0})


def test_a_hair_over_claimed_level_with_sizes_past_a_floats_precision() -> None:
    # 1.0000000000000001 (10¹⁶ + 1 at the size scale 10¹⁶, not a float) claimed on a level of 1: over-claimed by
    # 10⁻¹⁶, so counted 1.0000000000000001 × 1 / 1.0000000000000001 = 1. Price 5, mid 5.5 (5 / 6), v = 1000 bps
    # (max_ppm 100000): dist floor(0.5 × 10⁶ / 5.5) = 90909, closeness floor(9091² × 10⁶ / 10¹⁰) = 8264,
    # notional_cents 500, points floor(8264 × 500 / 10⁶) = 4, one-sided // 3 = 1
    level = book([["5", "1"]], [["6", "1"]])
    bid = order("b", "buy", "5", "1.0000000000000001")
    doc = inputs([participant(A, [bid])], books=[level], max_spread_bps=1000, min_order_quote="5")
    assert depth_vector.depth_vector(doc, sample_context(doc)) is not None
    assert both(doc) == outcome({A: 1}, {A: 0}, {A: 1})


# Each int64 bound of the vector path (depth_vector.py, "Scales and bounds"), just under (the vector path, equal to
# the reference) and just over (None: the caller scores the epoch with the reference). Every other bound of these
# epochs is far below 2^63 − 1 = 9223372036854775807.


def vector_path(doc: EpochInputs) -> DepthOutcome | None:
    return depth_vector.depth_vector(doc, sample_context(doc))


def test_the_distance_bound_twice_the_largest_scaled_price_times_a_million() -> None:
    # prices of 12 decimals (price scale 10¹²) at mid 1.5 (1 / 2), the orders far outside the band:
    # 2 × 4.000000000001 × 10¹² × 10⁶ = 8.000000000002 × 10¹⁸ is under (3 × would not be), 2 × 4.7… × 10¹⁸ is over
    low = book([["1", "1"]], [["2", "1"]])
    under = inputs([participant(A, [order("a", "sell", "4.000000000001", "1")])], books=[low], min_order_quote="1")
    assert vector_path(under) is not None
    assert both(under) == outcome({A: 0}, {A: 1}, {A: 0})
    over = inputs([participant(A, [order("a", "sell", "4.700000000001", "1")])], books=[low], min_order_quote="1")
    assert vector_path(over) is None


def test_the_distance_bound_of_a_gap_is_not_a_mid() -> None:
    # price scale 10¹³; the one mid, 0.1000000000002 (2 × 10¹³ × it × 10⁶ = 2.000000000004 × 10¹⁸), is under.
    # A gap has no mid at all: it must not weigh in as a mid of 1 (10¹³ × 10⁶ = 10¹⁹ would be over).
    fine = book([["0.1000000000001", "1000"]], [["0.1000000000003", "1000"]])
    bid = order("b", "buy", "0.1000000000001", "1000")
    doc = inputs([participant(A, [bid])], books=[fine, None], min_order_quote="0")
    # dist floor(10⁻¹³ × 10⁶ / 0.1000000000002) = 0: closeness 10⁶, notional_cents floor(100.0000000001 × 100) =
    # 10000, points 10000, one-sided // 3 = 3333
    assert vector_path(doc) is not None
    assert both(doc) == outcome({A: 3333}, {A: 0}, {A: 0})


@pytest.mark.parametrize(("bps", "fits"), [(30370, True), (30371, False)])
def test_the_closeness_bound_max_ppm_squared_times_a_million(bps: int, fits: bool) -> None:
    # max_ppm = 100 × bps: 3037000² × 10⁶ = 9.22336969 × 10¹⁸ is under, 3037100² × 10⁶ = 9.22397641 × 10¹⁸ over
    doc = inputs([participant(A, HONEST)], max_spread_bps=bps, samples=1)
    assert (vector_path(doc) is not None) is fits
    # bid 99.8 × 2: dist 2000, closeness floor(3035000² × 10⁶ / 3037000²) = 998683, floor(998683 × 19960 / 10⁶) =
    # 19933; ask 100.3 × 1: dist 3000, closeness floor(3034000² × 10⁶ / 3037000²) = 998025,
    # floor(998025 × 10030 / 10⁶) = 10010; Q = max(min(19933, 10010), 19933 // 3) = 10010
    assert depth_reference(doc, sample_context(doc)).depth == {A: 10010}
    if fits:
        assert both(doc).depth == {A: 10010}


def test_the_notional_numerator_bound_scaled_price_times_scaled_size_times_100() -> None:
    # size scale 10⁹, price scale 1: 100 × 920000000000001 × 100 = 9.2 × 10¹⁸ is under (101 × would be over),
    # 100 × 930000000000001 × 100 = 9.3 × 10¹⁸ over. The bid at 100 has no level (not visible).
    under = inputs([participant(A, [order("b", "buy", "100", "920000.000000001")])], samples=1)
    assert vector_path(under) is not None
    assert both(under) == outcome({A: 0}, {A: 1}, {A: 0})
    over = inputs([participant(A, [order("b", "buy", "100", "930000.000000001")])], samples=1)
    assert vector_path(over) is None


def test_the_points_bound_largest_notional_cents_times_a_million() -> None:
    # price 1 (scale 1), size scale 1000: notional_cents 1 × 92233720368.549 × 100 = 9223372036854.9, floored
    # 9223372036854, × 10⁶ = 9223372036854000000 under (the unfloored one would be over);
    # 1 × 92233720368.55 × 100 = 9223372036855, × 10⁶ over
    under = inputs([participant(A, [order("b", "buy", "1", "92233720368.549")])], samples=1)
    assert vector_path(under) is not None
    assert both(under) == outcome({A: 0}, {A: 1}, {A: 0})
    over = inputs([participant(A, [order("b", "buy", "1", "92233720368.55")])], samples=1)
    assert vector_path(over) is None


def test_the_weighting_bound_twice_q_times_the_largest_move() -> None:
    # mids 1 (0.95 / 1.05), then 1000 (999.95 / 1000.05): m_max = 999 × 10⁶ ppm. One bid at 1000 × 40000:
    # notional_cents 4 × 10⁹, 2 × 4 × 10⁹ × 999 × 10⁶ = 7.992 × 10¹⁸ under (3 × would be over);
    # 1000 × 50000: 2 × 5 × 10⁹ × 999 × 10⁶ = 9.99 × 10¹⁸ over
    books = [book([["0.95", "1"]], [["1.05", "1"]]), book([["999.95", "1"]], [["1000.05", "1"]])]
    under = inputs([participant(A, [order("b", "buy", "1000", "40000")])], books=books)
    assert vector_path(under) is not None
    assert both(under) == outcome({A: 0}, {A: 2}, {A: 0})
    over = inputs([participant(A, [order("b", "buy", "1000", "50000")])], books=books)
    assert vector_path(over) is None


@pytest.mark.parametrize(("orders", "fits"), [(500, True), (600, False)])
def test_the_depth_bound_samples_times_twice_q(orders: int, fits: bool) -> None:
    # 1000 samples, each of the orders a bid at 100 × 800000000 (notional_cents 8 × 10¹², no level: not visible):
    # 1000 × 2 × 500 × 8 × 10¹² = 8 × 10¹⁸ under (3 × would be over), with 600 orders 9.6 × 10¹⁸ over.
    # (The reference is not run: a million (sample, order) pairs of Fractions take seconds.)
    bids = [order(f"b{i}", "buy", "100", "800000000") for i in range(orders)]
    doc = inputs([participant(A, bids)], samples=1000)
    got = vector_path(doc)
    if fits:
        assert got == outcome({A: 0}, {A: 500 * 1000}, {A: 0})
    else:
        assert got is None


def test_the_scale_bound_price_scale_times_size_scale() -> None:
    # price 10⁻¹⁰ and size 1.0000000001: both scales 10¹⁰, their product 10²⁰ is over (every other bound is small)
    doc = inputs([participant(A, [order("b", "buy", "0.0000000001", "1.0000000001")])], min_order_quote="0")
    assert vector_path(doc) is None
    assert depth_reference(doc, sample_context(doc)) == outcome({A: 0}, {A: 3}, {A: 0})


def test_a_volatility_window_past_int64_falls_back_even_when_no_order_is_worth_a_cent() -> None:
    # The last prior mid is 10⁻¹³ and the epoch's is 100: the first move is floor((100 − 10⁻¹³) × 10⁶ / 10⁻¹³) =
    # 999999999999999000000 ppm, past int64, and it stays in every window of the 3-sample epoch. The one order,
    # 99.80 × 0.0001, is worth 0.998 cents (notional_cents 0), so the weighting bound 2 × Q × m is 0: the moves
    # themselves must still fall back, not overflow (found by this triage: an OverflowError from score_epoch).
    tiny = book([["0.0000000000001", "1"]], [["0.0000000000001", "1"]])
    bid = order("b", "buy", "99.8", "0.0001")
    doc = inputs([participant(A, [bid])], prior_books=[tiny], epoch_index=1, min_order_quote="0")
    ctx = sample_context(doc)
    assert ctx.window_moves == (999999999999999000000,) * 3
    assert depth_vector.depth_vector(doc, ctx) is None
    assert depth_reference(doc, ctx) == outcome({A: 0}, {A: 0}, {A: 0})


def test_a_volatility_window_under_half_of_int64_stays_on_the_vector_path() -> None:
    # The last prior mid is 2.5 × 10⁻¹¹: the first move is floor((100 − 2.5 × 10⁻¹¹) × 10⁶ / (2.5 × 10⁻¹¹)) =
    # 3999999999999000000, and 2 × it fits int64 (3 × it would not). The order is worth no cent, as above.
    tiny = book([["0.000000000025", "1"]], [["0.000000000025", "1"]])
    bid = order("b", "buy", "99.8", "0.0001")
    doc = inputs([participant(A, [bid])], prior_books=[tiny], epoch_index=1, min_order_quote="0")
    assert sample_context(doc).window_moves == (3999999999999000000,) * 3
    assert vector_path(doc) is not None
    assert both(doc) == outcome({A: 0}, {A: 0}, {A: 0})
