"""The scoring engine against the reward model (docs/scoring.md), one acceptance case per test, every number
worked out by hand here. Small epochs (3–5 samples of 60 s), mid 100 unless a test says otherwise. No database."""

from __future__ import annotations

from fractions import Fraction

import pytest
import rfc8785

from payouts.domain.scoring.depth import sample_context, weighted
from payouts.domain.scoring.engine import score_epoch
from payouts.domain.scoring.inputs import EpochInputs, ScoringInputError
from tests.payouts.scoring_fixtures import (
    BEFORE,
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

# Per sample at mid 100, v = 100 bps (max_ppm 10000):
# bid 99.80 × 2: dist 2000, closeness floor(8000² × 10⁶ / 10⁸) = 640000, notional_cents 19960 → 12774 points.
# ask 100.30 × 1: dist 3000, closeness 490000, notional_cents 10030 → 4914 points.
BID_POINTS = 640000 * 19960 // 10**6
ASK_POINTS = 490000 * 10030 // 10**6
HONEST = [order("b1", "buy", "99.8", "2"), order("a1", "sell", "100.3", "1")]


def both_paths(doc_inputs: EpochInputs) -> dict[str, object]:
    ref = score_epoch(doc_inputs, depth_path="reference")
    auto = score_epoch(doc_inputs)
    assert ref.as_json() == auto.as_json()
    return {p.address: p for p in auto.participants}


def test_the_honest_two_sided_maker_scores_its_thinner_side_every_sample() -> None:
    assert (BID_POINTS, ASK_POINTS) == (12774, 4914)
    s = score_epoch(inputs([participant(A, HONEST)])).by_address()[A]
    assert s.depth == 3 * max(min(12774, 4914), 12774 // 3) == 3 * 4914
    assert s.volume == 0
    assert s.share == 1
    assert s.amount == 1000
    assert s.flags.not_on_exchange == ()
    assert s.flags.not_visible == 0
    assert s.flags.over_claimed == 0


def test_a_one_sided_quoter_scores_its_side_divided_by_c() -> None:
    scores = score_epoch(inputs([participant(A, HONEST), participant(B, [order("b", "buy", "99.8", "2")])]))
    got = scores.by_address()
    assert got[B].depth == 3 * (12774 // 3) == 3 * 4258
    assert got[A].depth == 3 * 4914
    assert got[A].share == Fraction(4914, 4914 + 4258)  # ΣV = 0: all weight on depth
    assert got[B].share == Fraction(4258, 9172)
    # 1000 × 4914/9172 = 535.76…, 1000 × 4258/9172 = 464.23…: floors 535 + 464, the unit to A's .76
    assert (got[A].amount, got[B].amount) == (536, 464)


def test_a_spoofer_whose_orders_never_rest_min_rest_seconds_scores_nothing() -> None:
    flicker = [
        order(f"s{k}{side}", side, price, size, [(T0 + k * STEP - 20_000, T0 + k * STEP + 5_000, size)])
        for k in range(3)
        for side, price, size in (("buy", "99.8", "2"), ("sell", "100.3", "1"))
    ]
    s = score_epoch(inputs([participant(A, HONEST), participant(B, flicker)])).by_address()
    assert s[B].depth == 0
    assert s[B].amount == 0
    assert s[A].amount == 1000


def test_rest_is_measured_from_the_start_of_the_continuous_live_run() -> None:
    # placed 30 s before the second sample exactly (counts there), 90 s before the third; partially filled at
    # T0 + 100 s, so a second interval with the new remaining continues the same run.
    placed = T0 + STEP - 30_000
    bid = order("b", "buy", "99.8", "2", [(placed, T0 + 100_000, "2"), (T0 + 100_000, None, "1")])
    s = score_epoch(inputs([participant(A, [bid])])).by_address()[A]
    # second sample: 12774 // 3 = 4258; third: bid 99.80 × 1 → floor(640000 × 9980 / 10⁶) = 6387, // 3 = 2129
    assert s.depth == 4258 + 6387 // 3 == 4258 + 2129


def test_a_claimer_whose_orders_are_not_in_the_public_book_is_not_visible_and_scores_nothing() -> None:
    ghost = [order("g1", "buy", "99.85", "2"), order("g2", "sell", "100.2", "1")]
    s = score_epoch(inputs([participant(A, HONEST), participant(B, ghost)])).by_address()
    assert s[B].depth == 0
    assert s[B].flags.not_visible == 2 * 3  # two orders × three samples
    assert s[A].depth == 3 * 4914


def test_a_wash_pair_linked_by_a_withdrawal_address_scores_no_volume() -> None:
    wash_maker = participant(A, HONEST, [fill("t1", "buy", "99.8", "1", maker=True)], withdrawal=("0xw1",))
    wash_taker = participant(B, [], [fill("t1", "sell", "99.8", "1", maker=False)], withdrawal=("0xw1",))
    honest = participant(C, [], [fill("t2", "sell", "100", "1", maker=True)])
    s = score_epoch(inputs([wash_maker, wash_taker, honest]))
    got = s.by_address()
    assert got[A].volume == 0
    assert [(x.trade_id, x.reason) for x in got[A].exclusions] == [("t1", "wash_linked")]
    assert got[C].volume == 10000
    assert s.groups == ((A, B),)
    # λ = 4/5 of the budget to A's depth (only depth), 1/5 to C's volume (only volume)
    assert (got[A].share, got[C].share) == (Fraction(4, 5), Fraction(1, 5))
    assert (got[A].amount, got[B].amount, got[C].amount) == (800, 0, 200)


def test_a_sybil_pair_sharing_a_deposit_address_is_scored_as_one_group_under_the_lowest_address() -> None:
    one_sided = [order("b", "buy", "99.8", "2")]
    s = score_epoch(
        inputs(
            [
                participant(B, one_sided, deposit=("dep-1",)),
                participant(A, HONEST, deposit=("dep-1",)),
                participant(C, one_sided),
            ]
        )
    )
    got = s.by_address()
    assert got[A].depth == 3 * 4914 + 3 * 4258  # the two Ds summed (not the two books merged)
    assert got[B].depth == 0
    assert got[B].amount == 0
    assert got[A].group == A
    assert got[B].group == A
    assert got[C].group is None
    assert s.groups == ((A, B),)
    assert got[A].share == Fraction(4914 + 4258, 4914 + 2 * 4258)


def test_fills_farther_than_max_off_mid_trade_bps_from_the_mid_are_not_volume() -> None:
    fills = [
        fill("t1", "sell", "102", "1", maker=True),  # 200 bps: not farther, counted
        fill("t2", "sell", "102.01", "1", maker=True),  # 201 bps: off market
        fill("t3", "buy", "97.99", "1", maker=True),  # 201 bps below
        fill("t4", "buy", "99", "1", maker=True, ts=T0 + 2 * STEP + 59_999),  # vs the third sample's mid
    ]
    got = score_epoch(inputs([participant(A, [], fills)])).by_address()[A]
    assert got.volume == 10200 + 9900
    assert [(x.trade_id, x.reason) for x in got.exclusions] == [("t2", "off_market"), ("t3", "off_market")]


def test_a_fill_uses_the_mid_of_the_last_snapshot_at_or_before_it() -> None:
    # the second sample is a gap: a fill after it is checked against the first sample's mid (100)
    books = [mid_book("99.95", "100.05"), None, mid_book("104.95", "105.05")]
    fills = [fill("t1", "sell", "101", "1", maker=True, ts=T0 + STEP + 1)]
    fills.append(fill("t2", "sell", "101", "1", maker=True, ts=T0 + 2 * STEP))  # vs 105: 380 bps away
    got = score_epoch(inputs([participant(A, [], fills)], books=books)).by_address()[A]
    assert got.volume == 10100
    assert [(x.trade_id, x.reason) for x in got.exclusions] == [("t2", "off_market")]


def test_sample_gaps_score_nothing_for_anyone_and_are_listed() -> None:
    doc = document([participant(A, HONEST)], books=[BOOK, None, BOOK, {"bids": [["99", "1"]], "asks": []}])
    del doc["snapshots"][2]  # no snapshot at all at the third sample time
    s = score_epoch(EpochInputs.from_json(doc))
    assert s.gaps == (T0 + STEP, T0 + 2 * STEP, T0 + 3 * STEP)
    assert s.by_address()[A].depth == 4914


def test_a_fill_the_exchange_does_not_show_is_not_volume() -> None:
    fills = [
        fill("t1", "buy", "99.8", "0.5", maker=True, confirmed=False),
        fill("t2", "buy", "99.8", "0.5", maker=True),
    ]
    mismatch = fill("t3", "buy", "99.8", "0.5", maker=True)
    mismatch["exchange"]["amount"] = "0.4"
    fills.append(mismatch)
    got = score_epoch(inputs([participant(A, [], fills)])).by_address()[A]
    assert got.volume == 4990  # floor(99.8 × 0.5 × 100), t2 only
    assert [(x.trade_id, x.reason) for x in got.exclusions] == [("t1", "not_on_exchange"), ("t3", "not_on_exchange")]


def test_a_shadow_claimer_at_the_honest_makers_prices_without_exchange_confirmation_scores_nothing() -> None:
    shadow = [
        order("x1", "buy", "99.8", "2", confirmed=False),
        order(
            "x2",
            "sell",
            "100.3",
            "1",
            exchange={"side": "sell", "price": "100.3", "amount": "1", "created_ms": BEFORE + 1, "closed_ms": None},
        ),
    ]
    alone = score_epoch(inputs([participant(A, HONEST)])).by_address()[A]
    with_shadow = score_epoch(inputs([participant(A, HONEST), participant(B, shadow)])).by_address()
    assert with_shadow[B].depth == 0
    assert with_shadow[B].amount == 0
    assert with_shadow[B].flags.not_on_exchange == ("x1", "x2")
    assert with_shadow[B].flags.over_claimed == 0
    assert with_shadow[A].flags.over_claimed == 0
    assert with_shadow[A].depth == alone.depth == 3 * 4914
    assert with_shadow[A].amount == 1000


def test_confirmed_claims_that_exceed_a_level_are_shared_pro_rata() -> None:
    book = {"bids": [["99.95", "2"], ["99.8", "2"]], "asks": [["100.05", "5"]]}
    a = participant(A, [order("a", "buy", "99.8", "2")])
    b = participant(B, [order("b", "buy", "99.8", "2")])
    got = score_epoch(inputs([a, b], books=[book] * 3)).by_address()
    # C = 4 > S = 2: each counts 2 × 2 / 4 = 1 → notional_cents 9980, floor(640000 × 9980 / 10⁶) = 6387, // 3
    assert got[A].depth == got[B].depth == 3 * (6387 // 3) == 3 * 2129
    assert got[A].flags.over_claimed == got[B].flags.over_claimed == 3
    assert got[A].share == got[B].share == Fraction(1, 2)
    assert (got[A].amount, got[B].amount) == (500, 500)


def test_the_worked_example_of_the_reward_model() -> None:
    book = {"bids": [["99.95", "2"], ["99.8", "10"]], "asks": [["100.05", "5"], ["100.3", "10"], ["101.2", "9"]]}
    a = participant(A, [*HONEST, order("far", "sell", "101.2", "1")], [fill("t1", "buy", "99.8", "0.5", maker=True)])
    b = participant(B, [order("b", "buy", "99.95", "3")])
    c = participant(C, [], [fill("t2", "sell", "100", "1.5", maker=True)])
    got = score_epoch(inputs([a, b, c], books=[book])).by_address()
    assert (got[A].depth, got[B].depth, got[C].depth) == (4914, 6013, 0)
    assert (got[A].volume, got[B].volume, got[C].volume) == (4990, 0, 15000)
    assert got[A].share == Fraction(6392131, 15602195)
    assert got[B].share == Fraction(3436, 7805)
    assert got[C].share == Fraction(300, 1999)
    assert (got[A].amount, got[B].amount, got[C].amount) == (410, 440, 150)
    assert got[B].flags.over_claimed == 1


def test_the_volatility_context_of_the_worked_example() -> None:
    books = [
        mid_book(b, a)
        for b, a in [
            ("99.95", "100.05"),
            ("100.05", "100.15"),
            ("100.35", "100.45"),
            ("100.35", "100.45"),
            ("99.95", "100.05"),
        ]
    ]
    ctx = sample_context(inputs([], books=books, volatility_weighting=True))
    assert ctx.moves == (0, 1000, 2997, 0, 3984)
    assert ctx.window_moves == (0, 1000, 3997, 3997, 7981)
    assert ctx.median_move == 3997
    assert [weighted(4914, m, 3997) for m in ctx.window_moves] == [2457, 2457, 4914, 4914, 9812]


def test_the_volatility_weight_cases() -> None:
    assert weighted(11, 5, 0) == 11  # M = 0: unweighted
    assert weighted(11, 1, 3) == 5  # 2m < M: halved (floor)
    assert weighted(11, 7, 3) == 22  # m > 2M: doubled
    assert weighted(11, 4, 3) == 14  # otherwise floor(Q × m / M)
    assert weighted(11, 6, 3) == 22  # m = 2M is not "above": floor(11 × 6 / 3)


def test_the_lower_median_for_an_even_count_and_a_gap_breaks_the_moves() -> None:
    books = [mid_book("99.95", "100.05"), mid_book("100.05", "100.15"), None, mid_book("100.35", "100.45")]
    ctx = sample_context(inputs([], books=books, volatility_weighting=True))
    assert ctx.moves == (0, 1000, 0, 0)  # no move into or out of a gap
    assert ctx.window_moves == (0, 1000, 1000, 1000)
    assert ctx.median_move == 1000  # sorted 0, 1000, 1000, 1000: position (4 − 1) // 2 = 1


def test_volatility_weighting_end_to_end() -> None:
    books = [
        mid_book(b, a)
        for b, a in [
            ("99.95", "100.05"),
            ("100.05", "100.15"),
            ("100.35", "100.45"),
            ("100.35", "100.45"),
            ("99.95", "100.05"),
        ]
    ]
    doc = inputs([participant(A, [order("b", "buy", "99.8", "2")])], books=books, volatility_weighting=True)
    # one-sided bid 99.80 × 2 (notional_cents 19960), Q = points // 3, at mids 100, 100.10, 100.40, 100.40, 100:
    # dist 2000 → closeness 640000; dist floor(0.3 × 10⁶ / 100.1) = 2997 → floor(7003² / 100) = 490420;
    # dist floor(0.6 × 10⁶ / 100.4) = 5976 → floor(4024² / 100) = 161925
    q = [640000 * 19960 // 10**6 // 3, 490420 * 19960 // 10**6 // 3, 161925 * 19960 // 10**6 // 3]
    assert q == [4258, 3262, 1077]
    expected = q[0] // 2 + q[1] // 2 + q[2] + q[2] + q[0] * 7981 // 3997
    assert both_paths(doc)[A].depth == expected  # type: ignore[attr-defined]


def test_self_trades_and_volume_washed_between_unlinked_participants() -> None:
    a_fills = [
        fill("s1", "buy", "100", "1", maker=True),
        fill("s1", "sell", "100", "1", maker=False),  # the same trade on both sides of A: a self-trade
        # With D, a pure taker (MV_D = 0): a wash by D's side. A's own side is 10000 of 25000 maker cents, not over
        # half (s1's maker buy counts: MV is taken before any exclusion).
        fill("t1", "buy", "100", "1", maker=True),
        fill("t2", "buy", "100", "0.5", maker=True),
    ]
    c_fills = [fill("u1", "buy", "100", "1", maker=True), fill("u2", "buy", "100", "3", maker=True)]
    e_fills = [fill("u1", "sell", "100", "1", maker=False), fill("e1", "buy", "100", "2.5", maker=True)]
    doc = inputs(
        [
            participant(A, [], a_fills),
            participant(D, [], [fill("t1", "sell", "100", "1", maker=False)]),
            participant(C, [], c_fills),  # u1 with E: 10000 of C's 40000, and of E's 25000 — not over half
            participant(E, [], e_fills),
        ]
    )
    got = score_epoch(doc).by_address()
    assert got[A].volume == 5000
    assert [(x.trade_id, x.reason) for x in got[A].exclusions] == [("s1", "self_trade"), ("t1", "wash_mutual")]
    assert got[C].volume == 40000
    assert got[C].exclusions == ()
    assert got[E].volume == 25000


def test_a_pure_taker_counterparty_makes_the_trades_wash() -> None:
    # "more than half of either's maker volume": the taker's maker volume is 0, so any trade between them is wash
    got = score_epoch(
        inputs(
            [
                participant(
                    A, [], [fill("t1", "buy", "100", "1", maker=True), fill("t2", "buy", "100", "9", maker=True)]
                ),
                participant(B, [], [fill("t1", "sell", "100", "1", maker=False)]),
            ]
        )
    ).by_address()
    assert got[A].volume == 90000
    assert [(x.trade_id, x.reason) for x in got[A].exclusions] == [("t1", "wash_mutual")]


def test_nobody_scored_pays_nobody() -> None:
    s = score_epoch(inputs([participant(A, [order("tiny", "buy", "99.8", "0.5")])]))  # notional 49.9 < 50
    got = s.by_address()[A]
    assert (got.depth, got.volume, got.share, got.amount) == (0, 0, 0, 0)


def test_review_flags_cancel_to_fill_and_orders_per_second() -> None:
    orders = [
        order("o1", "buy", "99.8", "2", [(T0, T0 + 500, "2")]),
        order("o2", "buy", "99.8", "2", [(T0 + 100, T0 + 900, "2")]),
        order("o3", "buy", "99.8", "1", [(T0 + 1200, T0 + 1300, "1")]),
    ]
    fills = [{**fill("t1", "buy", "99.8", "1", maker=True), "order_id": "o3"}]
    got = score_epoch(inputs([participant(A, orders, fills)])).by_address()[A]
    assert got.flags.cancelled == 2
    assert got.flags.cancel_to_fill == 2
    assert got.flags.orders_per_second_peak == 2


def test_the_inputs_document_round_trips() -> None:
    doc = inputs([participant(A, HONEST, [fill("t1", "buy", "99.80", "0.50", maker=True)], deposit=("d",))])
    again = EpochInputs.from_json(doc.as_json())
    assert again == doc
    assert again.as_json()["participants"][0]["fills"][0]["price"] == "99.8"
    assert again.as_json()["params"]["epoch_budget"] == "1000"
    # both documents are canonical-JSON-able (no float, no integer past 2^53)
    rfc8785.dumps(doc.as_json())
    rfc8785.dumps(score_epoch(doc).as_json())


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda d: d["params"].pop("max_spread_bps"), "inputs.params.max_spread_bps"),
        (lambda d: d["params"].update(depth_weight="3/2"), "inputs.params.depth_weight"),
        (lambda d: d["params"].update(min_order_quote=50.0), "inputs.params.min_order_quote"),
        (lambda d: d["snapshots"][1].update(t_ms=T0 + 1), "inputs.snapshots[1].t_ms"),
        (lambda d: d["snapshots"][0]["book"]["bids"][1].__setitem__(1, "1e3"), "inputs.snapshots[0].book.bids[1][1]"),
        (lambda d: d["participants"][0].update(address=A.upper()), "inputs.participants[0].address"),
        (
            lambda d: d["participants"][0]["orders"][1]["live"][0].update(remaining=1),
            "inputs.participants[0].orders[1].live[0].remaining",
        ),
        (lambda d: d["participants"][0]["orders"][0].update(side="bid"), "inputs.participants[0].orders[0].side"),
        (
            lambda d: d["participants"][0]["fills"][0]["exchange"].update(maker="yes"),
            "inputs.participants[0].fills[0].exchange.maker",
        ),
        (lambda d: d["participants"][0]["links"].update(extra=[]), "inputs.participants[0].links.extra"),
    ],
)
def test_a_malformed_inputs_document_names_the_bad_path(mutate: object, path: str) -> None:
    doc = document([participant(A, HONEST, [fill("t1", "buy", "99.8", "1", maker=True)])])
    mutate(doc)  # type: ignore[operator]
    with pytest.raises(ScoringInputError) as caught:
        EpochInputs.from_json(doc)
    assert caught.value.path == path
    assert caught.value.code == "scoring_input_invalid"
