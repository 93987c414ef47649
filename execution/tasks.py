"""Thin Celery tasks of the execution app: ids in, one service call, retries with backoff."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.db.models import Q

from execution import accounts, alert_rules, alert_webhook, homeward, jobs, outbound, reconciliation, redelivery
from execution.alerts import alert_rules_run
from execution.domain import mm_order as mm
from execution.domain import withdrawal as wd
from execution.errors import (
    ExecutorNotConfigured,
    ExecutorUnavailable,
    ReportRejected,
    RoutingRefused,
)
from execution.models import ExchangeAccount, MMOrder
from mrmarket.exchanges.errors import ExchangeUnavailable
from mrmarket.observability.logging import get_logger
from mrmarket.tasks import RetryingTask

log = get_logger(__name__)


class ExecutionTask(RetryingTask):
    """The one retry policy for every task that talks to an exchange, a chain node or an executor: an outage of
    the outside world (typed ExchangeUnavailable, or a connection that failed under web3/httpx) is retried with
    backoff; every step is idempotent, so a retry is never a second step."""

    autoretry_for = (ExchangeUnavailable, ConnectionError)


@shared_task(name="execution.reprobe_exchange_keys", ignore_result=True)
def reprobe_exchange_keys() -> None:
    for account_id in ExchangeAccount.objects.filter(status=ExchangeAccount.Status.ACTIVE).values_list("pk", flat=True):
        reprobe_exchange_key.delay(account_id)


@shared_task(name="execution.reprobe_exchange_key", base=ExecutionTask)
def reprobe_exchange_key(account_id: int) -> None:
    accounts.exchange_account_reprobe(account_id=account_id)


@shared_task(name="execution.track_deposits", ignore_result=True)
def track_deposits() -> None:
    # Each beat also replaces a custody transfer pending too long and resolves a used nonce (execution.custody); a
    # parked transfer waits for an operator (its alert is open), so it is not polled.
    states = [mm.State.FUNDING, mm.State.WITHDRAWING_TO_EXCHANGE, mm.State.DEPOSIT_CONFIRMING]
    pending = MMOrder.objects.filter(state__in=states).exclude(transfers__status="parked")
    for order_id in pending.values_list("pk", flat=True):
        track_deposit.delay(order_id)


@shared_task(name="execution.track_deposit", base=ExecutionTask)
def track_deposit(order_id: int) -> None:
    order = outbound.mm_order_track_deposit(order_id=order_id)
    if order.state == mm.State.DEPOSIT_CONFIRMED:
        start_job.delay(order_id)  # MM starts as soon as the deposit is confirmed


@shared_task(name="execution.fund_order", base=ExecutionTask)
def fund_order(order_id: int) -> None:
    outbound.mm_order_fund(order_id=order_id)


@shared_task(name="execution.track_withdrawals", ignore_result=True)
def track_withdrawals() -> None:
    # Every withdrawal in flight is tracked whatever its order's state: one asset's failure never strands another.
    wanted = Q(state=mm.State.WITHDRAWING_BACK) | Q(withdrawals__status__in=list(wd.IN_FLIGHT))
    for order_id in MMOrder.objects.filter(wanted).distinct().values_list("pk", flat=True):
        track_withdrawal.delay(order_id)


@shared_task(name="execution.track_withdrawal", base=ExecutionTask)
def track_withdrawal(order_id: int) -> None:
    homeward.mm_order_track_withdrawal(order_id=order_id)


@shared_task(name="execution.redeliver_requests", ignore_result=True)
def redeliver_requests() -> None:
    """Beat: the operator's fund and withdraw-back requests whose task was lost are queued again."""
    for kind, order_id, treasury_id in redelivery.mm_order_lost_requests():
        if kind == "fund":
            fund_order.delay(order_id)
        else:
            withdraw_back.delay(order_id, treasury_id)


@shared_task(name="execution.withdraw_back", base=ExecutionTask)
def withdraw_back(order_id: int, treasury_account_id: int) -> None:
    # Idempotent (ADR 0014): a retry, or a second request, never sends an asset twice.
    homeward.mm_order_withdraw_back_queued(order_id=order_id, treasury_account_id=treasury_account_id)


@shared_task(name="execution.reconcile", base=ExecutionTask)
def reconcile() -> None:
    reconciliation.reconcile_exchange_accounts()
    reconciliation.reconcile_custody()


# -- jobs on executors ----------------------------------------------------------------------------------------


@shared_task(name="execution.drive_jobs", ignore_result=True)
def drive_jobs() -> None:
    """Beat: every order with work on an executor gets its own task (thin, idempotent, row-locked steps)."""
    for order_id in MMOrder.objects.filter(state__in=[mm.State.DEPOSIT_CONFIRMED, mm.State.STARTING]).values_list(
        "pk", flat=True
    ):
        start_job.delay(order_id)
    for order_id in MMOrder.objects.filter(state__in=[mm.State.RUNNING, mm.State.PAUSED]).values_list("pk", flat=True):
        sync_job.delay(order_id)
    for order_id in MMOrder.objects.filter(state=mm.State.STOPPING).exclude(job_id="").values_list("pk", flat=True):
        wind_down.delay(order_id)


@shared_task(name="execution.start_job", base=ExecutionTask)
def start_job(order_id: int) -> None:
    try:
        jobs.mm_order_start_job(order_id=order_id)
    except (ExecutorUnavailable, ExecutorNotConfigured, RoutingRefused) as exc:
        # Nothing was routed: the order stays deposit_confirmed and the next beat tries again.
        log.warning("job_not_started", order_id=order_id, code=exc.code, error=exc.message)


@shared_task(name="execution.sync_job", base=ExecutionTask)
def sync_job(order_id: int) -> None:
    try:
        jobs.mm_order_sync_job(order_id=order_id)
    except (ExecutorUnavailable, ReportRejected, ExecutorNotConfigured, RoutingRefused) as exc:
        log.warning("job_sync_failed", order_id=order_id, code=exc.code, error=exc.message)  # alerted; next beat


@shared_task(name="execution.revoke_job", base=ExecutionTask)
def revoke_job(order_id: int) -> None:
    jobs.mm_order_revoke_job(order_id=order_id)


@shared_task(name="execution.wind_down", base=ExecutionTask)
def wind_down(order_id: int) -> None:
    try:
        jobs.mm_order_wind_down(order_id=order_id)
    except ExecutorUnavailable as exc:
        log.warning("executor_unavailable", order_id=order_id, error=exc.message)


# -- alerts ---------------------------------------------------------------------------------------------------


@shared_task(name="execution.evaluate_alert_rules", ignore_result=True)
def evaluate_alert_rules() -> None:
    """Beat: each of execution's alert rules, on its own (one that fails is logged, the others still run)."""
    alert_rules_run(alert_rules.RULES)


@shared_task(name="execution.deliver_alert_webhook", base=RetryingTask, bind=True)
def deliver_alert_webhook(self: RetryingTask, delivery_id: int) -> None:
    """One attempt at one alert event; a failure that may pass is retried when its row says (the row bounds the
    attempts; the sweep queues it again should this task be lost)."""
    attempt = alert_webhook.alert_delivery_attempt(delivery_id=delivery_id)
    if attempt.outcome in ("failed", "not_due") and attempt.retry_in is not None:
        raise self.retry(countdown=attempt.retry_in, max_retries=2 * settings.ALERT_WEBHOOK_MAX_ATTEMPTS)


@shared_task(name="execution.sweep_alert_webhooks", ignore_result=True)
def sweep_alert_webhooks() -> None:
    for delivery_id in alert_webhook.alert_deliveries_due():
        deliver_alert_webhook.delay(delivery_id)
