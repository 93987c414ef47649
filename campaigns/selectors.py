"""Reads of the campaigns app: discovery and detail for the public pages and API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from web3 import Web3

from campaigns.domain.depth import Market, market_shard
from campaigns.models import Campaign, CampaignEvent, CampaignMetadata
from execution.domain.units import for_people


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


# --- Discovery for the landing page: every campaign of every configured chain, as a card ------------------------


@dataclass(frozen=True)
class CampaignCard:
    """One campaign as the landing page lists it; amounts in base units, with what a person needs to read them."""

    campaign: Campaign
    status: CampaignStatus
    title: str
    symbol: str  # "" when the metadata does not name the campaign's own token
    decimals: int | None  # None: amounts are shown in base units
    budget_left: int  # budget − published fees − paid − refunded, from the indexed events
    epochs: int


def reward_token(campaign: Campaign, metadata: dict[str, Any]) -> tuple[str, int | None]:
    """The token's symbol and decimals from the campaign's metadata document (verified by its on-chain hash), when
    it names the campaign's own token; otherwise no decimals (and amounts are shown in base units)."""
    token = metadata.get("reward_token")
    if not isinstance(token, dict) or str(token.get("address", "")).lower() != campaign.token.lower():
        return "", None
    symbol, decimals = token.get("symbol"), token.get("decimals")
    if not isinstance(decimals, int) or isinstance(decimals, bool) or not 0 <= decimals <= 36:
        return "", None
    return (symbol if isinstance(symbol, str) else ""), decimals


def campaign_cards(
    *,
    chain_id: int | None = None,
    status: CampaignStatus | None = None,
    exchange: str | None = None,
    pair: str | None = None,
    with_budget_left: bool = False,
) -> list[CampaignCard]:
    """Campaign discovery over every chain the indexer mirrors (one selector, seed 6.2), newest first."""
    campaigns = campaign_list(chain_id=chain_id, status=status, exchange=exchange, pair=pair)
    documents = campaign_metadata_documents(campaigns)
    fees: dict[int, int] = {}
    published = CampaignEvent.objects.filter(
        campaign__in=campaigns, kind=CampaignEvent.Kind.PAYOUT_PUBLISHED
    ).values_list("campaign_id", "data")
    for campaign_id, data in published:
        fees[campaign_id] = fees.get(campaign_id, 0) + int(data.get("fee", 0))
    now = timezone.now()
    cards = []
    for campaign in campaigns:
        metadata = documents.get(campaign.metadata_hash.lower())
        metadata = metadata if isinstance(metadata, dict) else {}
        symbol, decimals = reward_token(campaign, metadata)
        left = campaign.budget - fees.get(campaign.pk, 0) - campaign.paid_out - campaign.refunded
        if with_budget_left and left <= 0:
            continue
        title = metadata.get("title")
        span = int((campaign.end - campaign.start).total_seconds())
        cards.append(
            CampaignCard(
                campaign=campaign,
                status=campaign_status(campaign, now=now),
                title=title if isinstance(title, str) and title else f"{campaign.pair or 'campaign'}",
                symbol=symbol,
                decimals=decimals,
                budget_left=max(left, 0),
                epochs=-(-span // campaign.epoch_seconds),
            )
        )
    return cards


def campaign_facets() -> dict[str, list[Any]]:
    """The values the landing page's filters offer: every chain, exchange and pair with a campaign."""
    rows = Campaign.objects.values_list("chain_id", "exchange", "pair")
    return {
        "chains": sorted({chain for chain, _, _ in rows}),
        "exchanges": sorted({exchange for _, exchange, _ in rows if exchange}),
        "pairs": sorted({pair for _, _, pair in rows if pair}),
    }


def token_units_text(campaign: Campaign, units: int, metadata: dict[str, Any] | None) -> str | None:
    """Base units of the campaign's reward token as a person reads them ("2,500.5 USDT"), or None when the
    metadata does not say the token's decimals (the base units are then all there is)."""
    symbol, decimals = reward_token(campaign, metadata or {})
    return None if decimals is None else for_people(units, decimals, symbol)


def campaign_metadata_documents(campaigns: list[Campaign]) -> dict[str, dict[str, Any]]:
    """The metadata documents of these campaigns we hold, by lower-case hash: one query for a whole listing."""
    rows = CampaignMetadata.objects.filter(hash__in={c.metadata_hash.lower() for c in campaigns})
    return {row.hash.lower(): row.document for row in rows if isinstance(row.document, dict)}


def depth_feed_markets(*, now: datetime, shard: int, shards: int) -> list[Market]:
    """The markets shard `shard` of `shards` of the live-depth producer keeps: those of the funded campaigns not
    ended yet (a page opened before the start shows the book it will score), each market once however many
    campaigns share it, sharded by market. An unfunded campaign makes no stream run."""
    running = Campaign.objects.filter(end__gt=now, funded=True).exclude(exchange="").exclude(pair="")
    markets = {Market(exchange, pair) for exchange, pair in running.values_list("exchange", "pair").distinct()}
    return sorted((m for m in markets if market_shard(m, shards=shards) == shard), key=lambda m: (m.exchange, m.symbol))


def known_reward_tokens(*, chain_id: int) -> list[tuple[str, str]]:
    """The reward tokens campaigns on this chain already use, as (address, symbol or ""), for the wizard to
    suggest: a creator still types or pastes any token, and the wizard reads it from the chain either way."""
    campaigns = list(Campaign.objects.filter(chain_id=chain_id).order_by("-pk")[:200])
    documents = campaign_metadata_documents(campaigns)
    seen: dict[str, str] = {}
    for campaign in campaigns:
        symbol, _ = reward_token(campaign, documents.get(campaign.metadata_hash.lower(), {}))
        seen.setdefault(Web3.to_checksum_address(campaign.token), symbol)
    return sorted(seen.items(), key=lambda item: (item[1], item[0]))
