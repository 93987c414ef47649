"""Reads of the attestation app."""

from __future__ import annotations

import base64

from django.conf import settings

from attestation.collateral import platform_key
from attestation.domain.allowlist import Measurements, Rule, first_match, unpinned
from attestation.models import AllowlistAudit, AttestationRecord, ExecutorRecord, MeasurementEntry


def allowlist_rules(*, service: str = "mm-executor") -> list[Rule]:
    entries = MeasurementEntry.objects.filter(service=service, removed_at__isnull=True).order_by("id")
    return [Rule(e.pk, e.service, e.mrtd, (e.rtmr0, e.rtmr1, e.rtmr2, e.rtmr3)) for e in entries]


def required_rtmrs() -> frozenset[int]:
    return frozenset(settings.ATTESTATION_REQUIRED_RTMRS)


def measurement_allowed(*, measured: Measurements, service: str = "mm-executor") -> MeasurementEntry | None:
    rule = first_match(allowlist_rules(service=service), service, measured, required_rtmrs())
    return MeasurementEntry.objects.get(pk=rule.id) if rule is not None else None


def measurement_refusal(*, measured: Measurements, service: str = "mm-executor") -> str:
    """Why no entry matched, for the record: an unknown MRTD, or an allowlisted one with other registers."""
    same = [rule for rule in allowlist_rules(service=service) if rule.mrtd == measured.mrtd]
    if not same:
        return f"MRTD {measured.mrtd[:16]}… is not allowlisted"
    pinned = [rule for rule in same if not unpinned(rule.rtmrs, required_rtmrs())]
    if not pinned:
        return f"MRTD {measured.mrtd[:16]}… is allowlisted only by entries that do not pin the required RTMRs"
    differ = sorted({i for rule in pinned for i in rule.mismatched(measured)})
    return f"MRTD {measured.mrtd[:16]}… is allowlisted but {', '.join(f'rtmr{i}' for i in differ)} differ"


def attested_executors() -> list[ExecutorRecord]:
    """Executors whose last verification passed and that are not revoked: the public executors list."""
    return list(ExecutorRecord.objects.filter(state=ExecutorRecord.State.VERIFIED).order_by("id"))


# An executor in good standing: its last verification passed (it may have missed a check since, see
# `services.executor_checked`). Reports of any other executor — revoked, or failed its last verification — are
# refused.
STANDING_STATES = (ExecutorRecord.State.VERIFIED, ExecutorRecord.State.UNREACHABLE)


def signing_key_attested(signing_key: str) -> AttestationRecord | None:
    """The accepted attestation that bound this report-signing key, if any, on an executor still in good standing
    (report ingestion requires one)."""
    return (
        AttestationRecord.objects.filter(signing_key=signing_key, ok=True, executor__state__in=STANDING_STATES)
        .order_by("-id")
        .first()
    )


# Trust withdrawn by the registry: the executor failed its last verification or its build left the allowlist.
# An unreachable one has not lost it (`services.executor_checked`), nor has one never verified.
DISTRUSTED_STATES = (ExecutorRecord.State.FAILED, ExecutorRecord.State.REVOKED)


def executor_trust_withdrawn(*, url: str) -> bool:
    """Whether the executor at `url` lost the trust its jobs were provisioned under: what every job's sync asks,
    so that a revocation whose event (`signals.executors_lost_trust`) was lost still reaches its jobs."""
    return ExecutorRecord.objects.filter(url=url, state__in=DISTRUSTED_STATES).exists()


def platform_quotes() -> list[bytes]:
    """One recent accepted quote per platform (PCK certificate) among executors not revoked: what the
    collateral refresh fetches for."""
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


def allowlist_published(*, service: str | None = None) -> tuple[list[MeasurementEntry], list[AllowlistAudit]]:
    """The allowlist as the public sees it: every entry ever approved (active and removed, oldest first) and every
    change to it, in order. Who made a change stays internal (staff accounts are not public)."""
    entries = MeasurementEntry.objects.order_by("id")
    audit = AllowlistAudit.objects.select_related("entry").order_by("id")
    if service is not None:
        entries, audit = entries.filter(service=service), audit.filter(entry__service=service)
    return list(entries), list(audit)
