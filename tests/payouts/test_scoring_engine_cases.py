"""The scoring engine (payouts/domain/scoring/engine.py) case by case against docs/scoring.md: the results bundle
part in full, which depth path scored, linked groups, each volume exclusion at its edge, the reference mid of a fill,
and the review-only flags. Small hand-built epochs, every expected number worked out in a comment from the text of
docs/scoring.md. Pure and fast: the mutation run (tests/reliability/mutation.py) selects these instead of the
property tests."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

from payouts.domain.scoring.engine import FillExclusion, linked_groups, score_epoch
from payouts.domain.scoring.inputs import EpochInputs
from tests.payouts.scoring_fixtures import (
    BOOK,
    STEP,
    T0,
    A,
    B,
    C,
    D,
    E,
    document,
    fill,
    inputs,
    mid_book,
    order,
    participant,
)

# A's two-sided book of tests/payouts/test_scoring.py, at mid 100 on BOOK: bid 99.80 × 2 scores 12774 points,
# ask 100.30 × 1 scores 4914, so Q = max(min(12774, 4914), floor(12774 / 3)) = 4914 at every sample.
HONEST = [order("b1", "buy", "99.8", "2"), order("a1", "sell", "100.3", "1")]


def book(mid: str) -> dict[str, Any]:
    """A book whose mid is `mid` (best bid mid − 0.05, best ask mid + 0.05)."""
    m = Decimal(mid)
    return {"bids": [[str(m - Decimal("0.05")), "1"]], "asks": [[str(m + Decimal("0.05")), "1"]]}


def maker(tid: str, price: str, amount: str = "1", *, side: str = "buy", ts: int = T0 + 1000) -> dict[str, Any]:
    return fill(tid, side, price, amount, maker=True, ts=ts)


def taker(tid: str, price: str, amount: str = "1", *, side: str = "sell", ts: int = T0 + 1000) -> dict[str, Any]:
    return fill(tid, side, price, amount, maker=False, ts=ts)


def of_order(order_id: str, f: dict[str, Any]) -> dict[str, Any]:
    return {**f, "order_id": order_id}


# --- the results bundle part -------------------------------------------------------------------------------------


def test_the_results_bundle_part_in_full() -> None:
    # Epoch 1 of 180 s: samples T0, T0 + 60 s (a gap), T0 + 120 s, all at mid 100 on BOOK except the gap. One prior
    # sample at T0 − 60 s at mid (100.05 + 100.15) / 2 = 100.10; the two before it are gaps.
    a = participant(
        A,
        [*HONEST, order("c1", "buy", "99.8", "1", [(T0 + 1000, T0 + 2000, "1")])],
        [maker("t1", "99.8", "0.5")],
        deposit=("dep-1",),
    )
    b = participant(B, [], [maker("t2", "100", side="sell")], deposit=("dep-1",))
    c = participant(C, [order("x1", "buy", "99.8", "2", confirmed=False)], [maker("u1", "103", side="sell")])
    doc = inputs(
        [a, b, c, participant(D)], books=[BOOK, None, BOOK], prior_books=[mid_book("100.05", "100.15")], epoch_index=1
    )
    scores = score_epoch(doc)
    # A's D: 4914 at the two samples that are not gaps = 9828; c1 rests 1 s only, never at a sample. B's own D is 0.
    # V: A's t1 floor(99.8 × 0.5 × 100) = 4990, B's t2 100 × 1 × 100 = 10000; A and B share a deposit address, so
    # the group's D = 9828 and V = 4990 + 10000 = 14990 go to A (the lower address), 0 to B. C's u1 at 103 is
    # |103 − 100| × 10^4 = 30000 > 200 × 100 = 20000 from the mid: off market; C's x1 is not confirmed.
    # Only A scores: share 4/5 × 9828/9828 + 1/5 × 14990/14990 = 1, the whole budget of 1000.
    # Flags: A's c1 was closed in the epoch with nothing filled (cancelled 1), one fill in the epoch (1/1), one order
    # created in the epoch (peak 1). M: the move into T0 is floor(0.10 × 10^6 / 100.10) = 999, every other move 0
    # (no move out of or into a gap), so m_t = 999 at all three samples and M = 999.
    no_flags = {"not_on_exchange": [], "not_visible": 0, "over_claimed": 0, "cancelled": 0}
    assert scores.as_json() == {
        "participants": [
            {
                "address": A,
                "depth": "9828",
                "volume": "14990",
                "share": "1/1",
                "amount": "1000",
                "group": A,
                "flags": {**no_flags, "cancelled": 1, "fills": 1, "cancel_to_fill": "1/1", "orders_per_second_peak": 1},
                "exclusions": [],
            },
            {
                "address": B,
                "depth": "0",
                "volume": "0",
                "share": "0/1",
                "amount": "0",
                "group": A,
                "flags": {**no_flags, "fills": 1, "cancel_to_fill": "0/1", "orders_per_second_peak": 0},
                "exclusions": [],
            },
            {
                "address": C,
                "depth": "0",
                "volume": "0",
                "share": "0/1",
                "amount": "0",
                "group": None,
                "flags": {
                    **no_flags,
                    "not_on_exchange": ["x1"],
                    "fills": 1,
                    "cancel_to_fill": "0/1",
                    "orders_per_second_peak": 0,
                },
                "exclusions": [{"trade_id": "u1", "side": "sell", "reason": "off_market"}],
            },
            {
                "address": D,
                "depth": "0",
                "volume": "0",
                "share": "0/1",
                "amount": "0",
                "group": None,
                "flags": {**no_flags, "fills": 0, "cancel_to_fill": None, "orders_per_second_peak": 0},
                "exclusions": [],
            },
        ],
        "gaps": [T0 + STEP],
        "groups": [[A, B]],
        "volatility_median_ppm": 999,
    }


# --- which depth path scored -------------------------------------------------------------------------------------


def test_each_depth_path_scores_the_same_and_says_which_it_was() -> None:
    doc = inputs([participant(A, HONEST), participant(B, [order("b", "buy", "99.8", "2")])])
    runs = {path: score_epoch(doc, depth_path=path) for path in ("auto", "vector", "reference")}
    assert {path: s.depth_path for path, s in runs.items()} == {
        "auto": "vector",
        "vector": "vector",
        "reference": "reference",
    }
    assert score_epoch(doc).depth_path == "vector"  # "auto" is the default
    # A: 3 × 4914; B one-sided: 3 × floor(12774 / 3) = 3 × 4258
    for s in runs.values():
        assert [(p.address, p.depth) for p in s.participants] == [(A, 14742), (B, 12774)]


def test_an_epoch_past_int64_is_scored_by_the_reference_and_refused_by_the_vector_path() -> None:
    # 21 decimals: the price scale 10^21 puts 2 × price × 10^6 past 2^63 − 1, so only the reference is exact.
    fine = "99.800000000000000000001"
    doc = inputs(
        [participant(A, [order("b", "buy", fine, "2")])], books=[{"bids": [[fine, "10"]], "asks": [["100.2", "1"]]}]
    )
    # mid (99.800…001 + 100.2) / 2 = 100.000…0005; dist floor(0.199…9995 × 10^6 / 100.000…0005) = 1999;
    # closeness floor(8001^2 × 10^6 / 10^8) = 640160; notional_cents floor(99.800…001 × 2 × 100) = 19960;
    # points floor(640160 × 19960 / 10^6) = floor(12777.59…) = 12777; one-sided Q = floor(12777 / 3) = 4259
    for path in ("auto", "reference"):
        s = score_epoch(doc, depth_path=path)
        assert (s.depth_path, s.participants[0].depth) == ("reference", 4259)
    with pytest.raises(ValueError, match=r"^the vectorized depth path cannot take this epoch within int64$"):
        score_epoch(doc, depth_path="vector")


# --- linked groups -----------------------------------------------------------------------------------------------


def test_links_are_transitive_and_each_kind_of_address_is_compared_only_with_its_own_kind() -> None:
    doc = inputs(
        [
            participant(A, withdrawal=("w-2",)),
            participant(B, deposit=("d-2",), withdrawal=("w-2",)),  # A–B by a withdrawal address
            participant(C, deposit=("d-2",), withdrawal=("w-1",)),  # B–C by a deposit address
            participant(D, deposit=("w-1",)),  # C's withdrawal address as D's deposit address: not a link
            participant(E, withdrawal=("d-2",)),  # B's and C's deposit address as a withdrawal address: no link
        ]
    )
    assert linked_groups(doc.participants) == {A: A, B: A, C: A, D: D, E: E}
    # the group is named by its lowest address whichever member comes first
    assert linked_groups(reversed(doc.participants)) == {A: A, B: A, C: A, D: D, E: E}


def test_a_trade_between_two_members_linked_only_through_a_third_is_a_linked_wash() -> None:
    # A–B share a deposit address, B–C a withdrawal address: A and C are in one group, so A's maker fill against C
    # is a wash; the group (A, B, C) scores A's other fill only: 100 × 0.5 × 100 = 5000, credited to A.
    s = score_epoch(
        inputs(
            [
                participant(A, [], [maker("t1", "100"), maker("t2", "100", "0.5")], deposit=("d",)),
                participant(B, [], [], deposit=("d",), withdrawal=("w",)),
                participant(C, [], [taker("t1", "100")], withdrawal=("w",)),
            ]
        )
    )
    got = s.by_address()
    assert s.groups == ((A, B, C),)
    assert (got[A].volume, got[B].volume, got[C].volume) == (5000, 0, 0)
    assert got[A].exclusions == (FillExclusion("t1", "buy", "wash_linked"),)
    assert (got[A].group, got[B].group, got[C].group) == (A, A, A)
    assert (got[A].amount, got[B].amount, got[C].amount) == (1000, 0, 0)


def test_two_groups_are_listed_sorted_and_each_sums_its_members() -> None:
    # (C, E) by a deposit address, (A, D) by a withdrawal address, B alone. Each one-sided bid 99.80 × 2 on BOOK
    # scores floor(12774 / 3) = 4258 a sample, 3 samples: 12774 each; a group's D is the sum of its members' own D.
    one_sided = [order("b", "buy", "99.8", "2")]
    s = score_epoch(
        inputs(
            [
                participant(E, one_sided, deposit=("k",)),
                participant(D, one_sided, withdrawal=("k",)),
                participant(C, one_sided, deposit=("k",)),
                participant(B, one_sided),
                participant(A, one_sided, withdrawal=("k",)),
            ],
            books=[{"bids": [["99.8", "10"]], "asks": [["100.2", "1"]]}] * 3,
        )
    )
    assert s.groups == ((A, D), (C, E))
    # ΣD = 5 × 12774; shares 2/5, 1/5, 2/5 of 1000
    assert [(p.address, p.depth, p.amount, p.group) for p in s.participants] == [
        (A, 25548, 400, A),
        (B, 12774, 200, None),
        (C, 25548, 400, C),
        (D, 0, 0, A),
        (E, 0, 0, C),
    ]


# --- volume: which fills, which mid ------------------------------------------------------------------------------


def test_a_fill_is_checked_against_the_mid_of_the_last_sample_at_or_before_it() -> None:
    # Five samples at mids 100, 104, 108, 112, 116: each fill is priced at the mid of the sample it should be
    # checked against, and is at least |4| × 10^4 = 40000 > 200 × 116 = 23200 from every other one (off market).
    books = [book(m) for m in ("100", "104", "108", "112", "116")]
    fills = [
        maker("v0", "100", ts=T0),  # exactly at the first sample (the epoch start is in the epoch)
        maker("v1", "104", ts=T0 + STEP + 1),
        maker("v2", "108", ts=T0 + 2 * STEP),  # exactly at a sample: that sample's mid
        maker("v3", "112", ts=T0 + 3 * STEP + 30_000),
        maker("v4", "116", ts=T0 + 5 * STEP - 1),  # the epoch's last millisecond
        maker("late", "116", ts=T0 + 5 * STEP),  # at the epoch end: not in the epoch, ignored altogether
        maker("early", "100", ts=T0 - 1),  # before the epoch start: ignored altogether
    ]
    got = score_epoch(inputs([participant(A, [], fills)], books=books)).by_address()[A]
    assert got.volume == 10000 + 10400 + 10800 + 11200 + 11600 == 54000
    assert got.exclusions == ()
    assert got.flags.fills == 5


@pytest.mark.parametrize(
    ("mids", "ts", "price"),
    [
        (("100",), T0 + STEP - 1, "100"),  # one sample: its mid for every fill
        (("100", "104"), T0 + STEP + 1, "104"),  # two samples: the second's mid after it
    ],
)
def test_the_reference_mid_in_an_epoch_of_one_or_two_samples(mids: tuple[str, ...], ts: int, price: str) -> None:
    # counted: the fill is priced at that mid (the other mid is 4 % away); floor(price × 1 × 100)
    got = score_epoch(inputs([participant(A, [], [maker("t", price, ts=ts)])], books=[book(m) for m in mids]))
    assert got.by_address()[A].volume == int(price) * 100
    assert got.by_address()[A].exclusions == ()


def test_a_fill_after_gaps_reaches_back_to_the_prior_snapshots() -> None:
    # Epoch 1: the prior sample at T0 − 60 s has mid 100; the epoch's samples are a gap, mid 104, a gap.
    doc = inputs(
        [
            participant(
                A,
                [],
                [
                    maker("g0", "100", ts=T0 + 1),  # no sample of the epoch before it has a mid: the prior one's, 100
                    maker("g1", "104", ts=T0 + STEP),  # at the second sample: 104
                    maker("g2", "104", ts=T0 + 2 * STEP + 1),  # the third is a gap: still 104
                ],
            )
        ],
        books=[None, book("104"), None],
        prior_books=[book("100")],
        epoch_index=1,
    )
    got = score_epoch(doc).by_address()[A]
    assert got.volume == 10000 + 10400 + 10400
    assert got.exclusions == ()


def test_a_fill_with_no_snapshot_at_or_before_it_has_no_reference_mid() -> None:
    # Epoch 0 (no prior snapshots), the first sample a gap: a fill before the second sample has no mid at all.
    fills = [maker("n0", "100", ts=T0 + STEP - 1), maker("n1", "100", ts=T0 + STEP)]
    got = score_epoch(inputs([participant(A, [], fills)], books=[None, book("100")])).by_address()[A]
    assert got.volume == 10000  # n1 only
    assert got.exclusions == (FillExclusion("n0", "buy", "no_reference_mid"),)


def test_the_first_exclusion_reason_that_applies_is_recorded_and_exclusions_are_sorted() -> None:
    # A and B are linked. A's fills, given out of order: p1 reported on both sides, its buy not confirmed; p2 also
    # reported (unconfirmed) by B; p3 shared with C, a pure taker (so wash by C's side: 2 × 10000 > 0); p2, p3 and
    # p4 priced 103 (off market: 30000 > 20000); p5 clean; k1 a taker fill (never counted, never excluded).
    p1_buy = maker("p1", "100")
    p1_buy["exchange"] = None
    a_fills = [
        taker("k1", "100", side="buy"),
        maker("p5", "100"),
        maker("p4", "103"),
        maker("p3", "103"),
        maker("p2", "103"),
        maker("p1", "100", side="sell"),
        p1_buy,
    ]
    b_fill = taker("p2", "103")
    b_fill["exchange"] = None
    s = score_epoch(
        inputs(
            [
                participant(A, [], a_fills, deposit=("d",)),
                participant(B, [], [b_fill], deposit=("d",)),
                participant(C, [], [taker("p3", "103")]),
            ]
        )
    )
    got = s.by_address()
    assert got[A].volume == 10000  # p5
    assert got[A].exclusions == (
        FillExclusion("p1", "buy", "not_on_exchange"),  # though also a self-trade
        FillExclusion("p1", "sell", "self_trade"),  # its unconfirmed buy still shows both sides
        FillExclusion("p2", "buy", "wash_linked"),  # B's report counts though unconfirmed; also off market
        FillExclusion("p3", "buy", "wash_mutual"),  # also off market
        FillExclusion("p4", "buy", "off_market"),
    )
    assert got[B].exclusions == got[C].exclusions == ()


# --- volume: wash_mutual at its edges ----------------------------------------------------------------------------


def mutual(a_fills: list[dict[str, Any]], b_fills: list[dict[str, Any]]) -> tuple[int, tuple[FillExclusion, ...], int]:
    """A's V and exclusions and B's V, for two unlinked participants."""
    got = score_epoch(inputs([participant(A, [], a_fills), participant(B, [], b_fills)])).by_address()
    return got[A].volume, got[A].exclusions, got[B].volume


def test_a_shared_trade_over_half_of_the_makers_own_volume_is_a_wash() -> None:
    # X_A(B) = 10000 of MV_A = 10000 + 5000: 20000 > 15000. B's side: X_B(A) = 10000 of MV_B = 100000, not over.
    got = mutual([maker("t1", "100"), maker("a2", "100", "0.5")], [taker("t1", "100"), maker("b2", "100", "10")])
    assert got == (5000, (FillExclusion("t1", "buy", "wash_mutual"),), 100000)


def test_a_shared_trade_of_exactly_half_of_the_makers_own_volume_is_not_a_wash() -> None:
    # X_A(B) = 10000 of MV_A = 20000: 2 × 10000 is not more than 20000; B's side as above.
    got = mutual([maker("t1", "100"), maker("a2", "100")], [taker("t1", "100"), maker("b2", "100", "10")])
    assert got == (20000, (), 100000)


def test_a_shared_trade_over_half_of_the_counterpartys_volume_is_a_wash() -> None:
    # A's side: X_A(B) = 10000 of MV_A = 100000, not over. B's: X_B(A) = 10000 (its taker fill) of MV_B = 5000.
    got = mutual([maker("t1", "100"), maker("a2", "100", "9")], [taker("t1", "100"), maker("b2", "100", "0.5")])
    assert got == (90000, (FillExclusion("t1", "buy", "wash_mutual"),), 5000)


def test_a_shared_trade_of_exactly_half_of_the_counterpartys_volume_is_not_a_wash() -> None:
    # B's side: X_B(A) = 10000 of MV_B = 20000, not more than half; A's side as above.
    got = mutual([maker("t1", "100"), maker("a2", "100", "9")], [taker("t1", "100"), maker("b2", "100", "2")])
    assert got == (100000, (), 20000)


def test_the_shared_volume_is_the_sum_over_every_shared_trade() -> None:
    # t1 and t3 with B, 6000 each: X_A(B) = 12000 of MV_A = 6000 + 6000 + 10000 = 22000, 24000 > 22000 (either
    # trade alone, 12000, is not). B's side: 12000 of 100000.
    a_fills = [maker("t1", "100", "0.6"), maker("t3", "100", "0.6"), maker("a2", "100")]
    b_fills = [taker("t1", "100", "0.6"), taker("t3", "100", "0.6"), maker("b2", "100", "10")]
    got = mutual(a_fills, b_fills)
    assert got == (
        10000,
        (FillExclusion("t1", "buy", "wash_mutual"), FillExclusion("t3", "buy", "wash_mutual")),
        100000,
    )


def test_an_unconfirmed_counterparty_fill_makes_no_mutual_wash() -> None:
    # B's taker fill of t1 is not confirmed, so B shares no confirmed trade with A (else MV_B = 0 would make it a
    # wash): A's t1 counts, 10000.
    b_fill = taker("t1", "100")
    b_fill["exchange"] = None
    assert mutual([maker("t1", "100")], [b_fill]) == (10000, (), 0)


# --- review-only flags -------------------------------------------------------------------------------------------


def test_the_review_flags_count_the_epochs_events_only() -> None:
    end = T0 + 3 * STEP
    orders = [
        order("early", "buy", "99.8", "1", [(T0 - 60_000, T0 - 10_000, "1")]),  # closed before the epoch
        order("at_start", "buy", "99.8", "1", [(T0 - 5_000, T0, "1")]),  # closed at its start: cancelled
        order("at_end", "buy", "99.8", "1", [(T0 + 170_000, end, "1")]),  # closed at its end: not in the epoch
        order("open", "buy", "99.8", "1", [(T0 + 10_000, None, "1")]),  # never closed
        order("full", "buy", "99.8", "2", [(T0 + 20_000, T0 + 21_000, "2"), (T0 + 21_000, T0 + 22_000, "1")]),
        order("partial", "buy", "99.8", "2", [(T0 + 30_000, T0 + 31_000, "2"), (T0 + 31_000, T0 + 40_000, "1")]),
        order("prefilled", "buy", "99.8", "2", [(T0 - 50_000, T0 - 40_000, "2"), (T0 - 40_000, T0 + 50_000, "1")]),
        # created in one wall-clock second (1_700_000_100, i.e. T0 + 60 s), 1 ms apart
        order("burst1", "buy", "99.8", "1", [(T0 + 60_798, None, "1")]),
        order("burst2", "buy", "99.8", "1", [(T0 + 60_799, None, "1")]),
        order("z-ghost", "buy", "99.8", "1", confirmed=False),
        order("m-ghost", "buy", "99.8", "1", confirmed=False),
    ]
    fills = [
        of_order("none", taker("first", "99.8", ts=T0)),  # at the epoch start: in the epoch
        of_order("full", taker("f1", "99.8", ts=T0 + 21_000)),
        of_order("full", taker("f2", "99.8", ts=T0 + 22_000)),  # full: 1 + 1 = its amount 2, not cancelled
        of_order("partial", taker("p1", "99.8", ts=T0 + 31_000)),  # partial: 1 of 2, then closed: cancelled
        of_order("prefilled", taker("q1", "99.8", ts=T0 - 40_000)),  # before the epoch: still fills the order
        of_order("prefilled", taker("q2", "99.8", ts=T0 + 50_000)),  # prefilled: 1 + 1 = 2, not cancelled
        of_order("open", taker("late", "99.8", ts=end)),  # at the epoch end: not in the epoch
    ]
    flags = score_epoch(inputs([participant(A, orders, fills)])).by_address()[A].flags
    assert flags.not_on_exchange == ("m-ghost", "z-ghost")
    assert flags.cancelled == 2  # at_start, partial
    assert flags.fills == 5  # first, f1, f2, p1, q2
    assert flags.cancel_to_fill == Fraction(2, 5)
    assert flags.as_json()["cancel_to_fill"] == "2/5"
    # created in the epoch: at_end, open, full, partial, burst1, burst2 — each in its own second but the bursts
    assert flags.orders_per_second_peak == 2


def test_the_orders_per_second_peak_counts_orders_created_at_the_epoch_start_but_not_at_its_end() -> None:
    end = T0 + 3 * STEP
    orders = [order(f"s{k}", "buy", "99.8", "1", [(T0 + k, None, "1")]) for k in range(2)]  # T0, T0 + 1 ms
    orders += [order(f"e{k}", "buy", "99.8", "1", [(end + k, None, "1")]) for k in range(3)]  # from the end on
    flags = score_epoch(inputs([participant(A, orders)])).by_address()[A].flags
    assert flags.orders_per_second_peak == 2
    assert (flags.fills, flags.cancel_to_fill) == (0, None)


def test_a_participant_with_no_orders_and_no_fills_has_empty_flags() -> None:
    doc = EpochInputs.from_json(document([participant(A, HONEST), participant(B)]))
    flags = score_epoch(doc).by_address()[B].flags
    assert flags.as_json() == {
        "not_on_exchange": [],
        "not_visible": 0,
        "over_claimed": 0,
        "cancelled": 0,
        "fills": 0,
        "cancel_to_fill": None,
        "orders_per_second_peak": 0,
    }
    # HONEST's orders were created before the epoch (BEFORE): A's peak is 0 too
    assert score_epoch(doc).by_address()[A].flags.orders_per_second_peak == 0
