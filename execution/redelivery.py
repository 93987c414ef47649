"""The operator's requests that run in a worker (fund, withdraw back) are recorded with their order before their
task is queued (`execution.operations`). The broker may lose a queued task (Redis keeps its queue in memory), and a
worker killed while holding one keeps it from the others until the broker's visibility timeout; the beat then
queues it again (`tasks.redeliver_requests`). Both tasks are idempotent under the order's row lock, so one that
was only slow runs twice to no effect."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from execution.domain import mm_order as mm
from execution.models import MMOrder
from mrmarket.observability.logging import get_logger

log = get_logger(__name__)


def mm_order_lost_requests(*, older_than_seconds: int | None = None) -> list[tuple[str, int, int | None]]:
    """Claim the requests whose task never got to its first step, to be queued again: a funding of an order still
    `created`, and a withdraw-back of an order `stopping` with its job released and no withdrawal recorded,
    requested more than `REQUEST_REDELIVERY_SECONDS` ago. Each claim moves the request's time on, so a request is
    redelivered at most once per period, by one beat. Returns ("fund" | "withdraw_back", order id, treasury id)."""
    age = settings.REQUEST_REDELIVERY_SECONDS if older_than_seconds is None else older_than_seconds
    due = timezone.now() - timedelta(seconds=age)
    claimed: list[tuple[str, int, int | None]] = []
    funding = MMOrder.objects.filter(state=mm.State.CREATED, fund_requested_at__lte=due)
    for order_id in list(funding.values_list("pk", flat=True)):
        if funding.filter(pk=order_id).update(fund_requested_at=timezone.now()):
            claimed.append(("fund", order_id, None))
    homeward = MMOrder.objects.filter(
        state=mm.State.STOPPING,
        job_id="",
        withdraw_back_requested_at__lte=due,
        withdraw_back_treasury__isnull=False,
        withdrawals__isnull=True,
    )
    for order_id, treasury_id in list(homeward.values_list("pk", "withdraw_back_treasury_id")):
        if MMOrder.objects.filter(pk=order_id, withdraw_back_requested_at__lte=due).update(
            withdraw_back_requested_at=timezone.now()
        ):
            claimed.append(("withdraw_back", order_id, treasury_id))
    for kind, order_id, _ in claimed:
        log.warning("request_redelivered", request=kind, order_id=order_id, older_than_s=age)
    return claimed
