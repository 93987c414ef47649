"""Reads of the payouts app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.files.storage import storages

from execution.models import ExecutionReport
from payouts.models import EpochClose, EpochPreview

ARTIFACT_STORAGE = "oracle_artifacts"
ARTIFACT_KINDS = ("inputs", "bundle")

# --- Epoch closes and their artifacts ------------------------------------------------------------------------------


def epoch_close_list(*, chain_id: int, address: str) -> list[EpochClose]:
    return list(
        EpochClose.objects.filter(campaign__chain_id=chain_id, campaign__address=address.lower())
        .select_related("campaign")
        .order_by("epoch")
    )


def epoch_close_get(*, chain_id: int, address: str, epoch: int) -> EpochClose | None:
    return (
        EpochClose.objects.filter(campaign__chain_id=chain_id, campaign__address=address.lower(), epoch=epoch)
        .select_related("campaign")
        .first()
    )


def epoch_artifact(*, close: EpochClose, kind: str) -> bytes | None:
    """The stored bytes of an epoch's inputs or bundle; None before they are stored."""
    name = {"inputs": close.inputs_name, "bundle": close.bundle_name}[kind]
    if not name:
        return None
    with storages[ARTIFACT_STORAGE].open(name, "rb") as stored:
        data: bytes = stored.read()
    return data


def report_envelope(*, digest: str) -> str | None:
    """A verified report's envelope as it was verified (canonical JSON), by its digest."""
    row = ExecutionReport.objects.filter(digest=digest.lower()).only("envelope").first()
    return None if row is None else row.envelope


@dataclass(frozen=True)
class ParticipantEstimate:
    """A participant's running figures in the open epoch, from the latest preview (exact integers; the share a
    reduced fraction)."""

    epoch: int
    as_of_ms: int
    depth_points: int
    volume_cents: int
    share: str
    estimated_reward: int  # reward token base units, if the epoch ended at `as_of_ms`
    flags: dict[str, Any]
    exclusions: list[dict[str, Any]]


def participant_estimate(*, campaign_id: int, address: str) -> ParticipantEstimate | None:
    preview = EpochPreview.objects.filter(campaign_id=campaign_id).first()
    if preview is None:
        return None
    entry = next((p for p in preview.bundle["participants"] if p["address"] == address.lower()), None)
    if entry is None:
        return None
    return ParticipantEstimate(
        epoch=preview.epoch,
        as_of_ms=preview.as_of_ms,
        depth_points=int(entry["depth"]),
        volume_cents=int(entry["volume"]),
        share=str(entry["share"]),
        estimated_reward=int(entry["amount"]),
        flags=dict(entry["flags"]),
        exclusions=list(entry["exclusions"]),
    )
