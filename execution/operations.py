"""What the web process asks of an MM order (the API's operations), one service per operation: each finds the
caller's own order, refuses what can be refused there (typed, nothing queued), then changes state or queues the
rest for a worker on commit. The web process holds no master
key (ADR 0015): whatever needs an exchange key or the custody key runs in `execution.tasks`."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from execution import jobs, outbound, services, tasks
from execution.domain import mm_order as mm
from execution.errors import InvalidOrderTransition
from execution.homeward import withdraw_back_refusal
from execution.models import MMOrder
from mrmarket.errors import NotFound
from mrmarket.observability.logging import get_logger

log = get_logger(__name__)


def _owned(*, owner_id: int, order_id: int) -> MMOrder:
    order = MMOrder.objects.filter(pk=order_id, owner_id=owner_id).first()
    if order is None:
        raise NotFound(f"no MM order {order_id} of yours")
    return order


def mm_order_fund_request(*, owner_id: int, order_id: int) -> MMOrder:
    """Queue moving a created order's funds to the exchange (`tasks.fund_order`); progress shows in its timeline.
    The request is recorded with the order: queued again if the task is lost (`execution.redelivery`)."""
    order = _owned(owner_id=owner_id, order_id=order_id)
    if order.state != mm.State.CREATED:
        raise InvalidOrderTransition(f"order {order_id} is {order.state}; only a created order can be funded")
    order.fund_requested_at = timezone.now()
    order.save(update_fields=["fund_requested_at", "updated_at"])
    transaction.on_commit(lambda: tasks.fund_order.delay(order.pk))
    return order


def mm_order_stop_request(*, owner_id: int, order_id: int) -> MMOrder:
    """Stop an order (`services.mm_order_stop`) and, when it has a job, queue the job's wind-down."""
    order = _owned(owner_id=owner_id, order_id=order_id)
    stopped = services.mm_order_stop(order_id=order.pk, reason="operator")
    if stopped.job_id:
        transaction.on_commit(lambda: tasks.wind_down.delay(stopped.pk))
    return stopped


def mm_order_resume_request(*, owner_id: int, order_id: int) -> MMOrder:
    """Resume a paused order whose job its executor halted (`jobs.mm_order_resume_job`): the executor is asked at
    once (a signed control request; no exchange key is opened), and the order runs again when it agrees."""
    order = _owned(owner_id=owner_id, order_id=order_id)
    return jobs.mm_order_resume_job(order_id=order.pk)


def mm_order_withdraw_back_request(*, owner_id: int, order_id: int, treasury_account_id: int) -> MMOrder:
    """Queue a withdraw-back (the API calls this in the web process, which holds no master key to open the
    treasury key with, ADR 0015): what can be refused without the exchange is refused here, typed and with
    nothing queued; the rest runs in a worker (`tasks.withdraw_back`), whose progress shows in the order's state
    and timeline and whose refusals are alerted."""
    order = _owned(owner_id=owner_id, order_id=order_id)
    if order.state == mm.State.SETTLED:
        return order  # everything is home already
    withdraw_back_refusal(order, treasury_account_id)
    order.withdraw_back_requested_at = timezone.now()
    order.withdraw_back_treasury_id = treasury_account_id
    order.save(update_fields=["withdraw_back_requested_at", "withdraw_back_treasury", "updated_at"])
    transaction.on_commit(lambda: tasks.withdraw_back.delay(order_id, treasury_account_id))
    log.info("withdraw_back_queued", order_id=order_id, treasury_account=treasury_account_id)
    return order


def mm_order_refund_request(*, owner_id: int, order_id: int) -> MMOrder:
    """Refund an order that never traded (`outbound.mm_order_refund`): its funds are in custody already, so there is
    nothing to queue and no key to open; what cannot be refunded is refused, typed, with nothing changed."""
    order = _owned(owner_id=owner_id, order_id=order_id)
    return outbound.mm_order_refund(order_id=order.pk)
