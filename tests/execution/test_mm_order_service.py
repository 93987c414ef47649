"""Applying the state machine to stored orders: locked, idempotent by key, atomic with its ledger entries."""

from __future__ import annotations

import pytest

from execution import accounts, selectors, services
from execution.domain import mm_order as mm
from execution.domain.ledger import transfer
from execution.errors import InvalidOrderTransition, LedgerOverdraft
from execution.models import Alert, ExchangeAccount, LedgerTransaction, MMOrder, MMOrderTransition
from mrmarket.exchanges.credentials import ExchangeCredentials
from tests.factories import user_with

pytestmark = pytest.mark.django_db


@pytest.fixture
def order() -> MMOrder:
    owner = user_with()
    account = accounts.exchange_account_store(
        owner_id=owner.pk,
        exchange="binance",
        label="mm",
        role=ExchangeAccount.Role.TRADING,
        credentials=ExchangeCredentials(api_key="key-0001", secret="s"),
    )
    services.ledger_record(
        tx=transfer("seed", "deposit_credit", asset="USDT", amount=5_000, source="external:chain", target="custody")
    )
    return MMOrder.objects.create(
        owner=owner, exchange_account=account, symbol="MRM/USDT", funding_asset="USDT", funding_amount=1_000
    )


def send_funds(order: MMOrder) -> MMOrder:
    move = transfer(
        f"o{order.pk}-send",
        "withdraw_debit",
        asset="USDT",
        amount=1_000,
        source="custody",
        target=f"transit:o{order.pk}",
    )
    return services.mm_order_transition(
        order_id=order.pk, event=mm.Event.TRANSFER_SENT, key=f"o{order.pk}-send", ledger=[move], detail={"tx": "0xab"}
    )


def test_transitions_are_recorded_with_their_ledger_entries(order: MMOrder) -> None:
    services.mm_order_transition(order_id=order.pk, event=mm.Event.FUND, key="fund")
    updated = send_funds(order)
    assert updated.state == "withdrawing_to_exchange"
    assert selectors.ledger_balance(account="custody:USDT") == 4_000
    assert selectors.ledger_balance(account=f"transit:o{order.pk}:USDT") == 1_000
    timeline = list(MMOrderTransition.objects.filter(order=order).values_list("from_state", "event", "to_state"))
    assert timeline == [
        ("created", "fund", "funding"),
        ("funding", "transfer_sent", "withdrawing_to_exchange"),
    ]


def test_a_retried_step_is_applied_once(order: MMOrder) -> None:
    services.mm_order_transition(order_id=order.pk, event=mm.Event.FUND, key="fund")
    send_funds(order)
    again = send_funds(order)  # e.g. the worker died after commit and the task ran again
    assert again.state == "withdrawing_to_exchange"
    assert MMOrderTransition.objects.filter(order=order).count() == 2
    assert selectors.ledger_balance(account="custody:USDT") == 4_000


def test_an_invalid_event_is_refused_and_changes_nothing(order: MMOrder) -> None:
    with pytest.raises(InvalidOrderTransition) as err:
        services.mm_order_transition(order_id=order.pk, event=mm.Event.STOP, key="stop")
    assert err.value.status == 409
    assert err.value.extra == {"state": "created", "event": "stop", "allowed": ["fund", "refund"]}
    order.refresh_from_db()
    assert order.state == "created"
    assert not MMOrderTransition.objects.filter(order=order).exists()


def test_a_failing_ledger_entry_rolls_the_whole_step_back(order: MMOrder) -> None:
    services.mm_order_transition(order_id=order.pk, event=mm.Event.FUND, key="fund")
    too_much = transfer(
        "o-send-big", "withdraw_debit", asset="USDT", amount=9_999, source="custody", target=f"transit:o{order.pk}"
    )
    before = LedgerTransaction.objects.count()
    with pytest.raises(LedgerOverdraft):
        services.mm_order_transition(order_id=order.pk, event=mm.Event.TRANSFER_SENT, key="send", ledger=[too_much])
    order.refresh_from_db()
    assert order.state == "funding"
    assert LedgerTransaction.objects.count() == before
    assert not MMOrderTransition.objects.filter(order=order, key="send").exists()


def test_failure_keeps_its_reason(order: MMOrder) -> None:
    services.mm_order_transition(order_id=order.pk, event=mm.Event.FUND, key="fund")
    failed = services.mm_order_transition(
        order_id=order.pk, event=mm.Event.FAIL, key="fail-1", detail={"reason": "custody transfer reverted"}
    )
    assert (failed.state, failed.failure_reason) == ("failed", "custody transfer reverted")


def test_a_failed_order_tells_a_person_once_in_the_step_that_fails_it(order: MMOrder) -> None:
    services.mm_order_transition(order_id=order.pk, event=mm.Event.FUND, key="fund")
    assert not Alert.objects.filter(kind="mm_order_failed").exists()
    for _ in range(2):  # the step retried: still one failure, one alert
        services.mm_order_transition(
            order_id=order.pk, event=mm.Event.FAIL, key="fail-1", detail={"reason": "custody transfer reverted"}
        )
    (alert,) = Alert.objects.filter(kind="mm_order_failed")
    assert alert.owner_id == order.owner_id
    assert alert.message == f"order {order.pk} failed while funding: custody transfer reverted"
    assert alert.detail == {"order": order.pk, "key": "fail-1", "reason": "custody transfer reverted"}


def test_a_failure_that_is_rolled_back_leaves_no_alert(order: MMOrder) -> None:
    services.mm_order_transition(order_id=order.pk, event=mm.Event.FUND, key="fund")
    too_much = transfer(
        "o-back-big", "reversal", asset="USDT", amount=9_999, source=f"transit:o{order.pk}", target="custody"
    )
    with pytest.raises(LedgerOverdraft):
        services.mm_order_transition(
            order_id=order.pk, event=mm.Event.FAIL, key="fail-1", ledger=[too_much], detail={"reason": "r"}
        )
    assert MMOrder.objects.get(pk=order.pk).state == "funding"
    assert not Alert.objects.filter(kind="mm_order_failed").exists()
