"""The payout's state machine and the plan of its batches (pure): batches are contiguous runs of leaves neither
paid nor in flight, never larger than their capacity, never overlapping; a leaf too large for distribute's packed
word is a claim of its own."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payouts.domain.distribution import (
    DISTRIBUTE_AMOUNT_LIMIT,
    TRANSITIONS,
    BatchKind,
    IllegalPayoutTransition,
    PayoutEvent,
    PayoutState,
    PlannedBatch,
    batch_capacity,
    packed_leaves,
    payout_transition,
    plan_batches,
)


def test_the_happy_path_and_its_refusals() -> None:
    state = PayoutState.PENDING
    for event in (PayoutEvent.PUBLISH_SIGNED, PayoutEvent.PUBLISHED, PayoutEvent.PAID):
        state = payout_transition(state, event)
    assert state == PayoutState.PAID
    with pytest.raises(IllegalPayoutTransition, match="paid cannot take published"):
        payout_transition(PayoutState.PAID, PayoutEvent.PUBLISHED)
    assert payout_transition(PayoutState.PENDING, PayoutEvent.NOTHING_TO_PAY) == PayoutState.EMPTY
    assert payout_transition(PayoutState.FAILED, PayoutEvent.RETRY) == PayoutState.PENDING
    # Nothing leaves paid or empty, and distributing can only end paid.
    assert not [key for key in TRANSITIONS if key[0] in (PayoutState.PAID, PayoutState.EMPTY)]
    assert [e for (s, e) in TRANSITIONS if s == PayoutState.DISTRIBUTING] == [PayoutEvent.PAID]


def test_batches_are_cut_around_paid_and_in_flight_leaves() -> None:
    plan = plan_batches(amounts=[1] * 12, settled=[0, 5], in_flight=[(8, 2)], capacity=3)
    assert plan == [
        PlannedBatch(BatchKind.DISTRIBUTE, 1, 3),
        PlannedBatch(BatchKind.DISTRIBUTE, 4, 1),
        PlannedBatch(BatchKind.DISTRIBUTE, 6, 2),
        PlannedBatch(BatchKind.DISTRIBUTE, 10, 2),
    ]
    assert plan_batches(amounts=[1] * 12, settled=[0, 5], in_flight=[(8, 2)], capacity=3, limit=2) == plan[:2]
    assert plan_batches(amounts=[1] * 3, settled=[0, 1, 2], in_flight=[], capacity=3) == []


def test_a_leaf_too_large_for_distribute_is_a_claim_of_its_own() -> None:
    amounts = [1, DISTRIBUTE_AMOUNT_LIMIT, 2, 3]
    assert plan_batches(amounts=amounts, settled=[], in_flight=[], capacity=10) == [
        PlannedBatch(BatchKind.DISTRIBUTE, 0, 1),
        PlannedBatch(BatchKind.CLAIM, 1, 1),
        PlannedBatch(BatchKind.DISTRIBUTE, 2, 2),
    ]
    with pytest.raises(ValueError, match="does not fit"):
        packed_leaves(["0x" + "11" * 20], [DISTRIBUTE_AMOUNT_LIMIT])


def test_the_only_leaf_of_a_tree_is_a_claim() -> None:
    # Its tree's root is the leaf itself: the escrow's multiproof walk has no hash to compute.
    assert plan_batches(amounts=[5], settled=[], in_flight=[], capacity=10) == [PlannedBatch(BatchKind.CLAIM, 0, 1)]
    assert plan_batches(amounts=[5], settled=[0], in_flight=[], capacity=10) == []
    assert plan_batches(amounts=[5], settled=[], in_flight=[(0, 1)], capacity=10) == []


def test_leaves_are_packed_as_the_escrow_reads_them() -> None:
    account = "0x" + "ab" * 20
    assert packed_leaves([account], [5]) == [int(account, 16) << 96 | 5]


def test_the_capacity_guess() -> None:
    assert batch_capacity(gas_cap=12_000_000, base_gas=80_000, per_leaf_gas=31_000) == 384
    assert batch_capacity(gas_cap=50_000, base_gas=80_000, per_leaf_gas=31_000) == 1
    with pytest.raises(ValueError, match="positive"):
        batch_capacity(gas_cap=0, base_gas=0, per_leaf_gas=1)


def test_the_capacity_guess_at_its_edges() -> None:
    assert batch_capacity(gas_cap=1, base_gas=0, per_leaf_gas=1) == 1
    assert batch_capacity(gas_cap=10, base_gas=0, per_leaf_gas=1) == 10  # no base gas is allowed
    assert batch_capacity(gas_cap=10, base_gas=0, per_leaf_gas=3) == 3
    for bad in (
        {"gas_cap": 0, "base_gas": 0, "per_leaf_gas": 1},
        {"gas_cap": 10, "base_gas": -1, "per_leaf_gas": 1},
        {"gas_cap": 10, "base_gas": 0, "per_leaf_gas": 0},
    ):
        with pytest.raises(
            ValueError, match=r"^the gas cap and the per-leaf gas are positive, the base gas is not negative$"
        ):
            batch_capacity(**bad)


def test_a_zero_amount_packs_and_accounts_and_amounts_must_pair_up() -> None:
    account = "0x" + "ab" * 20
    assert packed_leaves([account], [0]) == [int(account, 16) << 96]
    assert packed_leaves([account], [DISTRIBUTE_AMOUNT_LIMIT - 1]) == [int(account, 16) << 96 | (2**96 - 1)]
    with pytest.raises(ValueError, match="shorter than argument 1"):
        packed_leaves([account, account], [1])


def test_settled_and_in_flight_indices_outside_the_tree_are_ignored_and_capacity_is_at_least_one() -> None:
    plan = plan_batches(amounts=[1, 1, 1], settled=[-1, 3, 7], in_flight=[(-5, 6), (3, 4)], capacity=5)
    assert plan == [PlannedBatch(BatchKind.DISTRIBUTE, 1, 2)]  # (-5, 6) covers leaf 0 only
    with pytest.raises(ValueError, match=r"^a batch holds at least one leaf$"):
        plan_batches(amounts=[1, 1], settled=[], in_flight=[], capacity=0)


def test_a_refused_payout_step_names_the_state_and_the_event() -> None:
    with pytest.raises(IllegalPayoutTransition) as refused:
        payout_transition(PayoutState.PAID, PayoutEvent.PUBLISHED)
    assert str(refused.value) == "an epoch payout in state paid cannot take published"
    assert (refused.value.state, refused.value.event) == (PayoutState.PAID, PayoutEvent.PUBLISHED)


@given(
    n=st.integers(min_value=0, max_value=200),
    settled=st.sets(st.integers(min_value=0, max_value=199)),
    flights=st.lists(st.tuples(st.integers(min_value=0, max_value=199), st.integers(min_value=1, max_value=20))),
    big=st.sets(st.integers(min_value=0, max_value=199), max_size=5),
    capacity=st.integers(min_value=1, max_value=50),
)
def test_a_plan_pays_exactly_the_leaves_nobody_pays_or_is_paying(
    n: int, settled: set[int], flights: list[tuple[int, int]], big: set[int], capacity: int
) -> None:
    amounts = [DISTRIBUTE_AMOUNT_LIMIT if i in big else i + 1 for i in range(n)]
    plan = plan_batches(amounts=amounts, settled=settled, in_flight=flights, capacity=capacity)
    flying = {i for first, size in flights for i in range(first, first + size)}
    covered = [i for batch in plan for i in range(batch.first_index, batch.first_index + batch.count)]
    assert len(covered) == len(set(covered))  # no leaf twice
    assert set(covered) == {i for i in range(n) if i not in settled and i not in flying}
    assert [b.first_index for b in plan] == sorted(b.first_index for b in plan)
    for batch in plan:
        assert 1 <= batch.count <= capacity
        if batch.kind == BatchKind.CLAIM:
            assert batch.count == 1
            assert n == 1 or amounts[batch.first_index] >= DISTRIBUTE_AMOUNT_LIMIT
        else:
            assert all(
                amounts[i] < DISTRIBUTE_AMOUNT_LIMIT for i in range(batch.first_index, batch.first_index + batch.count)
            )
