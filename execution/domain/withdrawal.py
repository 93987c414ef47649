"""One asset of an MM order coming home: exchange → custody, as its own small state machine (ADR 0014). Pure.

Each asset the order holds on the exchange is withdrawn, tracked and booked on its own, so one asset that
fails neither hides another that was sent nor stops another's tracking:

    requesting → sent → confirmed
    requesting → failed      the exchange refused the request: it never had it, nothing was booked
    sent → failed            the exchange accepted it, then failed or cancelled it: booked back onto the exchange

`requesting` is recorded (and committed) before the exchange is asked. Whoever finds a row in `requesting` after
a send may have happened looks it up in the exchange's withdrawal history before asking again
(`requesting_action`), so a crash after the exchange accepted never sends a second withdrawal.

The ledger moves of each transition are built here, once, under keys of the withdrawal row (`withdrawal_moves`);
the order's own step on the return leg follows from the state of all its assets (`order_event`).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from execution.domain import mm_order as mm
from execution.domain.ledger import CUSTODY, EXTERNAL_FEES, Transaction, exchange_holdings, in_transit, transfer


class State(StrEnum):
    REQUESTING = "requesting"
    SENT = "sent"
    CONFIRMED = "confirmed"
    FAILED = "failed"


class Event(StrEnum):
    ACCEPTED = "accepted"  # withdraw() answered the exchange's id, or its history lists the request
    REFUSED = "refused"  # the exchange answered no to the request: it never held it
    ARRIVED = "arrived"  # done on the exchange, and the chain confirms the transfer into custody
    FAILED = "failed"  # the exchange failed or cancelled an accepted withdrawal (it refunds the account)


TRANSITIONS: dict[tuple[State, Event], State] = {
    (State.REQUESTING, Event.ACCEPTED): State.SENT,
    (State.REQUESTING, Event.REFUSED): State.FAILED,
    (State.SENT, Event.ARRIVED): State.CONFIRMED,
    (State.SENT, Event.FAILED): State.FAILED,
}

IN_FLIGHT = frozenset({State.REQUESTING, State.SENT})


class InvalidWithdrawalTransition(Exception):
    def __init__(self, state: State, event: Event) -> None:
        super().__init__(f"cannot apply {event.value} to a withdrawal in state {state.value}")
        self.state = state
        self.event = event


def next_state(state: State, event: Event) -> State:
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise InvalidWithdrawalTransition(state, event) from None


class Action(StrEnum):
    SEND = "send"  # ask the exchange (first time, or it provably never had the earlier request)
    WAIT = "wait"  # a request may be on its way into the exchange's history: look again later


def requesting_action(
    *,
    sends: int,
    seconds_since_send: float,
    call_open: bool,
    in_flight_seconds: float,
    deduplicated: bool,
    listing_seconds: float,
) -> Action:
    """What to do with a `requesting` row that the exchange's history does not (yet) list.

    Never asked: send. Asked, and that call may still be on its way (another worker is in it): wait for it.
    Asked before: the exchange may have accepted it without our hearing back. Where the exchange deduplicates
    a client id, asking again under the same id returns the first withdrawal; elsewhere only the passing of the
    listing window (the exchange refuses requests older than its receive window, and lists an accepted one
    within it) proves the first request never landed."""
    if sends == 0:
        return Action.SEND
    if call_open and seconds_since_send < in_flight_seconds:
        return Action.WAIT
    if deduplicated or seconds_since_send >= listing_seconds:
        return Action.SEND
    return Action.WAIT


def _key(order_id: int, withdrawal_id: int, move: str) -> str:
    return f"o{order_id}-wd{withdrawal_id}-{move}"


def withdrawal_moves(
    event: Event,
    *,
    order_id: int,
    withdrawal_id: int,
    exchange_account_id: int,
    asset: str,
    amount: int,
    fee: int = 0,
) -> list[Transaction]:
    """The ledger entries of one transition of one withdrawal (idempotent by key: a retry books nothing twice).

    Keys begin with `o<order>-`, so the order's holdings on its exchange account (derived from its own entries)
    drop when an asset is sent and come back when an accepted withdrawal fails."""
    free = exchange_holdings(exchange_account_id)
    transit = in_transit(order_id)
    if event is Event.ACCEPTED:
        return [
            transfer(
                _key(order_id, withdrawal_id, "sent"),
                "withdraw_debit",
                asset=asset,
                amount=amount,
                source=free,
                target=transit,
            )
        ]
    if event is Event.FAILED:
        return [
            transfer(
                _key(order_id, withdrawal_id, "failed"),
                "reversal",
                asset=asset,
                amount=amount,
                source=transit,
                target=free,
            )
        ]
    if event is Event.ARRIVED:
        if not 0 <= fee <= amount:
            raise ValueError(f"a withdrawal fee of {fee} does not fit the amount {amount}")
        moves = []
        if amount - fee:
            moves.append(
                transfer(
                    _key(order_id, withdrawal_id, "arrived"),
                    "deposit_credit",
                    asset=asset,
                    amount=amount - fee,
                    source=transit,
                    target=CUSTODY,
                )
            )
        if fee:
            moves.append(
                transfer(
                    _key(order_id, withdrawal_id, "fee"),
                    "fee_debit",
                    asset=asset,
                    amount=fee,
                    source=transit,
                    target=EXTERNAL_FEES,
                )
            )
        return moves
    return []  # refused: the exchange never held the request, nothing moved


def order_event(*, order_state: mm.State, assets: Iterable[State], holdings_left: bool) -> mm.Event | None:
    """The order's step on the return leg, from the state of every withdrawal it has and what it still holds
    on the exchange by its own ledger entries.

    - stopping → withdrawing_back once every holding has an accepted withdrawal (nothing left to request);
    - withdrawing_back → settled once nothing is in flight and nothing is left on the exchange;
    - withdrawing_back → failed once nothing is in flight but a failed asset is back on the exchange: the order is
      parked where its funds are known (a stop starts the return leg again for what is left)."""
    states = list(assets)
    if order_state is mm.State.STOPPING:
        if State.REQUESTING not in states and not holdings_left:
            return mm.Event.ORDERS_SETTLED
        return None
    if order_state is mm.State.WITHDRAWING_BACK and not IN_FLIGHT.intersection(states):
        return mm.Event.FAIL if holdings_left else mm.Event.WITHDRAWAL_ARRIVED
    return None
