"""Epoch arithmetic (as Campaign.sol computes it) and the epoch close state machine. Pure."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payouts.domain.epochs import (
    TRANSITIONS,
    CampaignTerms,
    CloseEvent,
    CloseState,
    IllegalCloseTransition,
    close_transition,
)

terms_st = st.builds(
    lambda start, length, epoch, budget, fee: CampaignTerms(
        start=start, end=start + length, epoch_seconds=epoch, budget=budget, fee_bps=fee
    ),
    st.integers(1_600_000_000, 1_900_000_000),
    st.integers(1, 400_000),
    st.integers(1, 90_000),
    st.integers(0, 10**30),
    st.integers(0, 1_000),
)


def test_the_contracts_example_numbers() -> None:
    t = CampaignTerms(start=1_000, end=1_000 + 3 * 86_400 + 10, epoch_seconds=86_400, budget=1_000, fee_bps=250)
    assert t.epoch_count == 4
    assert [t.epoch_bounds(e) for e in range(4)][-1] == (1_000 + 3 * 86_400, 1_000 + 3 * 86_400 + 10)
    assert [t.epoch_gross_budget(e) for e in range(4)] == [250, 250, 250, 250]
    # 243 + floor(243 × 250 / 10000) = 243 + 6 = 249 ≤ 250; 244 + 6 = 250 ≤ 250; 245 + 6 = 251 > 250.
    assert t.epoch_payable(0) == 244
    assert t.epoch_at(999) is None
    assert t.epoch_at(1_000) == 0
    assert t.epoch_at(1_000 + 86_400) == 1
    assert t.epoch_at(t.end) is None


@given(terms_st)
def test_epochs_tile_the_campaign_and_budgets_sum_to_it(t: CampaignTerms) -> None:
    bounds = [t.epoch_bounds(e) for e in range(min(t.epoch_count, 50))]
    assert bounds[0][0] == t.start
    for (_, end), (start, _) in itertools.pairwise(bounds):
        assert end == start
    if t.epoch_count <= 50:
        assert bounds[-1][1] == t.end
        assert sum(t.epoch_gross_budget(e) for e in range(t.epoch_count)) == t.budget


@given(terms_st, st.data())
def test_the_payable_total_is_the_largest_the_contract_accepts(t: CampaignTerms, data: st.DataObject) -> None:
    epoch = data.draw(st.integers(0, t.epoch_count - 1))
    gross, payable = t.epoch_gross_budget(epoch), t.epoch_payable(epoch)
    assert payable + t.fee_on(payable) <= gross
    assert payable + 1 + t.fee_on(payable + 1) > gross


def test_closable_epochs_wait_for_the_grace() -> None:
    t = CampaignTerms(start=0, end=300, epoch_seconds=100, budget=3, fee_bps=0)
    assert list(t.closable_epochs(159, 60)) == []
    assert list(t.closable_epochs(160, 60)) == [0]
    assert list(t.closable_epochs(10_000, 60)) == [0, 1, 2]


def test_bad_terms_and_epochs_are_refused() -> None:
    with pytest.raises(ValueError, match="start < end"):
        CampaignTerms(start=10, end=10, epoch_seconds=1, budget=1, fee_bps=0)
    t = CampaignTerms(start=0, end=10, epoch_seconds=5, budget=1, fee_bps=0)
    with pytest.raises(ValueError, match="not an epoch"):
        t.epoch_bounds(2)


def test_the_close_moves_only_along_its_transitions() -> None:
    state = CloseState.COLLECTING
    for event in (CloseEvent.GRACE_OVER, CloseEvent.STORED, CloseEvent.RECORDED):
        state = close_transition(state, event)
    assert state is CloseState.RECORDED
    for event in CloseEvent:
        with pytest.raises(IllegalCloseTransition):
            close_transition(CloseState.RECORDED, event)
    assert close_transition(CloseState.FAILED, CloseEvent.RETRY) is CloseState.CLOSING
    # Nothing but an operator's retry leaves failed, and nothing reaches recorded except from stored.
    assert [k for k in TRANSITIONS if k[0] is CloseState.FAILED] == [(CloseState.FAILED, CloseEvent.RETRY)]
    assert {k[0] for k, v in TRANSITIONS.items() if v is CloseState.RECORDED} == {CloseState.STORED}


def test_the_remainder_of_the_budget_goes_to_the_last_epoch() -> None:
    t = CampaignTerms(start=500, end=800, epoch_seconds=100, budget=11, fee_bps=0)
    assert [t.epoch_gross_budget(e) for e in range(3)] == [3, 3, 5]
    assert [t.epoch_at(s) for s in (500, 599, 650, 799)] == [0, 0, 1, 2]  # whole epochs counted from the start


@pytest.mark.parametrize(
    "kwargs",
    [
        {"start": 10, "end": 10, "epoch_seconds": 1, "budget": 1},
        {"start": -1, "end": 10, "epoch_seconds": 1, "budget": 1},
        {"start": 0, "end": 10, "epoch_seconds": 0, "budget": 1},
        {"start": 0, "end": 10, "epoch_seconds": 1, "budget": -1},
    ],
)
def test_each_bad_term_alone_is_refused(kwargs: dict) -> None:
    with pytest.raises(
        ValueError, match=r"^campaign terms need start < end, a positive epoch length and a budget ≥ 0$"
    ):
        CampaignTerms(fee_bps=0, **kwargs)


def test_the_fee_is_0_to_10000_basis_points_inclusive() -> None:
    assert CampaignTerms(start=0, end=10, epoch_seconds=5, budget=1, fee_bps=10_000).fee_on(7) == 7
    assert CampaignTerms(start=0, end=10, epoch_seconds=5, budget=1, fee_bps=0).fee_on(7) == 0
    for fee_bps in (-1, 10_001):
        with pytest.raises(ValueError, match=r"^fee_bps must be within \[0, 10000\]$"):
            CampaignTerms(start=0, end=10, epoch_seconds=5, budget=1, fee_bps=fee_bps)


def test_an_epoch_outside_the_campaign_is_refused_naming_the_range() -> None:
    t = CampaignTerms(start=0, end=10, epoch_seconds=5, budget=1, fee_bps=0)
    for epoch in (-1, 2):
        with pytest.raises(ValueError, match=rf"^epoch {epoch} is not an epoch of this campaign \(0 … 1\)$"):
            t.epoch_gross_budget(epoch)


def test_a_refused_close_step_names_the_state_and_the_event() -> None:
    with pytest.raises(IllegalCloseTransition) as refused:
        close_transition(CloseState.COLLECTING, CloseEvent.RECORDED)
    assert str(refused.value) == "an epoch close in state collecting cannot take recorded"
    assert (refused.value.state, refused.value.event) == (CloseState.COLLECTING, CloseEvent.RECORDED)
