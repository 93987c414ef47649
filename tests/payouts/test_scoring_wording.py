"""The scoring engine where the reward model's wording decides a reading: the volatility moves and a fill's reference
mid reach back into the samples before the epoch, self-trades and linked washes read every reported fill, repeated
fills are malformed, and the review flags count the epoch's events only. Every number worked out by hand here."""

from __future__ import annotations

import pytest

from payouts.domain.scoring.depth import sample_context
from payouts.domain.scoring.engine import EpochScores, score_epoch
from payouts.domain.scoring.inputs import EpochInputs, Params, ScoringInputError
from tests.payouts.scoring_fixtures import (
    BEFORE,
    BOOK,
    STEP,
    T0,
    A,
    B,
    C,
    document,
    fill,
    inputs,
    mid_book,
    order,
    params,
    participant,
)

HONEST = [order("b", "buy", "99.8", "2"), order("s", "sell", "100.3", "1")]
# mids 100, 100.1, 100.1; the honest orders' levels in both books
B0 = {"bids": [["99.95", "10"], ["99.8", "10"]], "asks": [["100.05", "10"], ["100.3", "10"]]}
B1 = {"bids": [["100.05", "10"], ["99.8", "10"]], "asks": [["100.15", "10"], ["100.3", "10"]]}
MID_99 = {"bids": [["98.95", "10"]], "asks": [["99.05", "10"]]}  # mid 99


def scored(doc: EpochInputs) -> EpochScores:
    ref = score_epoch(doc, depth_path="reference")
    auto = score_epoch(doc)
    assert auto.depth_path == "vector"
    assert ref.as_json() == auto.as_json()
    return auto


# --- volatility across epochs ----------------------------------------------------------------------------------


def test_the_first_move_of_a_later_epoch_is_from_the_last_prior_sample() -> None:
    doc = inputs(
        [participant(A, HONEST)], books=[B0, B1, B1], prior_books=[MID_99], epoch_index=1, volatility_weighting=True
    )
    ctx = sample_context(doc)
    # move_0 = floor(1 × 10⁶ / 99) = 10101, move_1 = floor(0.1 × 10⁶ / 100) = 1000, move_2 = 0
    assert ctx.prior_mids == (None, None, 99)  # the prior times T0 − 3, 2, 1 × STEP; only the last has a book
    assert ctx.moves == (10101, 1000, 0)
    assert ctx.window_moves == (10101, 11101, 11101)
    assert ctx.median_move == 11101
    # Sample 0, mid 100: bid 12774, ask 4914 → Q 4914, weighted floor(4914 × 10101 / 11101) = 4471.
    # Samples 1, 2, mid 100.1: bid dist floor(0.3 × 10⁶ / 100.1) = 2997 → closeness floor(7003² / 100) = 490420,
    # points floor(490420 × 19960 / 10⁶) = 9788; ask dist 1998 → closeness 640320, points floor(640320 × 10030 / 10⁶)
    # = 6422; Q = max(6422, 9788 // 3) = 6422, m_t = M → unweighted.
    assert 4914 * 10101 // 11101 == 4471
    assert 490420 * 19960 // 10**6 == 9788
    assert 640320 * 10030 // 10**6 == 6422
    assert scored(doc).by_address()[A].depth == 4471 + 6422 + 6422 == 17315


def test_without_prior_snapshots_the_first_move_is_zero() -> None:
    doc = inputs([participant(A, HONEST)], books=[B0, B1, B1], epoch_index=1, volatility_weighting=True)
    ctx = sample_context(doc)
    assert (ctx.moves, ctx.window_moves, ctx.median_move) == ((0, 1000, 0), (0, 1000, 1000), 1000)
    assert scored(doc).by_address()[A].depth == 4914 // 2 + 6422 + 6422


def test_the_window_of_ten_samples_reaches_back_into_the_prior_samples() -> None:
    # epoch 4 of 3-sample epochs: the ten prior sample times are T0 − 10 … 1 × STEP (epochs 1–3 and epoch 0's last)
    prior = [mid_book("99.95", "100.05")] + [mid_book("100.05", "100.15")] * 9  # a move of 1000 at T0 − 9 × STEP
    doc = inputs([], books=[mid_book("100.05", "100.15")] * 3, prior_books=prior, epoch_index=4)
    assert doc.params.prior_sample_times() == tuple(T0 - k * STEP for k in range(10, 0, -1))
    ctx = sample_context(doc)
    # m_t at the epoch's first sample sums the moves at T0 − 9 × STEP … T0; the second's starts at T0 − 8 × STEP
    assert ctx.moves == (0, 0, 0)
    assert ctx.window_moves == (1000, 0, 0)
    assert ctx.median_move == 0  # the median is over this epoch's samples only


def test_the_prior_sample_times_follow_the_earlier_epochs_grid() -> None:
    # 90 s epochs sampled every 60 s: each epoch samples at its start and 60 s later
    p = Params.from_json(params(epoch_index=2, epoch_seconds=90, epoch_end_ms=T0 + 90_000), "params")
    assert p.prior_sample_times() == (T0 - 180_000, T0 - 120_000, T0 - 90_000, T0 - 30_000)
    assert Params.from_json(params(), "params").prior_sample_times() == ()


@pytest.mark.parametrize(
    ("epoch_index", "prior_t", "problem"),
    [
        (0, T0 - STEP, "is not one of the 10 sample times before the epoch"),  # the campaign's first epoch
        (1, T0 - 4 * STEP, "is not one of the 10 sample times before the epoch"),  # before the campaign start
        (1, T0 - STEP + 1, "is not one of the 10 sample times before the epoch"),
        (1, T0, "is not one of the 10 sample times before the epoch"),
    ],
)
def test_a_prior_snapshot_off_the_prior_sample_times_is_malformed(epoch_index: int, prior_t: int, problem: str) -> None:
    doc = document([], epoch_index=epoch_index)
    doc["prior_snapshots"] = [{"t_ms": prior_t, "book": BOOK}]
    with pytest.raises(ScoringInputError) as caught:
        EpochInputs.from_json(doc)
    assert (caught.value.path, caught.value.problem) == ("inputs.prior_snapshots[0].t_ms", problem)


def test_prior_snapshots_round_trip_and_are_written_only_when_present() -> None:
    doc = inputs([participant(A, HONEST)], prior_books=[None, MID_99], epoch_index=1)
    again = EpochInputs.from_json(doc.as_json())
    assert again == doc
    assert [s["t_ms"] for s in again.as_json()["prior_snapshots"]] == [T0 - 2 * STEP, T0 - STEP]
    assert "prior_snapshots" not in inputs([participant(A, HONEST)]).as_json()
    assert EpochInputs.from_json({**document([]), "prior_snapshots": []}) == inputs([])


# --- the reference mid of a fill -------------------------------------------------------------------------------


def test_a_fill_before_any_snapshot_of_the_epoch_uses_the_last_prior_snapshot() -> None:
    fills = [
        fill("t1", "sell", "100.98", "1", maker=True),  # mid 99: 200 bps exactly, counted
        fill("t2", "sell", "101", "1", maker=True),  # 202 bps: off market (against mid 100 it would count)
    ]
    books = [None, mid_book("99.95", "100.05"), mid_book("99.95", "100.05")]
    doc = inputs([participant(A, [], fills)], books=books, prior_books=[MID_99, None], epoch_index=1)
    got = scored(doc).by_address()[A]
    assert got.volume == 10098
    assert [(x.trade_id, x.reason) for x in got.exclusions] == [("t2", "off_market")]


def test_a_fill_with_no_snapshot_at_or_before_it_anywhere_in_the_inputs_has_no_reference_mid() -> None:
    books = [None, mid_book("99.95", "100.05")]
    fills = [fill("t1", "sell", "100", "1", maker=True), fill("t2", "sell", "100", "1", maker=True, ts=T0 + STEP)]
    doc = inputs([participant(A, [], fills)], books=books, prior_books=[None], epoch_index=1)
    got = scored(doc).by_address()[A]
    assert got.volume == 10000
    assert [(x.trade_id, x.reason) for x in got.exclusions] == [("t1", "no_reference_mid")]


# --- self-trades and linked washes read every reported fill ----------------------------------------------------


def test_a_self_trade_whose_other_side_the_exchange_does_not_confirm_is_still_a_self_trade() -> None:
    fills = [fill("T1", "buy", "100", "1", maker=True), fill("T1", "sell", "100", "1", maker=False, confirmed=False)]
    got = scored(inputs([participant(A, [], fills)])).by_address()[A]
    assert got.volume == 0
    assert [(x.trade_id, x.reason) for x in got.exclusions] == [("T1", "self_trade")]


def test_a_linked_counterpartys_unconfirmed_fill_still_makes_the_trade_a_wash() -> None:
    a = participant(A, [], [fill("T1", "buy", "100", "1", maker=True)], deposit=("d",))
    b = participant(B, [], [fill("T1", "sell", "100", "1", maker=False, confirmed=False)], deposit=("d",))
    c = participant(C, [], [fill("T2", "sell", "100", "1", maker=True)])
    got = scored(inputs([a, b, c])).by_address()
    assert (got[A].volume, got[B].volume, got[C].volume) == (0, 0, 10000)
    assert [(x.trade_id, x.reason) for x in got[A].exclusions] == [("T1", "wash_linked")]


def test_an_unconfirmed_fill_of_an_unlinked_participant_is_no_evidence_of_a_mutual_wash() -> None:
    a = participant(A, [], [fill("T1", "buy", "100", "1", maker=True)])
    b = participant(B, [], [fill("T1", "sell", "100", "1", maker=False, confirmed=False)])
    got = scored(inputs([a, b])).by_address()
    assert got[A].volume == 10000
    assert got[A].exclusions == ()


def test_links_are_transitive_for_washes() -> None:
    # A–B share a deposit address, B–C a withdrawal address: A and C are one group, their trade is a wash
    a = participant(A, [], [fill("T1", "buy", "100", "1", maker=True)], deposit=("d",))
    b = participant(B, [order("b", "buy", "99.8", "2")], deposit=("d",), withdrawal=("w",))
    c = participant(C, [], [fill("T1", "sell", "100", "1", maker=False)], withdrawal=("w",))
    s = scored(inputs([a, b, c]))
    got = s.by_address()
    assert s.groups == ((A, B, C),)
    assert [(x.trade_id, x.reason) for x in got[A].exclusions] == [("T1", "wash_linked")]
    assert (got[A].depth, got[A].volume) == (3 * (12774 // 3), 0)


# --- repeated fills and orders are malformed -------------------------------------------------------------------


def test_a_fill_listed_twice_is_malformed_rather_than_counted_twice() -> None:
    fills = [fill("T1", "buy", "100", "1", maker=True), fill("T9", "buy", "100", "1", maker=True)]
    fills.append(fill("T1", "buy", "100", "1", maker=True))
    doc = document([participant(A), participant(B, [], fills)])
    with pytest.raises(ScoringInputError) as caught:
        EpochInputs.from_json(doc)
    assert (caught.value.path, caught.value.problem) == (
        "inputs.participants[1].fills[2].trade_id",
        "repeats a trade id on the same side",
    )


def test_an_order_listed_twice_is_malformed() -> None:
    doc = document([participant(A, [*HONEST, order("b", "buy", "99.8", "2")])])
    with pytest.raises(ScoringInputError) as caught:
        EpochInputs.from_json(doc)
    assert (caught.value.path, caught.value.problem) == (
        "inputs.participants[0].orders[2].order_id",
        "repeats an order id",
    )


# --- review flags count the epoch's events ---------------------------------------------------------------------


def test_review_flags_count_only_orders_closed_or_created_and_fills_in_the_epoch() -> None:
    end = T0 + 3 * STEP
    orders = [
        order("old1", "buy", "99.8", "2", [(BEFORE, BEFORE + 10, "2")]),  # created and cancelled before the epoch
        order("old2", "buy", "99.8", "2", [(BEFORE + 20, BEFORE + 30, "2")]),
        order("old3", "buy", "99.8", "2", [(BEFORE + 40, T0 + 500, "2")]),  # created before, cancelled in it
        order("new1", "buy", "99.8", "1", [(T0 + 1000, T0 + 1200, "1")]),  # filled in full by t1
        order("new2", "buy", "99.8", "1", [(T0 + 1100, end, "1")]),  # cancelled at the epoch end: the next epoch's
        order("late", "buy", "99.8", "1", [(end + 10, end + 20, "1")]),
    ]
    fills = [
        {**fill("t1", "buy", "99.8", "1", maker=True, ts=T0 + 1200), "order_id": "new1"},
        {**fill("t0", "buy", "99.8", "1", maker=True, ts=BEFORE + 5), "order_id": "old1"},  # before the epoch
    ]
    got = scored(inputs([participant(A, orders, fills)])).by_address()[A]
    assert got.flags.cancelled == 1  # old3 only (old1 had a fill of half its amount, but closed before the epoch)
    assert got.flags.fills == 1
    assert got.flags.cancel_to_fill == 1
    assert got.flags.orders_per_second_peak == 2  # new1 and new2 in second (T0 + 1000) // 1000; old1–3 not counted
