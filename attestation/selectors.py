"""Reads of the attestation app."""

from __future__ import annotations

from attestation.domain.allowlist import Measurements, Rule, first_match
from attestation.models import AttestationRecord, ExecutorRecord, MeasurementEntry


def allowlist_rules(*, service: str = "mm-executor") -> list[Rule]:
    entries = MeasurementEntry.objects.filter(service=service, removed_at__isnull=True).order_by("id")
    return [Rule(e.pk, e.service, e.mrtd, (e.rtmr0, e.rtmr1, e.rtmr2, e.rtmr3)) for e in entries]


def measurement_allowed(*, measured: Measurements, service: str = "mm-executor") -> MeasurementEntry | None:
    rule = first_match(allowlist_rules(service=service), service, measured)
    return MeasurementEntry.objects.get(pk=rule.id) if rule is not None else None


def signing_key_attested(signing_key: str) -> AttestationRecord | None:
    """The accepted attestation that bound this report-signing key, if any (report ingestion requires one)."""
    return (
        AttestationRecord.objects.filter(signing_key=signing_key, ok=True)
        .exclude(executor__state=ExecutorRecord.State.REVOKED)
        .order_by("-id")
        .first()
    )
