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


def attested_executors() -> list[ExecutorRecord]:
    """Executors whose last verification passed and that are not revoked: the public executors list."""
    return list(ExecutorRecord.objects.filter(state=ExecutorRecord.State.VERIFIED).order_by("id"))


def signing_key_attested(signing_key: str) -> AttestationRecord | None:
    """The accepted attestation that bound this report-signing key, if any (report ingestion requires one)."""
    return (
        AttestationRecord.objects.filter(signing_key=signing_key, ok=True)
        .exclude(executor__state=ExecutorRecord.State.REVOKED)
        .order_by("-id")
        .first()
    )


def platform_quotes() -> list[bytes]:
    """One recent accepted quote per platform (PCK certificate) among executors not revoked: what the
    collateral refresh fetches for."""
    import base64

    from attestation.collateral import platform_key

    seen: dict[str, bytes] = {}
    records = (
        AttestationRecord.objects.filter(ok=True)
        .exclude(quote_b64="")
        .exclude(executor__state=ExecutorRecord.State.REVOKED)
        .order_by("-id")
        .values_list("executor_id", "quote_b64")
    )
    executors: set[int] = set()
    for executor_id, quote_b64 in records.iterator():
        if executor_id in executors:
            continue
        executors.add(executor_id)
        quote = base64.b64decode(quote_b64)
        seen.setdefault(platform_key(quote), quote)
    return list(seen.values())
