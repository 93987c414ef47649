"""Refunding an MM order that never traded, its funds (if any) in custody: created (custody could not cover its
funding), funding before its transfer is signed (the reservation released), failed with everything booked back
into custody (a reverted custody transfer). Anything else is refused with `not_refundable` and changes nothing; a
repeat is a no-op; a refund and a worker signing the transfer at once never both happen. On the devnet (Anvil and
the exchange simulator), as the funding tests."""

# The fixtures imported from test_funds are parameters of the tests here, which ruff reads as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient
from web3 import Web3

from devnet.chain import dev_accounts, token
from devnet.chain import transfer as chain_transfer
from execution import operations, outbound, redelivery, selectors, services
from execution.domain import mm_order as mm
from execution.domain.ledger import custody_reserved, exchange_holdings, in_transit, of_asset, transfer
from execution.errors import LedgerOverdraft, OrderNotRefundable
from execution.models import CustodyTransfer, ExchangeAccount, LedgerTransaction, MMOrder, MMOrderTransition
from mrmarket.errors import NotFound
from mrmarket.roles import Role
from tests.chaos.invariants import assert_ledger_balanced
from tests.execution.test_funds import CUSTODY, UNIT, account, dev_token, new_order, sim, track_until  # noqa: F401 (fixtures)
from tests.factories import user_with
from tests.fixtures.threads import at_once
from tests.plugins.require import require_postgresql

pytestmark = [pytest.mark.chain, pytest.mark.django_db, pytest.mark.timeout(120)]
SEED = 5_000 * UNIT  # what the `account` fixture books into custody
AMOUNT = 1_000 * UNIT  # `new_order`'s funding


def reserved(order: MMOrder) -> int:
    return selectors.ledger_balance(account=of_asset(custody_reserved(order.pk), "USDT"))


def free_custody() -> int:
    return selectors.ledger_balance(account="custody:USDT")


def reserve(order: MMOrder) -> MMOrder:
    """What `mm_order_fund` books before signing: `fund`, with the reservation."""
    return services.mm_order_transition(
        order_id=order.pk, event=mm.Event.FUND, key=f"o{order.pk}-fund", ledger=[outbound._reservation(order)]
    )


def walk(order: MMOrder, *events: mm.Event, ledger: dict[mm.Event, Any] | None = None) -> MMOrder:
    """Apply the real transitions, each under its own key, with the ledger entry given for it."""
    for i, event in enumerate(events):
        entry = (ledger or {}).get(event)
        order = services.mm_order_transition(
            order_id=order.pk, event=event, key=f"o{order.pk}-t{i}", ledger=[entry] if entry else []
        )
    return order


def snapshot(order: MMOrder) -> tuple[str, list[str], int, dict[str, int]]:
    """Everything a refused refund must leave as it found it."""
    state = MMOrder.objects.get(pk=order.pk).state
    timeline = list(MMOrderTransition.objects.filter(order=order).order_by("pk").values_list("event", flat=True))
    return state, timeline, LedgerTransaction.objects.count(), selectors.ledger_balances()


def refused(order: MMOrder, reason: str) -> OrderNotRefundable:
    before = snapshot(order)
    with pytest.raises(OrderNotRefundable) as err:
        outbound.mm_order_refund(order_id=order.pk)
    assert err.value.code == "not_refundable"
    assert err.value.status == 409
    assert err.value.extra["state"] == before[0]
    assert reason in err.value.extra["reason"]
    assert snapshot(order) == before
    return err.value


def test_a_created_order_stuck_on_a_custody_overdraft_is_refunded_and_no_longer_redelivered(account) -> None:
    order = new_order(account, amount=9_000 * UNIT)
    operations.mm_order_fund_request(owner_id=account.owner_id, order_id=order.pk)  # recorded, queued on commit
    with pytest.raises(LedgerOverdraft):
        outbound.mm_order_fund(order_id=order.pk)
    assert ("fund", order.pk, None) in redelivery.mm_order_lost_requests(older_than_seconds=0)  # asked forever
    before = LedgerTransaction.objects.count()

    refunded = operations.mm_order_refund_request(owner_id=account.owner_id, order_id=order.pk)

    assert refunded.state == "refunded"
    assert list(refunded.transitions.values_list("from_state", "event", "to_state")) == [
        ("created", "refund", "refunded")
    ]
    assert LedgerTransaction.objects.count() == before  # nothing was reserved: nothing to release
    assert free_custody() == SEED
    assert redelivery.mm_order_lost_requests(older_than_seconds=0) == []
    assert outbound.mm_order_fund(order_id=order.pk).state == "refunded"  # the task, redelivered late: nothing
    assert not CustodyTransfer.objects.exists()


def test_a_funding_order_before_signing_gets_its_reservation_released(account, w3: Web3) -> None:
    order = reserve(new_order(account))
    assert (free_custody(), reserved(order)) == (SEED - AMOUNT, AMOUNT)

    refunded = outbound.mm_order_refund(order_id=order.pk)

    assert refunded.state == "refunded"
    assert (free_custody(), reserved(order)) == (SEED, 0)
    released = LedgerTransaction.objects.get(key=f"o{order.pk}-custody-released")
    assert released.kind == "reserve_release"
    (step,) = refunded.transitions.filter(event="refund")
    assert (step.from_state, step.detail) == ("funding", {"released": str(AMOUNT), "asset": "USDT"})
    assert_ledger_balanced()
    # A worker that read the order as funding before the refund signs nothing once it holds the row.
    assert outbound._sign_deposit_transfer(w3, order) is None
    assert outbound.mm_order_track_deposit(order_id=order.pk).state == "refunded"
    assert not CustodyTransfer.objects.exists()


def test_a_second_refund_is_a_no_op_returning_the_refunded_order(account) -> None:
    order = reserve(new_order(account))
    first = outbound.mm_order_refund(order_id=order.pk)
    ledger = LedgerTransaction.objects.count()
    again = outbound.mm_order_refund(order_id=order.pk)
    assert (again.pk, again.state) == (first.pk, "refunded")
    assert again.transitions.filter(event="refund").count() == 1
    assert LedgerTransaction.objects.count() == ledger
    assert free_custody() == SEED


def test_a_funding_order_whose_transfer_is_signed_is_refused_and_nothing_changes(account, w3: Web3) -> None:
    order = reserve(new_order(account))
    assert outbound._sign_deposit_transfer(w3, order) is not None  # signed; the broadcast not booked yet
    refused(order, "custody transfer is signed")
    assert reserved(order) == AMOUNT
    # Once sent, it is no longer funding at all.
    sent = outbound.mm_order_track_deposit(order_id=order.pk)
    assert sent.state == "withdrawing_to_exchange"
    refused(sent, "never traded")


@pytest.fixture
def drained(w3: Web3, dev_token: str) -> Iterator[None]:
    """The custody wallet's tokens left it on chain out of band (the ledger still counts them): the order's
    transfer, signed with a fixed gas limit, mines and reverts. Put back afterwards."""
    held = token(w3, dev_token).functions.balanceOf(CUSTODY.address).call()
    aside = dev_accounts()[7]
    chain_transfer(w3, dev_token, aside.address, held - AMOUNT // 2, sender=CUSTODY)
    yield
    chain_transfer(w3, dev_token, CUSTODY.address, held - AMOUNT // 2, sender=aside)


def test_a_failed_order_whose_transfer_reverted_is_refunded_with_its_funds_in_custody(
    account, w3: Web3, drained: None
) -> None:
    order = outbound.mm_order_fund(order_id=new_order(account).pk)
    failed = track_until(order, "failed", w3)
    assert "reverted" in failed.failure_reason
    assert CustodyTransfer.objects.get(order=order).status == CustodyTransfer.Status.REVERTED
    assert (free_custody(), reserved(order)) == (SEED, 0)  # booked back by the revert
    before = LedgerTransaction.objects.count()

    refunded = operations.mm_order_refund_request(owner_id=account.owner_id, order_id=order.pk)

    assert refunded.state == "refunded"
    assert list(refunded.transitions.order_by("pk").values_list("event", flat=True)) == [
        "fund",
        "transfer_sent",
        "fail",
        "refund",
    ]
    assert LedgerTransaction.objects.count() == before  # nothing reserved any more: nothing to release
    assert free_custody() == SEED
    assert_ledger_balanced()


def _deposit(order: MMOrder) -> dict[mm.Event, Any]:
    """The ledger entries of the outbound leg (reserved → transit → the exchange account)."""
    return {
        mm.Event.FUND: outbound._reservation(order),
        mm.Event.TRANSFER_SENT: transfer(
            f"o{order.pk}-sent", "withdraw_debit", asset="USDT", amount=AMOUNT,
            source=custody_reserved(order.pk), target=in_transit(order.pk),
        ),
        mm.Event.DEPOSIT_CONFIRMED: transfer(
            f"o{order.pk}-credited", "deposit_credit", asset="USDT", amount=AMOUNT,
            source=in_transit(order.pk), target=exchange_holdings(order.exchange_account_id),
        ),
    }  # fmt: skip


OUT = (mm.Event.FUND, mm.Event.TRANSFER_SENT, mm.Event.TRANSFER_MINED)


@pytest.mark.parametrize(
    ("events", "reason"),
    [
        ((*OUT, mm.Event.FAIL), "in transit"),  # failed while the exchange had not credited the deposit
        ((*OUT, mm.Event.DEPOSIT_CONFIRMED, mm.Event.STOP, mm.Event.FAIL), "on its exchange account"),
        ((*OUT, mm.Event.DEPOSIT_CONFIRMED, mm.Event.START, mm.Event.FAIL), "started a job"),
    ],
)
def test_a_failed_order_with_funds_outside_custody_is_refused(account, events, reason: str) -> None:
    order = new_order(account)
    failed = walk(order, *events, ledger=_deposit(order))
    assert failed.state == "failed"
    refused(failed, reason)


@pytest.mark.parametrize(
    "events",
    [
        (*OUT, mm.Event.DEPOSIT_CONFIRMED, mm.Event.START, mm.Event.JOB_RUNNING),
        (*OUT, mm.Event.DEPOSIT_CONFIRMED, mm.Event.STOP, mm.Event.ORDERS_SETTLED, mm.Event.WITHDRAWAL_ARRIVED),
    ],
    ids=["running", "settled"],
)
def test_an_order_past_funding_is_refused(account, events) -> None:
    order = walk(new_order(account), *events)
    error = refused(order, "only an order created, funding or failed")
    assert error.extra["state"] in ("running", "settled")


# ------------------------------------------------------------------------------------------------------- the API


@pytest.fixture
def api(account: ExchangeAccount) -> APIClient:
    owner = account.owner
    owner.groups.add(Group.objects.get_or_create(name=Role.OPERATOR.value)[0])
    client = APIClient()
    client.force_authenticate(owner)
    return client


def test_the_api_refunds_once_refuses_typed_and_hides_other_operators_orders(account, api: APIClient) -> None:
    order = reserve(new_order(account))
    url = f"/api/v1/execution/mm-orders/{order.pk}/refund"
    stranger = APIClient()
    stranger.force_authenticate(user_with(Role.OPERATOR))
    hidden = stranger.post(url)
    assert (hidden.status_code, hidden.json()["code"]) == (404, "not_found")
    assert MMOrder.objects.get(pk=order.pk).state == "funding"
    with pytest.raises(NotFound):  # the very error the stop operation gives
        operations.mm_order_stop_request(owner_id=user_with(Role.OPERATOR).pk, order_id=order.pk)

    done = api.post(url)
    assert done.status_code == 200, done.json()
    assert done.json()["state"] == "refunded"
    assert [t["event"] for t in done.json()["timeline"]] == ["fund", "refund"]
    again = api.post(url)
    assert (again.status_code, again.json()["state"]) == (200, "refunded")
    assert free_custody() == SEED

    running = walk(new_order(account), *OUT, mm.Event.DEPOSIT_CONFIRMED, mm.Event.START, mm.Event.JOB_RUNNING)
    no = api.post(f"/api/v1/execution/mm-orders/{running.pk}/refund")
    assert no.status_code == 409
    body = no.json()
    assert body["code"] == "not_refundable"
    assert body["extra"]["state"] == "running"
    assert "never traded" in body["extra"]["reason"]
    assert set(body) == {"code", "message", "extra", "request_id"}


# ---------------------------------------------------------------------------------------------- the race


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("order_of", ["refund_first", "signer_first", "at_once"])
def test_a_refund_and_a_signing_at_once_never_both_happen(account, monkeypatch, order_of: str) -> None:
    """A worker funding the order (past its state read, about to sign) and an operator's refund, in two threads
    with their own connections: exactly one wins, and the ledger balances either way. `refund_first` holds the
    signer before it takes the row lock until the refund committed (the signer must then find the order refunded
    and sign nothing); `signer_first` holds the refund until the signer holds the row lock (the refund must wait
    and find the transfer signed); `at_once` holds neither."""
    require_postgresql("SQLite serializes writers itself; races need PostgreSQL")
    order = reserve(new_order(account))
    refund_done, signer_locked = threading.Event(), threading.Event()
    trusted, address = outbound.accounts.exchange_account_trusted, outbound._deposit_address

    def signer_waits(**kwargs: Any) -> None:
        assert refund_done.wait(timeout=30), "the refund never finished"
        trusted(**kwargs)

    def signer_holds_the_row(exchange_account: ExchangeAccount, asset: str) -> str:
        signer_locked.set()  # inside the signing transaction, the row locked
        return address(exchange_account, asset)

    if order_of == "refund_first":
        monkeypatch.setattr(outbound.accounts, "exchange_account_trusted", signer_waits)
    if order_of == "signer_first":
        monkeypatch.setattr(outbound, "_deposit_address", signer_holds_the_row)

    def refund() -> MMOrder:
        if order_of == "signer_first":
            assert signer_locked.wait(timeout=30), "the signer never took the row"
        try:
            return outbound.mm_order_refund(order_id=order.pk)
        finally:
            refund_done.set()

    def fund() -> MMOrder:
        return outbound.mm_order_fund(order_id=order.pk)

    works: list[Callable[[], Any]] = [refund, fund]
    refund_result, fund_result = at_once(works)

    final = MMOrder.objects.get(pk=order.pk)
    transfers = CustodyTransfer.objects.filter(order=order)
    assert isinstance(fund_result, MMOrder), fund_result
    if isinstance(refund_result, MMOrder):
        assert order_of != "signer_first"
        assert (refund_result.state, final.state, fund_result.state) == ("refunded", "refunded", "refunded")
        assert not transfers.exists()
        assert (free_custody(), reserved(order)) == (SEED, 0)
    else:
        assert order_of != "refund_first"
        assert isinstance(refund_result, OrderNotRefundable), refund_result
        assert final.state == fund_result.state == "withdrawing_to_exchange"
        assert transfers.count() == 1
        assert not final.transitions.filter(event="refund").exists()
        assert free_custody() == SEED - AMOUNT
        assert selectors.ledger_balance(account=of_asset(in_transit(order.pk), "USDT")) == AMOUNT
    assert_ledger_balanced()
