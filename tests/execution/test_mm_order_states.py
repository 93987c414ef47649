"""Every transition of the MM order state machine, and every refusal."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from execution.domain.mm_order import (
    TERMINAL,
    TRANSITIONS,
    Event,
    InvalidTransition,
    State,
    allowed_events,
    funds_on_exchange,
    next_state,
)

HAPPY_PATH = [
    (Event.FUND, State.FUNDING),
    (Event.TRANSFER_SENT, State.WITHDRAWING_TO_EXCHANGE),
    (Event.TRANSFER_MINED, State.DEPOSIT_CONFIRMING),
    (Event.DEPOSIT_CONFIRMED, State.DEPOSIT_CONFIRMED),
    (Event.START, State.STARTING),
    (Event.JOB_RUNNING, State.RUNNING),
    (Event.PAUSE, State.PAUSED),
    (Event.RESUME, State.RUNNING),
    (Event.STOP, State.STOPPING),
    (Event.ORDERS_SETTLED, State.WITHDRAWING_BACK),
    (Event.WITHDRAWAL_ARRIVED, State.SETTLED),
]


def test_the_happy_path_from_created_to_settled() -> None:
    state = State.CREATED
    for event, expected in HAPPY_PATH:
        state = next_state(state, event)
        assert state == expected


# Written out by hand from ADR 0006, not derived from TRANSITIONS: every (state, event) pair not listed under
# its state must be refused. Values are the stored strings, so a renamed enum value fails here too.
ALLOWED: dict[str, dict[str, str]] = {
    "created": {"fund": "funding", "refund": "refunded"},
    "funding": {"transfer_sent": "withdrawing_to_exchange", "fail": "failed", "refund": "refunded"},
    "withdrawing_to_exchange": {"transfer_mined": "deposit_confirming", "fail": "failed"},
    "deposit_confirming": {"deposit_confirmed": "deposit_confirmed", "fail": "failed"},
    "deposit_confirmed": {"start": "starting", "stop": "stopping"},
    "starting": {"job_running": "running", "stop": "stopping", "fail": "failed"},
    "running": {"pause": "paused", "stop": "stopping", "job_lost": "starting"},
    "paused": {"resume": "running", "stop": "stopping"},
    "stopping": {"orders_settled": "withdrawing_back", "fail": "failed"},
    "withdrawing_back": {"withdrawal_arrived": "settled", "fail": "failed"},
    "settled": {},
    "failed": {"stop": "stopping", "refund": "refunded"},
    "refunded": {},
}
EVENTS = [
    "fund", "transfer_sent", "transfer_mined", "deposit_confirmed", "start", "job_running", "pause", "resume",
    "stop", "orders_settled", "withdrawal_arrived", "fail", "refund", "job_lost",
]  # fmt: skip
PAIRS = [(state, event) for state in ALLOWED for event in EVENTS]


def test_the_hand_written_table_names_every_state_and_event() -> None:
    # A state or event added to the machine must be added here, with its transitions decided by hand.
    assert sorted(ALLOWED) == sorted(s.value for s in State)
    assert sorted(EVENTS) == sorted(e.value for e in Event)


@pytest.mark.parametrize(("state", "event"), PAIRS, ids=[f"{s}-{e}" for s, e in PAIRS])
def test_each_pair_goes_where_the_hand_written_table_says(state: str, event: str) -> None:
    target = ALLOWED[state].get(event)
    if target is None:
        with pytest.raises(InvalidTransition, match=f"cannot {event} an order in state {state}"):
            next_state(State(state), Event(event))
        assert Event(event) not in allowed_events(State(state))
    else:
        assert next_state(State(state), Event(event)) == State(target)
        assert Event(event) in allowed_events(State(state))


# Funds are on the exchange, or on their way to or from it: a refund would mark the order done while they are
# still out there.
FUNDS_OUT = ["withdrawing_to_exchange", "deposit_confirming", "deposit_confirmed", "starting", "running", "paused"]
FUNDS_OUT += ["stopping", "withdrawing_back"]


@pytest.mark.parametrize("state", FUNDS_OUT)
def test_no_refund_while_funds_are_out_of_custody(state: str) -> None:
    with pytest.raises(InvalidTransition):
        next_state(State(state), Event.REFUND)


def test_refund_only_from_the_states_before_funds_leave_and_from_failed() -> None:
    refundable = sorted(s.value for s in State if Event.REFUND in allowed_events(s))
    assert refundable == ["created", "failed", "funding"]


def test_a_job_starts_only_from_deposit_confirmed() -> None:
    assert [s.value for s in State if Event.START in allowed_events(s)] == ["deposit_confirmed"]
    assert [s.value for s in State if Event.JOB_RUNNING in allowed_events(s)] == ["starting"]


def test_funds_may_be_on_the_exchange_exactly_from_the_deposit_until_the_withdrawal_back() -> None:
    on_exchange = {"deposit_confirming", "deposit_confirmed", "starting", "running", "paused", "stopping", "failed"}
    assert {s.value for s in State if funds_on_exchange(s)} == on_exchange


def test_terminal_states_are_final() -> None:
    for state in TERMINAL:
        assert allowed_events(state) == frozenset()
        with pytest.raises(InvalidTransition, match="it is final"):
            next_state(state, Event.STOP)


def test_a_refusal_names_the_state_the_event_and_what_the_state_allows() -> None:
    with pytest.raises(InvalidTransition) as refused:
        next_state(State.PAUSED, Event.FUND)
    assert str(refused.value) == "cannot fund an order in state paused; allowed: resume, stop"
    assert (refused.value.state, refused.value.event) == (State.PAUSED, Event.FUND)
    with pytest.raises(InvalidTransition) as final:
        next_state(State.SETTLED, Event.STOP)
    assert str(final.value) == "cannot stop an order in state settled; it is final"
    assert (final.value.state, final.value.event) == (State.SETTLED, Event.STOP)


def test_every_state_is_reachable_and_every_non_terminal_state_can_end() -> None:
    reachable = {State.CREATED}
    frontier = [State.CREATED]
    while frontier:
        s = frontier.pop()
        for (src, _), dst in TRANSITIONS.items():
            if src == s and dst not in reachable:
                reachable.add(dst)
                frontier.append(dst)
    assert reachable == set(State)
    for state in set(State) - TERMINAL:
        seen, stack = {state}, [state]
        while stack:
            s = stack.pop()
            for (src, _), dst in TRANSITIONS.items():
                if src == s and dst not in seen:
                    seen.add(dst)
                    stack.append(dst)
        assert seen & TERMINAL, f"{state} can never finish"


def test_stop_is_possible_wherever_funds_may_be_on_the_exchange_after_deposit() -> None:
    for state in State:
        if funds_on_exchange(state) and state is not State.DEPOSIT_CONFIRMING:
            assert Event.STOP in allowed_events(state) or state is State.STOPPING, state


@given(st.lists(st.sampled_from(list(Event)), max_size=40))
def test_random_event_sequences_follow_the_hand_written_table(events: list[Event]) -> None:
    state = State.CREATED
    for event in events:
        target = ALLOWED[state.value].get(event.value)
        if target is None:
            with pytest.raises(InvalidTransition):
                next_state(state, event)
            continue
        state = next_state(state, event)
        assert state == State(target)
