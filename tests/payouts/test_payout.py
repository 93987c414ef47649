"""Epoch payouts per docs/scoring.md: exact shares, floors, remainder by largest fraction, sum = budget."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payouts.domain.merkle import PayoutTree
from payouts.domain.payout import PayoutError, amounts, manifest, manifest_json, shares

ROOT = Path(__file__).resolve().parents[2]
A, B, C = "0x" + "aa" * 20, "0x" + "bb" * 20, "0x" + "cc" * 20


def test_depth_and_volume_are_weighted() -> None:
    s = shares(depth={A: 3, B: 1}, volume={B: 10}, depth_weight=Fraction(4, 5))
    assert s == {A: Fraction(3, 5), B: Fraction(1, 5) + Fraction(1, 5)}


def test_an_empty_side_moves_its_weight_to_the_other() -> None:
    assert shares(depth={A: 1, B: 3}, volume={}, depth_weight=Fraction(4, 5)) == {A: Fraction(1, 4), B: Fraction(3, 4)}
    assert shares(depth={}, volume={A: 2, B: 2}, depth_weight=Fraction(4, 5)) == {A: Fraction(1, 2), B: Fraction(1, 2)}
    assert shares(depth={A: 0}, volume={B: 0}, depth_weight=Fraction(1, 2)) == {}


def test_remainder_goes_to_largest_fractions_then_lowest_address() -> None:
    # 100 split in thirds: 33.33.. each, one unit left → the lowest address among equal fractions.
    thirds = {A: Fraction(1, 3), B: Fraction(1, 3), C: Fraction(1, 3)}
    assert amounts(budget=100, shares_by_account=thirds) == {A: 34, B: 33, C: 33}
    # Largest fractional part wins before address order: 2.2 and 7.8 → C gets the unit.
    assert amounts(budget=10, shares_by_account={A: Fraction(11, 50), C: Fraction(39, 50)}) == {A: 2, C: 8}
    # Equal fractional parts (2.5 and 7.5) → the lower address gets it.
    assert amounts(budget=10, shares_by_account={A: Fraction(1, 4), C: Fraction(3, 4)}) == {A: 3, C: 7}


@pytest.mark.parametrize("order", ["descending", "shuffled"])
def test_the_tie_break_is_by_address_whatever_order_the_shares_come_in(order: str) -> None:
    accounts = [f"0x{i:040x}" for i in range(1, 8)]
    listed = accounts[::-1] if order == "descending" else random.Random(3).sample(accounts, len(accounts))
    assert listed != accounts
    # 7 equal shares of 10: 1 each and 3 units left, all fractional parts equal → the three lowest addresses.
    paid = amounts(budget=10, shares_by_account={a: Fraction(1, 7) for a in listed})
    assert paid == {a: 2 if a in accounts[:3] else 1 for a in accounts}


SAME_ON_EVERY_SEED = """
import json, sys
from fractions import Fraction
from payouts.domain.payout import amounts, shares
accounts = [f"0x{i:040x}" for i in range(1, 13)]
s = shares(depth={a: 1 for a in accounts}, volume={}, depth_weight=Fraction(1, 2))
print(json.dumps({"set_order": list(s), "paid": amounts(budget=100, shares_by_account=s)}))
"""


def test_the_remainder_lands_on_the_same_accounts_under_any_hash_seed() -> None:
    # shares() builds its result from a set of addresses, whose order changes with PYTHONHASHSEED; the payout
    # (a Merkle root on chain) must not.
    runs = []
    for seed in ("0", "1", "2", "3"):
        out = subprocess.run(
            [sys.executable, "-c", SAME_ON_EVERY_SEED],
            env={**os.environ, "PYTHONHASHSEED": seed},
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        runs.append(json.loads(out.stdout))
    assert len({tuple(run["set_order"]) for run in runs}) > 1, "the seeds did not change the set order"
    accounts = [f"0x{i:040x}" for i in range(1, 13)]
    # 100 / 12 = 8 each and 4 left over, to the four lowest addresses on every seed.
    expected = {a: 9 if a in accounts[:4] else 8 for a in accounts}
    assert [run["paid"] for run in runs] == [expected] * 4


def test_zero_amounts_are_left_out_and_nobody_paid_when_nobody_scored() -> None:
    assert amounts(budget=1, shares_by_account={A: Fraction(1, 3), B: Fraction(2, 3)}) == {B: 1}
    assert amounts(budget=1_000, shares_by_account={}) == {}
    assert manifest({}) is None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: shares(depth={"0xABC": 1}, volume={}, depth_weight=Fraction(1)), "not a lower-case 0x address"),
        (lambda: shares(depth={A: -1}, volume={}, depth_weight=Fraction(1)), "non-negative integer"),
        (lambda: shares(depth={A: 1}, volume={}, depth_weight=Fraction(3, 2)), "within"),
        (lambda: amounts(budget=-1, shares_by_account={}), "non-negative integer"),
        (lambda: amounts(budget=10, shares_by_account={A: Fraction(1, 2)}), "sum to 1"),
    ],
)
def test_bad_inputs_are_refused(call, message: str) -> None:
    with pytest.raises(PayoutError, match=message):
        call()


def test_manifest_is_sorted_by_account_with_index_as_position() -> None:
    m = manifest({C: 5, A: 7, B: 1})
    assert m is not None
    assert [(x.index, x.account, x.amount) for x in m.leaves] == [(0, A, 7), (1, B, 1), (2, C, 5)]
    assert m.total == 13
    assert m.merkle_root == "0x" + PayoutTree(list(m.leaves)).root.hex()
    doc = m.as_json(
        campaign={"chain_id": 31337},
        epoch={"index": 3, "start_ms": 0, "end_ms": 60_000},
        results_digest="ab" * 32,
        budget=13,
        software={"version": "0.1.0", "commit": "unknown"},
    )
    assert doc["leaves"] == [
        {"index": 0, "account": A, "amount": "7"},
        {"index": 1, "account": B, "amount": "1"},
        {"index": 2, "account": C, "amount": "5"},
    ]


addresses = st.integers(1, 2**160 - 1).map(lambda n: "0x" + n.to_bytes(20, "big").hex())
scores = st.dictionaries(addresses, st.integers(0, 10**15), max_size=12)


@given(scores, scores, st.fractions(0, 1), st.integers(0, 10**24))
def test_amounts_always_sum_to_the_budget_and_stay_within_one_unit(depth, volume, weight, budget) -> None:
    s = shares(depth=depth, volume=volume, depth_weight=weight)
    paid = amounts(budget=budget, shares_by_account=s)
    if not s:
        assert paid == {}
        return
    assert sum(paid.values()) == budget
    for account, share in s.items():
        assert abs(paid.get(account, 0) - budget * share) < 1
    # Deterministic whatever the input order.
    assert amounts(budget=budget, shares_by_account=dict(reversed(list(s.items())))) == paid


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: shares(depth={}, volume={"0xABC": 1}, depth_weight=Fraction(1)),
            "volume: '0xABC' is not a lower-case 0x address",
        ),
        (
            lambda: shares(depth={A: -1}, volume={}, depth_weight=Fraction(1)),
            f"depth: the score of {A} must be a non-negative integer",
        ),
        (
            lambda: shares(depth={A: True}, volume={}, depth_weight=Fraction(1)),
            f"depth: the score of {A} must be a non-negative integer",
        ),
        (
            lambda: shares(depth={A: 1.0}, volume={}, depth_weight=Fraction(1)),  # type: ignore[dict-item]
            f"depth: the score of {A} must be a non-negative integer",
        ),
        (lambda: shares(depth={A: 1}, volume={}, depth_weight=Fraction(-1, 2)), "depth_weight must be within [0, 1]"),
        (lambda: shares(depth={A: 1}, volume={}, depth_weight=Fraction(3, 2)), "depth_weight must be within [0, 1]"),
        (lambda: amounts(budget=-1, shares_by_account={}), "the epoch budget is a non-negative integer of base units"),
        (
            lambda: amounts(budget=True, shares_by_account={}),
            "the epoch budget is a non-negative integer of base units",
        ),
        (lambda: amounts(budget=10, shares_by_account={A: Fraction(1, 2)}), "shares must sum to 1, not 1/2"),
    ],
)
def test_each_refusal_says_exactly_what_is_wrong(call, message: str) -> None:
    with pytest.raises(PayoutError) as refused:
        call()
    assert str(refused.value) == message


def test_a_depth_weight_of_0_or_1_is_allowed_and_puts_everything_on_one_side() -> None:
    assert shares(depth={A: 1}, volume={B: 1}, depth_weight=Fraction(1)) == {A: Fraction(1)}
    assert shares(depth={A: 1}, volume={B: 1}, depth_weight=Fraction(0)) == {B: Fraction(1)}
    assert amounts(budget=0, shares_by_account={A: Fraction(1)}) == {}  # a zero budget pays nobody
    # One side with a single unit in all is still someone who scored.
    assert shares(depth={A: 1}, volume={}, depth_weight=Fraction(1, 2)) == {A: Fraction(1)}
    assert shares(depth={}, volume={B: 1}, depth_weight=Fraction(1, 2)) == {B: Fraction(1)}


def test_the_manifest_document_in_full_and_when_nobody_is_paid() -> None:
    identity = {
        "campaign": {"chain_id": 31337},
        "epoch": {"index": 3, "start_ms": 0, "end_ms": 60_000},
        "results_digest": "ab" * 32,
        "budget": 13,
        "software": {"version": "0.1.0", "commit": "unknown"},
    }
    m = manifest({B: 6, A: 7})
    assert m is not None
    assert m.as_json(**identity) == {  # type: ignore[arg-type]
        "schema": "mrmarket.payout-manifest/v1",
        "campaign": {"chain_id": 31337},
        "epoch": {"index": 3, "start_ms": 0, "end_ms": 60_000},
        "results_digest": "ab" * 32,
        "epoch_budget": "13",
        "leaves": [{"index": 0, "account": A, "amount": "7"}, {"index": 1, "account": B, "amount": "6"}],
        "total": "13",
        "merkle_root": m.merkle_root,
        "software": {"version": "0.1.0", "commit": "unknown"},
    }
    assert manifest_json(None, **identity) == {  # type: ignore[arg-type]
        "schema": "mrmarket.payout-manifest/v1",
        "campaign": {"chain_id": 31337},
        "epoch": {"index": 3, "start_ms": 0, "end_ms": 60_000},
        "results_digest": "ab" * 32,
        "epoch_budget": "13",
        "leaves": [],
        "total": "0",
        "merkle_root": None,
        "software": {"version": "0.1.0", "commit": "unknown"},
    }
