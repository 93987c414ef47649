"""Thin Celery tasks of the campaigns app: ids in, one service call, retries with backoff."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from campaigns.indexer import chain_index
from mrmarket.chain import get_web3
from mrmarket.observability.logging import get_logger

log = get_logger(__name__)


@shared_task(
    name="campaigns.index_chain",
    ignore_result=True,
    autoretry_for=(ConnectionError, TimeoutError),
    retry_backoff=True,
    max_retries=5,
)
def index_chain() -> None:
    if not settings.CAMPAIGN_FACTORY_ADDRESS or not settings.CHAIN_RPC_URL:
        return  # not configured: nothing to follow
    chain_index(w3=get_web3(), factory=settings.CAMPAIGN_FACTORY_ADDRESS, confirmations=settings.CHAIN_CONFIRMATIONS)
