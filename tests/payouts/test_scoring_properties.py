"""Properties of the scoring engine on random small epochs: the vectorized depth path equals the exact reference,
and the invariants the reward model implies (input order is irrelevant, more eligible depth never lowers one's own
D, a one-sided quote scores its side // c, amounts sum to the budget whenever anyone scored)."""

from __future__ import annotations

import copy
import random
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payouts.domain.scoring import depth_vector
from payouts.domain.scoring.depth import sample_context
from payouts.domain.scoring.engine import score_epoch
from payouts.domain.scoring.inputs import EpochInputs
from tests.payouts.scoring_fixtures import STEP, T0, document, fill, order, participant

ADDRESSES = ["0x" + f"{i:02x}" * 20 for i in (0x11, 0x22, 0x33, 0x44)]
GRID = [f"{(9900 + 5 * i) // 100}.{(9900 + 5 * i) % 100:02d}" for i in range(41)]  # 99.00 … 101.00
SIZES = ["0.3", "0.5", "1", "2", "3.7", "40"]
AMOUNTS = ["0.4", "0.6", "1", "2.5", "5"]
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def epochs(draw: st.DrawFn, *, huge_levels: bool = False, max_participants: int = 4) -> dict[str, Any]:
    n_samples = draw(st.integers(1, 6))
    books: list[dict[str, Any] | None] = []
    for _ in range(n_samples):
        if draw(st.integers(0, 5)) == 0:
            books.append(None)
            continue
        split = draw(st.integers(8, 32))
        bid_idx = draw(st.lists(st.integers(0, split - 1), min_size=1, max_size=10, unique=True))
        ask_idx = draw(st.lists(st.integers(split + 1, 40), min_size=1, max_size=10, unique=True))
        size = (lambda: "1000000") if huge_levels else (lambda: draw(st.sampled_from(SIZES)))
        books.append({"bids": [[GRID[i], size()] for i in bid_idx], "asks": [[GRID[i], size()] for i in ask_idx]})
    people = []
    for address in ADDRESSES[: draw(st.integers(1, max_participants))]:
        orders = []
        for n in range(draw(st.integers(0, 5))):
            side = draw(st.sampled_from(["buy", "sell"]))
            amount = draw(st.sampled_from(AMOUNTS))
            cuts = sorted(draw(st.lists(st.integers(-180, n_samples * 60 + 30), min_size=1, max_size=4, unique=True)))
            open_end = draw(st.booleans())
            bounds: list[int | None] = [T0 + c * 1000 for c in cuts]
            if open_end or len(bounds) == 1:
                bounds.append(None)
            live = [
                (bounds[i], bounds[i + 1], draw(st.sampled_from(AMOUNTS)))
                for i in range(len(bounds) - 1)
                if bounds[i] is not None
            ]
            orders.append(
                order(
                    f"o{n}",
                    side,
                    draw(st.sampled_from(GRID)),
                    amount,
                    live,  # type: ignore[arg-type]
                    confirmed=draw(st.integers(0, 4)) > 0,
                )
            )
        fills = [
            fill(
                f"t{draw(st.integers(0, 6))}",
                draw(st.sampled_from(["buy", "sell"])),
                draw(st.sampled_from(GRID)),
                draw(st.sampled_from(AMOUNTS)),
                maker=draw(st.booleans()),
                ts=T0 + draw(st.integers(0, n_samples * STEP - 1)),
                confirmed=draw(st.integers(0, 4)) > 0,
            )
            for _ in range(draw(st.integers(0, 4)))
        ]
        fills = list({(f["trade_id"], f["side"]): f for f in fills}.values())  # a repeated (trade, side) is malformed
        deposit = tuple(draw(st.lists(st.sampled_from(["d1", "d2", "d3"]), max_size=1)))
        people.append(participant(address, orders, fills, deposit=deposit))
    # Sometimes a later epoch, with snapshots at the sample times before it (the previous epoch's tail).
    prior: list[dict[str, Any] | None] | None = None
    if draw(st.booleans()):
        prior = [draw(st.sampled_from([None, *books])) for _ in range(min(n_samples, 10))]
    return document(
        people,
        books=books,
        prior_books=prior,
        epoch_index=0 if prior is None else 1,
        min_rest_seconds=draw(st.sampled_from([0, 30, 60])),
        single_side_divisor=draw(st.integers(1, 4)),
        max_spread_bps=draw(st.sampled_from([5, 50, 100, 300])),
        volatility_weighting=draw(st.booleans()),
        min_order_quote=draw(st.sampled_from(["0", "50", "99.5"])),
        max_off_mid_trade_bps=draw(st.sampled_from([0, 50, 200])),
    )


@FAST
@given(epochs())
def test_the_vectorized_depth_path_equals_the_exact_reference(doc: dict[str, Any]) -> None:
    inputs = EpochInputs.from_json(doc)
    vector = score_epoch(inputs, depth_path="vector")
    reference = score_epoch(inputs, depth_path="reference")
    assert vector.depth_path == "vector"
    assert vector.as_json() == reference.as_json()


@FAST
@given(epochs(), st.randoms(use_true_random=False))
def test_the_order_of_participants_orders_and_fills_does_not_matter(doc: dict[str, Any], rnd: random.Random) -> None:
    shuffled = copy.deepcopy(doc)
    rnd.shuffle(shuffled["participants"])
    rnd.shuffle(shuffled["snapshots"])
    for p in shuffled["participants"]:
        rnd.shuffle(p["orders"])
        rnd.shuffle(p["fills"])
    assert score_epoch(EpochInputs.from_json(shuffled)).as_json() == score_epoch(EpochInputs.from_json(doc)).as_json()


@FAST
@given(epochs(huge_levels=True), st.sampled_from(["buy", "sell"]), st.sampled_from(GRID), st.sampled_from(AMOUNTS))
def test_adding_eligible_depth_never_lowers_ones_own_depth(
    doc: dict[str, Any], side: str, price: str, size: str
) -> None:
    before = score_epoch(EpochInputs.from_json(doc)).by_address()
    grown = copy.deepcopy(doc)
    grown["participants"][0]["orders"].append(order("extra", side, price, size))
    after = score_epoch(EpochInputs.from_json(grown)).by_address()
    for address, score in before.items():
        if score.group is None:  # a group's depth is credited to its lowest address
            assert after[address].depth >= score.depth


@FAST
@given(epochs(max_participants=1), st.integers(2, 5))
def test_a_one_sided_quote_scores_its_side_divided_by_c(doc: dict[str, Any], divisor: int) -> None:
    one_sample = copy.deepcopy(doc)
    p = one_sample["params"]
    p["epoch_end_ms"] = p["epoch_start_ms"] + STEP
    one_sample["snapshots"] = [s for s in one_sample["snapshots"] if s["t_ms"] == T0]
    one_sample["participants"][0]["orders"] = [o for o in one_sample["participants"][0]["orders"] if o["side"] == "buy"]
    p["single_side_divisor"] = 1
    side = score_epoch(EpochInputs.from_json(one_sample)).participants[0].depth
    p["single_side_divisor"] = divisor
    assert score_epoch(EpochInputs.from_json(one_sample)).participants[0].depth == side // divisor


@FAST
@given(epochs(), st.integers(0, 10**30))
def test_amounts_sum_to_the_budget_whenever_anyone_scored(doc: dict[str, Any], budget: int) -> None:
    doc["params"]["epoch_budget"] = str(budget)
    scores = score_epoch(EpochInputs.from_json(doc))
    total = sum(p.amount for p in scores.participants)
    anyone = any(p.depth or p.volume for p in scores.participants)
    assert total == (budget if anyone else 0)


@FAST
@given(epochs())
def test_binary_search_lookups_and_small_sample_blocks_equal_the_reference(doc: dict[str, Any]) -> None:
    inputs = EpochInputs.from_json(doc)
    reference = score_epoch(inputs, depth_path="reference")
    with mock.patch.object(depth_vector, "DENSE_LOOKUP_MAX", 0), mock.patch.object(depth_vector, "BLOCK_SAMPLES", 2):
        searched = score_epoch(inputs, depth_path="vector")
    assert searched.as_json() == reference.as_json()


def test_an_epoch_past_int64_bounds_falls_back_to_the_exact_reference() -> None:
    fine = "99.800000000000000000001"  # 21 decimals: 2 × price × 10^6 at that scale is past int64
    book = {"bids": [["99.95", "2"], [fine, "10"]], "asks": [["100.05", "5"]]}
    doc = document([participant(ADDRESSES[0], [order("b", "buy", fine, "2")])], books=[book])
    inputs = EpochInputs.from_json(doc)
    assert depth_vector.depth_vector(inputs, sample_context(inputs)) is None
    scores = score_epoch(inputs)
    assert scores.depth_path == "reference"
    # dist floor(0.199…999 × 10^6 / 100) = 1999, closeness floor(8001² / 100) = 640160, notional_cents 19960
    assert scores.participants[0].depth == 640160 * 19960 // 10**6 // 3
    with pytest.raises(ValueError, match="int64"):
        score_epoch(inputs, depth_path="vector")
