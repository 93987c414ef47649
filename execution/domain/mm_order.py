"""The market-making order state machine (ADR 0006). Pure: no Django, no I/O.

An MM order moves an operator's funds from custody to an exchange, runs a market-making job on them, and
brings them back. Every change of state is one of the transitions below, driven by a named event; anything
else is refused. The services record each applied transition in the order's timeline, in the same database
transaction as the ledger entries it causes.

    created → funding → withdrawing_to_exchange → deposit_confirming → deposit_confirmed → starting → running
    running ⇄ paused;  running → starting when the executor lost its job (a new job starts)
    starting / running / paused / deposit_confirmed → stopping → withdrawing_back → settled
    failures → failed;  funds recovered without trading → refunded
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class State(StrEnum):
    CREATED = "created"
    FUNDING = "funding"
    WITHDRAWING_TO_EXCHANGE = "withdrawing_to_exchange"
    DEPOSIT_CONFIRMING = "deposit_confirming"
    DEPOSIT_CONFIRMED = "deposit_confirmed"
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"
    WITHDRAWING_BACK = "withdrawing_back"
    SETTLED = "settled"
    FAILED = "failed"
    REFUNDED = "refunded"


class Event(StrEnum):
    FUND = "fund"  # custody balance reserved for the order
    TRANSFER_SENT = "transfer_sent"  # custody → exchange deposit address transaction broadcast
    TRANSFER_MINED = "transfer_mined"  # that transaction has a receipt
    DEPOSIT_CONFIRMED = "deposit_confirmed"  # exchange history shows the tx credited AND N confirmations
    START = "start"  # job start requested from an executor
    JOB_RUNNING = "job_running"  # the executor acknowledged the job
    JOB_LOST = "job_lost"  # the executor no longer knows the running job (it restarted): a new job is started
    PAUSE = "pause"  # operator, kill switch, or a reconciliation mismatch
    RESUME = "resume"
    STOP = "stop"  # operator asked to stop
    ORDERS_SETTLED = "orders_settled"  # every order cancelled, fills settled; withdrawal requested
    WITHDRAWAL_ARRIVED = "withdrawal_arrived"  # funds back in custody, confirmed on chain
    FAIL = "fail"  # unrecoverable step failure; funds located, operator decides
    REFUND = "refund"  # funds returned to custody without having traded


TERMINAL = frozenset({State.SETTLED, State.REFUNDED})

TRANSITIONS: dict[tuple[State, Event], State] = {
    (State.CREATED, Event.FUND): State.FUNDING,
    (State.FUNDING, Event.TRANSFER_SENT): State.WITHDRAWING_TO_EXCHANGE,
    (State.WITHDRAWING_TO_EXCHANGE, Event.TRANSFER_MINED): State.DEPOSIT_CONFIRMING,
    (State.DEPOSIT_CONFIRMING, Event.DEPOSIT_CONFIRMED): State.DEPOSIT_CONFIRMED,
    (State.DEPOSIT_CONFIRMED, Event.START): State.STARTING,
    (State.STARTING, Event.JOB_RUNNING): State.RUNNING,
    (State.RUNNING, Event.PAUSE): State.PAUSED,
    (State.RUNNING, Event.JOB_LOST): State.STARTING,
    (State.PAUSED, Event.RESUME): State.RUNNING,
    (State.DEPOSIT_CONFIRMED, Event.STOP): State.STOPPING,
    (State.STARTING, Event.STOP): State.STOPPING,
    (State.RUNNING, Event.STOP): State.STOPPING,
    (State.PAUSED, Event.STOP): State.STOPPING,
    (State.STOPPING, Event.ORDERS_SETTLED): State.WITHDRAWING_BACK,
    (State.WITHDRAWING_BACK, Event.WITHDRAWAL_ARRIVED): State.SETTLED,
    # Failures: the step could not complete and retrying will not help; funds are located by reconciliation.
    (State.FUNDING, Event.FAIL): State.FAILED,
    (State.WITHDRAWING_TO_EXCHANGE, Event.FAIL): State.FAILED,
    (State.DEPOSIT_CONFIRMING, Event.FAIL): State.FAILED,
    (State.STARTING, Event.FAIL): State.FAILED,
    (State.STOPPING, Event.FAIL): State.FAILED,
    (State.WITHDRAWING_BACK, Event.FAIL): State.FAILED,
    # Back to custody without trading: a reservation released, or funds recovered after a failure.
    (State.CREATED, Event.REFUND): State.REFUNDED,
    (State.FUNDING, Event.REFUND): State.REFUNDED,
    (State.FAILED, Event.REFUND): State.REFUNDED,
    # A failed order whose funds are on the exchange can still be wound down the normal way.
    (State.FAILED, Event.STOP): State.STOPPING,
}


class InvalidTransition(Exception):
    def __init__(self, state: State, event: Event) -> None:
        allowed = sorted(e.value for (s, e) in TRANSITIONS if s == state)
        super().__init__(
            f"cannot {event.value} an order in state {state.value}"
            + (f"; allowed: {', '.join(allowed)}" if allowed else "; it is final")
        )
        self.state = state
        self.event = event


def attempt_of(events: Iterable[str]) -> int:
    """How many times the order failed so far (its timeline's events). Each failure opens a new attempt: after
    one, stop, orders_settled and withdrawal_arrived can happen again, so their keys carry the attempt."""
    return sum(1 for event in events if event == Event.FAIL.value)


def step_key(order_id: int, step: str, attempt: int) -> str:
    """The idempotency key of a step that happens at most once per attempt: a retry within the attempt is the
    same step (a no-op), the same step after a failure is a new one."""
    return f"o{order_id}-{step}-a{attempt}"


def next_state(state: State, event: Event) -> State:
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise InvalidTransition(state, event) from None


def allowed_events(state: State) -> frozenset[Event]:
    return frozenset(e for (s, e) in TRANSITIONS if s == state)


def funds_on_exchange(state: State) -> bool:
    """Whether the order's funds may sit on the exchange (what reconciliation compares)."""
    return state in {
        State.DEPOSIT_CONFIRMING,
        State.DEPOSIT_CONFIRMED,
        State.STARTING,
        State.RUNNING,
        State.PAUSED,
        State.STOPPING,
        State.FAILED,
    }
