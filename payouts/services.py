"""Writes of the payouts app: `<entity>_<action>(*, ...)`, typed, atomic, idempotent where they touch the outside."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from payouts.errors import SnapshotInvalid
from payouts.models import BookSnapshot

# --- Market-data recorder ---------------------------------------------------------------------------------------


@transaction.atomic
def book_snapshot_record(
    *,
    campaign_id: int,
    t_ms: int,
    book: dict[str, Any] | None,
    exchange_ts_ms: int | None,
    recorded_ms: int,
    source: str,
    gap_reason: str = "",
) -> bool:
    """Store the book (or the gap) of one sample time once: a second write for the same (campaign, t_ms), from
    a retry or a restarted recorder, changes nothing and returns False."""
    if (book is None) != bool(gap_reason):
        raise SnapshotInvalid("a snapshot has either a book or a gap reason", extra={"t_ms": t_ms})
    if book is not None and source not in BookSnapshot.Source.values:
        raise SnapshotInvalid(f"unknown source {source!r}", extra={"t_ms": t_ms})
    _, created = BookSnapshot.objects.get_or_create(
        campaign_id=campaign_id,
        t_ms=t_ms,
        defaults={
            "book": book,
            "exchange_ts_ms": exchange_ts_ms,
            "recorded_ms": recorded_ms,
            "source": source,
            "gap_reason": gap_reason,
        },
    )
    return created
