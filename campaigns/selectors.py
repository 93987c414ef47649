"""Reads of the campaigns app: discovery and detail for the public pages and API."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from campaigns.models import Campaign, CampaignMetadata


class CampaignStatus(StrEnum):
    UNFUNDED = "unfunded"
    UPCOMING = "upcoming"
    ACTIVE = "active"
    SETTLING = "settling"  # ended, within the dispute window: results and payouts may still be published
    CLOSED = "closed"


def campaign_status(campaign: Campaign, *, now: datetime | None = None) -> CampaignStatus:
    now = now or timezone.now()
    if not campaign.funded:
        return CampaignStatus.UNFUNDED
    if now < campaign.start:
        return CampaignStatus.UPCOMING
    if now < campaign.end:
        return CampaignStatus.ACTIVE
    if (now - campaign.end).total_seconds() < campaign.dispute_window_seconds:
        return CampaignStatus.SETTLING
    return CampaignStatus.CLOSED


def campaign_list(
    *,
    chain_id: int | None = None,
    status: CampaignStatus | None = None,
    token: str | None = None,
    exchange: str | None = None,
    pair: str | None = None,
) -> list[Campaign]:
    qs: QuerySet[Campaign] = Campaign.objects.order_by("-created_block", "address")
    if chain_id is not None:
        qs = qs.filter(chain_id=chain_id)
    if exchange:
        qs = qs.filter(exchange=exchange)
    if pair:
        qs = qs.filter(pair=pair.upper())
    if token:
        qs = qs.filter(token=token.lower())
    campaigns = list(qs[:500])
    if status is not None:
        now = timezone.now()
        campaigns = [c for c in campaigns if campaign_status(c, now=now) == status]
    return campaigns


def campaign_get(*, chain_id: int, address: str) -> Campaign | None:
    return Campaign.objects.filter(chain_id=chain_id, address=address.lower()).first()


def campaign_metadata_get(*, metadata_hash: str) -> dict[str, Any] | None:
    row = CampaignMetadata.objects.filter(hash=metadata_hash.lower()).first()
    return dict(row.document) if row is not None else None
