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


@pytest.mark.parametrize(("state", "event"), sorted(TRANSITIONS), ids=lambda x: x.value)
def test_each_listed_transition(state: State, event: Event) -> None:
    assert next_state(state, event) == TRANSITIONS[(state, event)]


UNLISTED = [(s, e) for s in State for e in Event if (s, e) not in TRANSITIONS]


@pytest.mark.parametrize(("state", "event"), UNLISTED, ids=lambda x: x.value)
def test_every_other_pair_is_refused_with_a_clear_message(state: State, event: Event) -> None:
    with pytest.raises(InvalidTransition, match=f"cannot {event.value} an order in state {state.value}"):
        next_state(state, event)


def test_terminal_states_are_final() -> None:
    for state in TERMINAL:
        assert allowed_events(state) == frozenset()
        with pytest.raises(InvalidTransition, match="it is final"):
            next_state(state, Event.STOP)


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
def test_random_event_sequences_stay_in_the_graph(events: list[Event]) -> None:
    state = State.CREATED
    for event in events:
        try:
            new = next_state(state, event)
        except InvalidTransition:
            continue
        assert (state, event) in TRANSITIONS
        assert state not in TERMINAL
        state = new
