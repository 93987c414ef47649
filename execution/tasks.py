"""Thin Celery tasks of the execution app: ids in, one service call, retries with backoff."""

from __future__ import annotations

from celery import shared_task

from execution import services
from execution.errors import ExchangeUnavailable
from execution.models import ExchangeAccount
from mrmarket.observability.logging import get_logger

log = get_logger(__name__)


@shared_task(name="execution.reprobe_exchange_keys", ignore_result=True)
def reprobe_exchange_keys() -> None:
    for account_id in ExchangeAccount.objects.filter(status=ExchangeAccount.Status.ACTIVE).values_list("pk", flat=True):
        reprobe_exchange_key.delay(account_id)


@shared_task(
    name="execution.reprobe_exchange_key",
    ignore_result=True,
    autoretry_for=(ExchangeUnavailable,),
    retry_backoff=True,
    max_retries=5,
)
def reprobe_exchange_key(account_id: int) -> None:
    services.exchange_account_reprobe(account_id=account_id)
