"""Thin Celery tasks of the payouts app: ids in, one service call, retries with backoff.

One task per (campaign, epoch): `close_epochs` (beat) only finds what is due and queues `close_epoch` for each, so
closes of many campaigns spread over the workers and a slow exchange holds up only its own campaign.
"""

from __future__ import annotations

from typing import ClassVar

from celery import current_task, shared_task
from django.conf import settings

from execution.alerts import alert_rules_run
from mrmarket.exchanges.errors import ExchangeUnavailable
from mrmarket.observability.logging import get_logger
from mrmarket.tasks import RetryingTask
from payouts import alert_rules, closing, oracle_tx, paying
from payouts.errors import OracleChainUnavailable

log = get_logger(__name__)


class OracleTask(RetryingTask):
    """An exchange or a chain node that is down is an outage: retried with backoff, the close stays where it is."""

    autoretry_for: ClassVar[tuple[type[BaseException], ...]] = (
        ConnectionError,
        TimeoutError,
        ExchangeUnavailable,
        OracleChainUnavailable,  # the node refused or did not answer a broadcast: retry later, as it says
    )


@shared_task(base=OracleTask, name="payouts.close_epochs")
def close_epochs() -> None:
    due = closing.epoch_closes_due()
    for close_id in due:
        close_epoch.delay(close_id)
    if due:
        log.info("epoch_closes_queued", closes=len(due))


@shared_task(base=OracleTask, name="payouts.close_epoch")
def close_epoch(close_id: int) -> None:
    closing.epoch_close_advance(close_id=close_id, worker=str(current_task.request.id or "worker"))


@shared_task(base=OracleTask, name="payouts.preview_epochs")
def preview_epochs() -> None:
    for campaign_id in closing.epoch_previews_due():
        preview_epoch.delay(campaign_id)


@shared_task(base=OracleTask, name="payouts.preview_epoch", max_retries=1)
def preview_epoch(campaign_id: int) -> None:
    closing.epoch_preview_refresh(campaign_id=campaign_id)


@shared_task(base=OracleTask, name="payouts.pay_epochs")
def pay_epochs() -> None:
    due = paying.epoch_payouts_due()
    for payout_id in due:
        pay_epoch.delay(payout_id)
    if due:
        log.info("epoch_payouts_queued", payouts=len(due))


@shared_task(base=OracleTask, name="payouts.pay_epoch")
def pay_epoch(payout_id: int) -> None:
    paying.epoch_payout_advance(payout_id=payout_id)


@shared_task(base=OracleTask, name="payouts.sweep_oracle_txs")
def sweep_oracle_txs() -> None:
    """The safety net under every oracle transaction: each one still unsettled after a while is advanced (sent,
    settled, bumped or parked) even if what signed it never comes back to it."""
    for tx_id in oracle_tx.oracle_txs_unsettled(older_than_seconds=settings.ORACLE_TX_SWEEP_AFTER_SECONDS):
        advance_oracle_tx.delay(tx_id)


@shared_task(base=OracleTask, name="payouts.advance_oracle_tx")
def advance_oracle_tx(tx_id: int) -> None:
    oracle_tx.oracle_tx_advance(tx_id=tx_id)


@shared_task(name="payouts.evaluate_alert_rules", ignore_result=True)
def evaluate_alert_rules() -> None:
    """Beat: the alert rules that read the oracle's book snapshots and the jobs' reports against campaign bands."""
    alert_rules_run(alert_rules.RULES)
