"""Reads of the payouts app."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from campaigns.models import Campaign, CampaignMetadata
from payouts.domain.recorder import shard_of, stored_book
from payouts.domain.scoring.inputs import Snapshot
from payouts.models import BookSnapshot

# --- Market-data recorder ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedCampaign:
    """What the recorder needs of one campaign: its market, its sample grid and its scoring band."""

    campaign_id: int
    chain_id: int
    address: str
    exchange: str
    symbol: str
    start_ms: int
    end_ms: int
    sample_ms: int
    max_spread_bps: int


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def recorder_campaigns(*, now: datetime, shard: int, shards: int) -> list[RecordedCampaign]:
    """The campaigns shard `shard` of `shards` records now: running ([start, end) holds `now`), on a known
    market, with a metadata document that carries scoring parameters."""
    running = Campaign.objects.filter(start__lte=now, end__gt=now).exclude(exchange="").exclude(pair="")
    mine = [c for c in running if shard_of(chain_id=c.chain_id, address=c.address, shards=shards) == shard]
    documents = dict(
        CampaignMetadata.objects.filter(hash__in={c.metadata_hash for c in mine}).values_list("hash", "document")
    )
    out: list[RecordedCampaign] = []
    for c in sorted(mine, key=lambda c: c.pk):
        scoring = (documents.get(c.metadata_hash) or {}).get("scoring") or {}
        sample_seconds, max_spread_bps = scoring.get("sample_seconds"), scoring.get("max_spread_bps")
        if not isinstance(sample_seconds, int) or not isinstance(max_spread_bps, int) or sample_seconds <= 0:
            continue  # no verified document yet: nothing says when to sample or what to keep
        out.append(
            RecordedCampaign(
                campaign_id=c.pk,
                chain_id=c.chain_id,
                address=c.address,
                exchange=c.exchange,
                symbol=c.pair,
                start_ms=_ms(c.start),
                end_ms=_ms(c.end),
                sample_ms=sample_seconds * 1000,
                max_spread_bps=max_spread_bps,
            )
        )
    return out


def epoch_snapshots(*, campaign: Campaign, sample_times: Sequence[int]) -> list[Snapshot]:
    """The recorded book at each sample time, in the order asked; a sample time with no row, or a row without
    a book, is a gap (`book=None`)."""
    found = BookSnapshot.objects.filter(campaign=campaign, t_ms__in=set(sample_times), book__isnull=False)
    books = {t: stored_book(book) for t, book in found.values_list("t_ms", "book") if book is not None}
    return [Snapshot(t_ms=t, book=books.get(t)) for t in sample_times]
