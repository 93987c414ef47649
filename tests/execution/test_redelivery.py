"""The operator's fund and withdraw-back requests are recorded with their order before their task is queued; a
task the broker lost (or a killed worker held) is queued again by the beat (`execution.redelivery`), once per
period, and never for a request that ran, moved on, or was refused."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from execution import accounts, homeward, operations, redelivery, tasks
from execution.errors import OrderRejected
from execution.models import ExchangeAccount, ExchangeWithdrawal, MMOrder
from mrmarket.exchanges.credentials import ExchangeCredentials
from tests.factories import user_with

pytestmark = pytest.mark.django_db
LONG_AGO = timedelta(minutes=30)


def _account(owner_id: int, role: ExchangeAccount.Role, key: str) -> ExchangeAccount:
    return accounts.exchange_account_store(
        owner_id=owner_id,
        exchange="binance",
        label=role,
        role=role,
        credentials=ExchangeCredentials(api_key=key, secret="s"),
    )


@pytest.fixture
def order() -> MMOrder:
    owner = user_with()
    trading = _account(owner.pk, ExchangeAccount.Role.TRADING, "key-0001")
    return MMOrder.objects.create(
        owner=owner, exchange_account=trading, symbol="MRM/USDT", funding_asset="USDT", funding_amount=1_000
    )


@pytest.fixture
def treasury(order: MMOrder) -> ExchangeAccount:
    return _account(order.owner_id, ExchangeAccount.Role.TREASURY, "key-0002")


def test_a_fund_request_is_recorded_before_its_task_is_queued(
    order: MMOrder, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued: list[int] = []
    monkeypatch.setattr(tasks.fund_order, "delay", queued.append)
    with django_capture_on_commit_callbacks(execute=True):
        operations.mm_order_fund_request(owner_id=order.owner_id, order_id=order.pk)
    order.refresh_from_db()
    assert order.fund_requested_at is not None
    assert queued == [order.pk]


def test_a_lost_fund_request_is_queued_again_once_per_period(order: MMOrder, monkeypatch: pytest.MonkeyPatch) -> None:
    MMOrder.objects.filter(pk=order.pk).update(fund_requested_at=timezone.now() - LONG_AGO)
    queued: list[int] = []
    monkeypatch.setattr(tasks.fund_order, "delay", queued.append)
    tasks.redeliver_requests()
    assert queued == [order.pk]
    tasks.redeliver_requests()  # the next beat, before another period passed: not again
    assert queued == [order.pk]
    order.refresh_from_db()
    assert order.fund_requested_at is not None
    assert timezone.now() - order.fund_requested_at < timedelta(minutes=1)


def test_nothing_is_queued_again_for_a_recent_request_or_one_that_ran(order: MMOrder) -> None:
    MMOrder.objects.filter(pk=order.pk).update(fund_requested_at=timezone.now())
    assert redelivery.mm_order_lost_requests() == []  # within the period: its task may still be on its way
    MMOrder.objects.filter(pk=order.pk).update(fund_requested_at=timezone.now() - LONG_AGO, state="funding")
    assert redelivery.mm_order_lost_requests() == []  # it ran: the beats that follow a funding take it on
    MMOrder.objects.filter(pk=order.pk).update(state="created", fund_requested_at=None)
    assert redelivery.mm_order_lost_requests() == []  # never requested


def test_a_lost_withdraw_back_is_queued_again_with_its_treasury_key(
    order: MMOrder, treasury: ExchangeAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    MMOrder.objects.filter(pk=order.pk).update(
        state="stopping", withdraw_back_requested_at=timezone.now() - LONG_AGO, withdraw_back_treasury=treasury
    )
    queued: list[tuple[int, int]] = []
    monkeypatch.setattr(tasks.withdraw_back, "delay", lambda o, t: queued.append((o, t)))
    tasks.redeliver_requests()
    assert queued == [(order.pk, treasury.pk)]


def test_a_withdraw_back_that_ran_or_waits_for_its_job_is_not_queued_again(
    order: MMOrder, treasury: ExchangeAccount
) -> None:
    MMOrder.objects.filter(pk=order.pk).update(
        state="stopping",
        job_id="job-1",
        withdraw_back_requested_at=timezone.now() - LONG_AGO,
        withdraw_back_treasury=treasury,
    )
    assert redelivery.mm_order_lost_requests() == []  # the job still winds down: withdraw-back would refuse
    MMOrder.objects.filter(pk=order.pk).update(job_id="")
    ExchangeWithdrawal.objects.create(
        order=order, treasury_account=treasury, client_id="w1", asset="USDT", amount=1_000, to_address="0x" + "1" * 40
    )
    assert redelivery.mm_order_lost_requests() == []  # it ran: its withdrawals are tracked by their own beat


def test_a_refused_withdraw_back_is_not_queued_again(
    order: MMOrder, treasury: ExchangeAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    MMOrder.objects.filter(pk=order.pk).update(
        state="stopping", withdraw_back_requested_at=timezone.now() - LONG_AGO, withdraw_back_treasury=treasury
    )

    def refuse(**_: Any) -> MMOrder:
        raise OrderRejected("the treasury key belongs to another exchange account than the order's")

    monkeypatch.setattr(homeward, "mm_order_withdraw_back", refuse)
    assert homeward.mm_order_withdraw_back_queued(order_id=order.pk, treasury_account_id=treasury.pk) is None
    order.refresh_from_db()
    assert order.withdraw_back_requested_at is None  # the operator sees the alert and asks again
    assert redelivery.mm_order_lost_requests() == []


def test_a_withdraw_back_request_is_recorded_with_its_treasury_key_before_its_task_is_queued(
    order: MMOrder, treasury: ExchangeAccount, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    MMOrder.objects.filter(pk=order.pk).update(state="stopping")
    queued: list[tuple[int, int]] = []
    monkeypatch.setattr(tasks.withdraw_back, "delay", lambda o, t: queued.append((o, t)))
    with django_capture_on_commit_callbacks(execute=True):
        operations.mm_order_withdraw_back_request(
            owner_id=order.owner_id, order_id=order.pk, treasury_account_id=treasury.pk
        )
    order.refresh_from_db()
    assert order.withdraw_back_requested_at is not None
    assert order.withdraw_back_treasury_id == treasury.pk
    assert queued == [(order.pk, treasury.pk)]
