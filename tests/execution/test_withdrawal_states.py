"""The per-asset withdrawal state machine and the order's return-leg step (pure, no database)."""

from __future__ import annotations

import pytest

from execution.domain import mm_order as mm
from execution.domain import withdrawal as wd
from execution.domain.ledger import Transaction, balances, transfer
from execution.domain.withdrawal import Action, Event, State

# Written out by hand from the withdrawal's lifecycle, not read from the module's table.
ALLOWED = {
    ("requesting", "accepted"): "sent",
    ("requesting", "refused"): "failed",
    ("sent", "arrived"): "confirmed",
    ("sent", "failed"): "failed",
}
STATES = ("requesting", "sent", "confirmed", "failed")
EVENTS = ("accepted", "refused", "arrived", "failed")


def test_the_hand_written_table_names_every_state_and_event() -> None:
    assert {s.value for s in State} == set(STATES)
    assert {e.value for e in Event} == set(EVENTS)


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("event", EVENTS)
def test_every_transition_is_allowed_or_refused_as_the_lifecycle_says(state: str, event: str) -> None:
    expected = ALLOWED.get((state, event))
    if expected is None:
        with pytest.raises(wd.InvalidWithdrawalTransition):
            wd.next_state(State(state), Event(event))
    else:
        assert wd.next_state(State(state), Event(event)).value == expected


def moves(event: Event, *, row: int = 5, fee: int = 0) -> list:
    return wd.withdrawal_moves(
        event, order_id=7, withdrawal_id=row, exchange_account_id=3, asset="USDT", amount=100, fee=fee
    )


def test_each_transition_books_once_and_the_round_trip_balances() -> None:
    seed = transfer(
        "seed", "deposit_credit", asset="USDT", amount=100, source="external:chain", target="exchange:a3:free"
    )
    booked: list[Transaction] = [seed]
    accepted = moves(Event.ACCEPTED)
    assert accepted == moves(Event.ACCEPTED)  # a retry builds the very same entries, under the same keys
    booked += accepted
    assert balances(booked)["transit:o7:USDT"] == 100
    booked += moves(Event.ARRIVED, fee=2)
    after = balances(booked)
    assert after["custody:USDT"] == 98
    assert after["external:fees:USDT"] == 2
    assert after.get("transit:o7:USDT", 0) == 0
    assert after.get("exchange:a3:free:USDT", 0) == 0
    assert len({tx.key for tx in booked}) == len(booked)  # one key per entry: the ledger books each once
    assert moves(Event.REFUSED) == []  # never held by the exchange: nothing moved


def test_a_failed_withdrawal_is_booked_back_onto_the_exchange_under_its_own_key() -> None:
    (back,) = moves(Event.FAILED)
    assert back.key == "o7-wd5-failed"
    assert {p.account: p.amount for p in back.postings} == {"transit:o7:USDT": -100, "exchange:a3:free:USDT": 100}
    assert moves(Event.FAILED, row=6)[0].key != back.key  # a second attempt is a new entry


@pytest.mark.parametrize(
    ("sends", "seconds", "call_open", "deduplicated", "expected"),
    [
        (0, 0.0, False, False, Action.SEND),  # never asked
        (1, 1.0, True, True, Action.WAIT),  # another worker's call is on its way
        (1, 1.0, False, True, Action.SEND),  # the exchange deduplicates our id: the same withdrawal
        (1, 1.0, False, False, Action.WAIT),  # it may still appear in the history
        (1, 91.0, False, False, Action.SEND),  # the window passed: it never landed
        (1, 91.0, True, False, Action.SEND),  # a worker that died in the call leaves call_open behind
    ],
)
def test_a_requesting_row_is_sent_again_only_when_the_first_request_cannot_have_landed(
    sends: int, seconds: float, call_open: bool, deduplicated: bool, expected: Action
) -> None:
    action = wd.requesting_action(
        sends=sends,
        seconds_since_send=seconds,
        call_open=call_open,
        in_flight_seconds=40.0,
        deduplicated=deduplicated,
        listing_seconds=90.0,
    )
    assert action is expected


@pytest.mark.parametrize(
    ("order_state", "assets", "left", "expected"),
    [
        (mm.State.STOPPING, [State.SENT, State.REQUESTING], True, None),
        (mm.State.STOPPING, [State.SENT, State.FAILED], True, None),  # a refused asset still to ask for
        (mm.State.STOPPING, [State.SENT, State.CONFIRMED], False, mm.Event.ORDERS_SETTLED),
        (mm.State.STOPPING, [], False, mm.Event.ORDERS_SETTLED),  # nothing to bring back
        (mm.State.WITHDRAWING_BACK, [State.SENT, State.FAILED], True, None),  # one still on its way
        (mm.State.WITHDRAWING_BACK, [State.CONFIRMED, State.CONFIRMED], False, mm.Event.WITHDRAWAL_ARRIVED),
        (mm.State.WITHDRAWING_BACK, [State.FAILED, State.CONFIRMED], True, mm.Event.FAIL),
        (
            mm.State.WITHDRAWING_BACK,
            [State.FAILED, State.CONFIRMED, State.CONFIRMED],
            False,
            mm.Event.WITHDRAWAL_ARRIVED,
        ),
        (mm.State.FAILED, [State.FAILED], True, None),
    ],
)
def test_the_order_settles_only_when_every_asset_has(
    order_state: mm.State, assets: list[State], left: bool, expected: mm.Event | None
) -> None:
    assert wd.order_event(order_state=order_state, assets=assets, holdings_left=left) is expected


def test_step_keys_are_per_attempt() -> None:
    assert mm.attempt_of(["fund", "stop", "orders_settled"]) == 0
    assert mm.attempt_of(["stop", "orders_settled", "fail"]) == 1
    assert mm.step_key(7, "stop", 0) != mm.step_key(7, "stop", 1)
    assert mm.step_key(7, "stop", 1) == "o7-stop-a1"


def entries(txs: list[Transaction]) -> list[tuple[str, str, dict[str, int]]]:
    return [(tx.key, tx.kind, {p.account: p.amount for p in tx.postings}) for tx in txs]


def test_each_transition_books_exactly_these_entries_under_the_rows_keys() -> None:
    assert entries(moves(Event.ACCEPTED)) == [
        ("o7-wd5-sent", "withdraw_debit", {"exchange:a3:free:USDT": -100, "transit:o7:USDT": 100})
    ]
    assert entries(moves(Event.FAILED)) == [
        ("o7-wd5-failed", "reversal", {"transit:o7:USDT": -100, "exchange:a3:free:USDT": 100})
    ]
    assert entries(moves(Event.ARRIVED, fee=2)) == [
        ("o7-wd5-arrived", "deposit_credit", {"transit:o7:USDT": -98, "custody:USDT": 98}),
        ("o7-wd5-fee", "fee_debit", {"transit:o7:USDT": -2, "external:fees:USDT": 2}),
    ]
    # No fee given: none is booked; the whole amount arrives.
    no_fee = wd.withdrawal_moves(
        Event.ARRIVED, order_id=7, withdrawal_id=5, exchange_account_id=3, asset="USDT", amount=100
    )
    assert entries(no_fee) == [("o7-wd5-arrived", "deposit_credit", {"transit:o7:USDT": -100, "custody:USDT": 100})]
    # The fee took it all: only the fee is booked (a zero transfer would be refused).
    assert entries(moves(Event.ARRIVED, fee=100)) == [
        ("o7-wd5-fee", "fee_debit", {"transit:o7:USDT": -100, "external:fees:USDT": 100})
    ]


@pytest.mark.parametrize("fee", [-1, 101])
def test_a_fee_outside_the_amount_is_refused(fee: int) -> None:
    with pytest.raises(ValueError, match=f"^a withdrawal fee of {fee} does not fit the amount 100$"):
        moves(Event.ARRIVED, fee=fee)


@pytest.mark.parametrize(
    ("seconds", "call_open", "expected"),
    [
        (39.0, True, Action.WAIT),  # just inside the in-flight time: the call may still be on its way
        (40.0, True, Action.WAIT),  # at it: past it only when `listing_seconds` passed too
        (89.0, False, Action.WAIT),
        (90.0, False, Action.SEND),  # the listing window has passed at exactly `listing_seconds`
    ],
)
def test_the_requesting_windows_end_where_they_say(seconds: float, call_open: bool, expected: Action) -> None:
    action = wd.requesting_action(
        sends=1,
        seconds_since_send=seconds,
        call_open=call_open,
        in_flight_seconds=40.0,
        deduplicated=False,
        listing_seconds=90.0,
    )
    assert action is expected


def test_the_in_flight_wait_ends_at_in_flight_seconds_where_the_exchange_deduplicates() -> None:
    def action(seconds: float) -> Action:
        return wd.requesting_action(
            sends=1,
            seconds_since_send=seconds,
            call_open=True,
            in_flight_seconds=40.0,
            deduplicated=True,
            listing_seconds=90.0,
        )

    assert (action(39.9), action(40.0)) == (Action.WAIT, Action.SEND)


def test_a_refused_transition_names_the_event_and_the_state() -> None:
    with pytest.raises(wd.InvalidWithdrawalTransition) as refused:
        wd.next_state(State.CONFIRMED, Event.FAILED)
    assert str(refused.value) == "cannot apply failed to a withdrawal in state confirmed"
    assert (refused.value.state, refused.value.event) == (State.CONFIRMED, Event.FAILED)
