"""Thin Celery tasks of the campaigns app: ids in, one service call, retries with backoff."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from campaigns.indexer import chain_index
from mrmarket.chain import get_web3
from mrmarket.observability.logging import get_logger
from mrmarket.tasks import RetryingTask

log = get_logger(__name__)


@shared_task(base=RetryingTask, name="campaigns.index_chain")  # a node that refused or timed out: retried
def index_chain() -> None:
    if not settings.CAMPAIGN_FACTORY_ADDRESS or not settings.CHAIN_RPC_URL:
        return  # not configured: nothing to follow
    chain_index(w3=get_web3(), factory=settings.CAMPAIGN_FACTORY_ADDRESS, confirmations=settings.CHAIN_CONFIRMATIONS)
