"""Reads of the attestation app."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.db.models import Sum

from attestation.collateral import CollateralUnavailable, collateral_json, platform_key
from attestation.domain.allowlist import Measurements, Rule, first_match, unpinned
from attestation.models import (
    AllowlistAudit,
    AttestationRecord,
    ExecutorRecord,
    IdentityObservation,
    MeasurementEntry,
)
from wire.attestation import runtime_config_digest


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


def latest_accepted(executor_id: int) -> AttestationRecord | None:
    """The executor's most recent accepted attestation: the evidence its standing rests on now."""
    return (
        AttestationRecord.objects.select_related("executor", "allowlist_entry", "collateral")
        .filter(executor_id=executor_id, ok=True)
        .order_by("-id")
        .first()
    )


def evidence_body(record: AttestationRecord) -> dict[str, Any]:
    """The published evidence of one accepted attestation (`attestation.domain.evidence`): the quote, the collateral
    it was verified with, the token, the nonce and keys it binds, the root, and what the server concluded."""
    collateral = record.collateral.text if record.collateral is not None else ""
    if not collateral and record.quote_b64:
        # Verified before collateral was kept: today's, which may not verify at that time (the verdict says so).
        try:
            collateral = collateral_json(base64.b64decode(record.quote_b64))
        except CollateralUnavailable:
            collateral = ""
    at = record.verified_at_unix if record.verified_at_unix is not None else int(record.verified_at.timestamp())
    root = b"" if record.hardware_attested else _dev_root()
    rtmrs = list(record.rtmrs) + [""] * (4 - len(record.rtmrs))
    entry = record.allowlist_entry
    return {
        "executor": {
            "id": record.executor_id,  # not its URL: where an executor runs is not published
            "signing_key": record.signing_key,
            "sealing_key": record.sealing_key,
            "build_version": entry.build_version if entry else record.executor.build_version,
        },
        "attestation": {
            "record": record.pk,
            "verified_at": record.verified_at.isoformat(),
            "verified_at_unix": at,
            "nonce": record.nonce,
            "runtime_config": record.runtime_config,
            "runtime_config_digest": runtime_config_digest(record.runtime_config),
        },
        "quote_b64": record.quote_b64,
        "collateral": collateral,
        "ita_token": record.ita_token,
        "root": {
            "kind": "intel" if record.hardware_attested else "dev",
            "ca_der_b64": base64.b64encode(root).decode(),
        },
        "server_verdict": {
            "ok": record.ok,
            "tcb_status": record.tcb_status,
            "advisory_ids": list(record.advisory_ids),
            "mrtd": record.mrtd,
            **{f"rtmr{i}": rtmrs[i] for i in range(4)},
            "hardware_attested": record.hardware_attested,
            "reason": record.reason,
        },
        "allowlist_entry": (
            {"id": entry.pk, "build_version": entry.build_version, "source_commit": entry.source_commit}
            if entry
            else None
        ),
    }


def _dev_root() -> bytes:
    """The dev quote authority's root (DER) a dev-root executor was verified under; empty where none is set."""
    path = settings.ATTESTATION_DEV_ROOT_CA_FILE
    if not path:
        return b""
    data = Path(path).read_bytes()
    if data.lstrip().startswith(b"-----BEGIN"):
        data = x509.load_pem_x509_certificate(data).public_bytes(serialization.Encoding.DER)
    return data


@dataclass(frozen=True)
class Behaviour:
    """What the oracle saw of an executor's identities over every source: its reported orders the oracle's own book
    did not show, and its fills the exchange did not show (docs/proof.md, "Executor reputation")."""

    orders_checked: int = 0
    orders_not_visible: int = 0
    fills_checked: int = 0
    fills_unconfirmed: int = 0

    @property
    def orders_permille(self) -> int:
        return self.orders_not_visible * 1000 // self.orders_checked if self.orders_checked else 0

    @property
    def fills_permille(self) -> int:
        return self.fills_unconfirmed * 1000 // self.fills_checked if self.fills_checked else 0

    @property
    def deviation_permille(self) -> int:
        """The worse of the two: ‰ of its checked (sample, order) pairs the oracle's book did not show, and ‰ of its
        fills the exchange did not show — two ratios, since one order is checked at every sample and a fill once."""
        return max(self.orders_permille, self.fills_permille)

    @property
    def deviating(self) -> bool:
        """Either ratio beyond the configured tolerance, over enough checked to judge."""
        tolerance, enough = settings.EXECUTOR_DEVIATION_TOLERANCE_PERMILLE, settings.EXECUTOR_DEVIATION_MIN_CHECKED
        return (self.orders_checked >= enough and self.orders_permille > tolerance) or (
            self.fills_checked >= enough and self.fills_permille > tolerance
        )


def executor_behaviour(executor_ids: Iterable[int]) -> dict[int, Behaviour]:
    rows = (
        IdentityObservation.objects.filter(executor_id__in=list(executor_ids))
        .values("executor_id")
        .annotate(
            oc=Sum("orders_checked"),
            onv=Sum("orders_not_visible"),
            fc=Sum("fills_checked"),
            fu=Sum("fills_unconfirmed"),
        )
    )
    return {r["executor_id"]: Behaviour(r["oc"], r["onv"], r["fc"], r["fu"]) for r in rows}
