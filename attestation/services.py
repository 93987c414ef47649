"""Writes of the attestation app: `<entity>_<action>(*, ...)`, typed, atomic.

Nonces: issued by us, random, short-lived, consumed once (a replayed quote can never be accepted twice).
Allowlist: entries added and removed only here, each change recorded in the audit log in the same transaction.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.forms.models import model_to_dict
from django.utils import timezone

from attestation.domain.allowlist import MeasurementFormatError, MeasurementUnpinnedError, normalize, require_pinned
from attestation.errors import (
    AllowlistConflict,
    InvalidMeasurement,
    MeasurementImageMismatch,
    MeasurementUnmeasuredWorkload,
    MeasurementUnpinned,
    NonceExpired,
    NonceReused,
    NonceUnknown,
)
from attestation.models import (
    AllowlistAudit,
    AttestationNonce,
    AttestationRecord,
    ExecutorRecord,
    IdentityObservation,
    MeasurementEntry,
)
from attestation.selectors import required_rtmrs
from attestation.signals import executors_lost_trust
from mrmarket.observability import context
from mrmarket.observability.logging import get_logger
from wire.measurement import MeasurementError, expected_rtmr3

log = get_logger(__name__)
UNMEASURED_RTMR = "00" * 48


def nonce_issue(*, purpose: str) -> AttestationNonce:
    now = timezone.now()
    return AttestationNonce.objects.create(
        value=secrets.token_hex(32),
        purpose=purpose,
        issued_at=now,
        expires_at=now + timedelta(seconds=settings.ATTESTATION_NONCE_TTL_SECONDS),
    )


@transaction.atomic
def nonce_consume(*, value: str, purpose: str) -> AttestationNonce:
    """Accept a nonce once: unknown, expired and reused nonces are refused, each with its own reason."""
    nonce = AttestationNonce.objects.select_for_update().filter(value=value.lower(), purpose=purpose).first()
    if nonce is None:
        raise NonceUnknown("the evidence names a nonce we did not issue for this purpose")
    if nonce.consumed_at is not None:
        raise NonceReused("the evidence's nonce was already used (replayed evidence)")
    now = timezone.now()
    if now >= nonce.expires_at:
        raise NonceExpired(f"the nonce expired {int((now - nonce.expires_at).total_seconds())} s ago")
    nonce.consumed_at = now
    nonce.save(update_fields=["consumed_at"])
    return nonce


@transaction.atomic
def allowlist_add(
    *,
    actor_id: int,
    mrtd: str,
    rtmrs: tuple[str, str, str, str],
    build_version: str,
    source_commit: str,
    service: str = "mm-executor",
    note: str = "",
    image_digest: str = "",
) -> MeasurementEntry:
    """Allow a build: its MRTD and the RTMRs that measure its image and configuration (`ATTESTATION_REQUIRED_RTMRS`
    must all be named; an entry pinning the firmware alone would admit any workload booted on it). With the
    executor image's digest, RTMR3 is what that image implies (`wire.measurement.expected_rtmr3`): given empty it is
    filled in, given otherwise it must be equal. An RTMR3 of zeros (no workload measured) is refused where
    `ATTESTATION_REFUSE_UNMEASURED_WORKLOAD` is on (production)."""
    if len(rtmrs) != 4:
        raise InvalidMeasurement("an entry names four RTMRs (empty for any value where allowed)")
    try:
        fields = {"mrtd": normalize(mrtd, "mrtd")}
        for i, value in enumerate(rtmrs):
            fields[f"rtmr{i}"] = normalize(value, f"rtmr{i}", optional=True)
        fields["image_digest"], fields["rtmr3"] = allowlist_image_rtmr3(image_digest, fields["rtmr3"])
        require_pinned((fields["rtmr0"], fields["rtmr1"], fields["rtmr2"], fields["rtmr3"]), required_rtmrs())
    except MeasurementUnpinnedError as exc:
        raise MeasurementUnpinned(str(exc), extra={"registers": exc.registers}) from None
    except MeasurementFormatError as exc:
        raise InvalidMeasurement(str(exc)) from None
    if not build_version or not source_commit:
        raise InvalidMeasurement("an entry names its build version and source commit")
    try:
        with transaction.atomic():
            entry = MeasurementEntry.objects.create(
                service=service,
                build_version=build_version,
                source_commit=source_commit,
                note=note,
                added_by_id=actor_id,
                **fields,
            )
    except IntegrityError:
        raise AllowlistConflict("this measurement is already allowed for this service") from None
    AllowlistAudit.objects.create(entry=entry, action="added", actor_id=actor_id, snapshot=_snapshot(entry))
    with context.bound(mrtd=entry.mrtd):
        log.info("allowlist_added", entry_id=entry.pk, build_version=build_version)
    return entry


@transaction.atomic
def allowlist_remove(*, actor_id: int, entry_id: int) -> MeasurementEntry:
    """Withdraw trust in a build at once: every executor last verified on it is revoked in the registry, and each
    job running there is told to wipe its credentials and stop (after this transaction commits)."""
    entry = MeasurementEntry.objects.select_for_update().get(pk=entry_id)
    if entry.removed_at is not None:
        return entry
    entry.removed_at = timezone.now()
    entry.removed_by_id = actor_id
    entry.save(update_fields=["removed_at", "removed_by"])
    AllowlistAudit.objects.create(entry=entry, action="removed", actor_id=actor_id, snapshot=_snapshot(entry))
    with context.bound(mrtd=entry.mrtd):
        log.warning("allowlist_removed", entry_id=entry.pk, build_version=entry.build_version)
    executor_revoke_for_entry(entry=entry)
    return entry


def executor_revoke_for_entry(*, entry: MeasurementEntry) -> list[str]:
    """Revoke the executors whose accepted attestation matched `entry`; their jobs wipe secrets and stop."""
    urls = sorted(
        set(
            AttestationRecord.objects.filter(allowlist_entry=entry, ok=True)
            .exclude(executor__state=ExecutorRecord.State.REVOKED)
            .values_list("executor__url", flat=True)
        )
    )
    executors_revoke(urls=urls, state=ExecutorRecord.State.REVOKED, reason=f"allowlist entry {entry.pk} removed")
    return urls


def executors_revoke(*, urls: list[str], state: str, reason: str) -> None:
    """The one path by which executors lose trust: each is marked `state` (`revoked` when its build left the
    allowlist, for good; `failed` when it failed a verification, until one passes) and `executors_lost_trust` is
    sent in the same transaction, so that whoever runs jobs there has them wipe their credentials and stop once it
    commits (and finds out by the executors' standing, `selectors.executor_trust_withdrawn`, should the event be
    lost). Report ingestion refuses their reports from then on (`selectors.signing_key_attested`)."""
    if not urls:
        return
    with transaction.atomic():
        ExecutorRecord.objects.filter(url__in=urls).exclude(state=ExecutorRecord.State.REVOKED).update(state=state)
        # Robust: a receiver that fails must not roll the revocation back; the standing check catches up.
        outcomes = executors_lost_trust.send_robust(sender=ExecutorRecord, urls=list(urls), state=state, reason=reason)
        for receiver, outcome in outcomes:
            if isinstance(outcome, Exception):
                log.error("executors_lost_trust_receiver_failed", receiver=repr(receiver), error=repr(outcome))
    for url in urls:
        log.warning("executor_revoked", executor=url, state=state, reason=reason)


def allowlist_image_rtmr3(image_digest: str, rtmr3: str) -> tuple[str, str]:
    """(image digest, RTMR3) of a new entry, checked against each other and the unmeasured-workload rule."""
    digest_text = image_digest.strip().lower()
    if digest_text:
        try:
            expected = expected_rtmr3(digest_text)
        except MeasurementError as exc:
            raise InvalidMeasurement(exc.message) from None
        if rtmr3 and rtmr3 != expected:
            raise MeasurementImageMismatch(
                f"image {digest_text} implies RTMR3 {expected[:16]}…, the entry pins {rtmr3[:16]}…",
                extra={"expected_rtmr3": expected},
            )
        rtmr3 = expected
    if rtmr3 == UNMEASURED_RTMR and settings.ATTESTATION_REFUSE_UNMEASURED_WORKLOAD:
        raise MeasurementUnmeasuredWorkload(
            "RTMR3 of zeros means the runtime measured no workload: such an entry would admit any workload on it"
        )
    return digest_text, rtmr3


def _snapshot(entry: MeasurementEntry) -> dict[str, object]:
    data = model_to_dict(entry)
    for key in ("added_at", "removed_at"):
        value = getattr(entry, key)
        data[key] = value.isoformat() if value else None
    return data


def executors_discovered(*, found: list[tuple[str, str, list[str]]]) -> None:
    """Note executors EasyEnclave listed (url, service id, tags) in the registry; their trust still comes only
    from their own attestation."""
    for url, service_id, tags in found:
        ExecutorRecord.objects.update_or_create(url=url, defaults={"service_id": service_id, "tags": tags})


def executor_reports_counted(*, url: str, accepted: int = 0, refused: int = 0) -> None:
    """Report quality for the registry's reputation (selection prefers executors whose reports pass): each report
    stored counts once as accepted, each refused page once as refused. Atomic increments, safe under concurrency."""
    if accepted or refused:
        ExecutorRecord.objects.filter(url=url).update(
            reports_accepted=F("reports_accepted") + accepted, reports_refused=F("reports_refused") + refused
        )


def executor_checked(*, executor_id: int, ok: bool, capacity: int | None = None, unreachable: bool = False) -> None:
    """One scheduled check of an executor (re-attestation and capacity): counted for its uptime. An unreachable
    one is taken out of selection (`unreachable`) until it passes again, but keeps its jobs and its standing for
    reports: not answering is not evidence against its build, and a job we cannot reach cannot be told to wipe
    anyway. A failed verification was already handled by the gate (jobs revoked, state `failed`)."""
    updates: dict[str, Any] = {"checks_total": F("checks_total") + 1}
    if ok:
        updates["checks_ok"] = F("checks_ok") + 1
        if capacity is not None:
            updates["capacity_available"] = capacity
    ExecutorRecord.objects.filter(pk=executor_id).exclude(state=ExecutorRecord.State.REVOKED).update(**updates)
    if unreachable:
        ExecutorRecord.objects.filter(
            pk=executor_id, state__in=[ExecutorRecord.State.VERIFIED, ExecutorRecord.State.UNVERIFIED]
        ).update(state=ExecutorRecord.State.UNREACHABLE)


def identity_observations_replace(*, source: str, figures: dict[str, dict[str, int]]) -> None:
    """What the oracle saw of each identity (report-signing key) in one source (an epoch of a campaign), replacing
    what an earlier scoring of the same source stored: a preview scored again, or the close after its previews.
    Each identity is linked to the executor whose accepted attestation bound its key."""
    fields = ("orders_checked", "orders_not_visible", "fills_checked", "fills_unconfirmed")
    # An identity seen in an earlier scoring of this source but not in this one has nothing left in it.
    IdentityObservation.objects.filter(source=source).exclude(signing_key__in=[k for k in figures if k]).delete()
    for key, counts in figures.items():
        if not key:
            continue  # orders of no known identity: nothing to hold against anyone
        record = AttestationRecord.objects.filter(signing_key=key, ok=True).order_by("-id").first()
        IdentityObservation.objects.update_or_create(
            signing_key=key,
            source=source,
            defaults={"executor_id": record.executor_id if record else None, **{f: int(counts[f]) for f in fields}},
        )
