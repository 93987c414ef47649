"""The trust gate in front of every executor: nothing is routed to an executor and no secret is sealed
to it unless, just now,

1. it answered a fresh single-use nonce of ours with a TDX quote that verifies (signature chain to the
   configured root, collateral current, TCB status allowed by policy, not a debug TD),
2. the quote's REPORTDATA binds that nonce, the signing and sealing keys it claims and the digest of the runtime
   configuration it serves (`wire.attestation`), and that configuration is ours: the controller key it obeys is
   Django's own, each exchange API base URL is the one Django's settings name for that exchange (ccxt's built-in
   ones where neither overrides), and dev mode only where `EXECUTOR_ACCEPT_DEV_RUNTIME` allows it (ADR 0012),
3. its MRTD (and the RTMRs the entry names) is on the measurement allowlist, and
4. the registry has not revoked it.

`attested_identity` is the one provisioning gate, in every profile: whoever seals credentials to an executor asks
it for the executor's keys first, handing it any client that satisfies `interface.AttestingExecutor`.
Every verification, passed or failed, is recorded (`AttestationRecord`) and updates the registry.

Roots: Intel's SGX/TDX root is built into dcap-qvl. The dev quote authority's root (`devnet/tdx`) is accepted
only when `ATTESTATION_DEV_ROOT_CA_FILE` names it (dev and test profiles; production refuses to start with it),
and executors verified under it are marked "not hardware-attested" everywhere.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from attestation import ita, services
from attestation.collateral import collateral_json
from attestation.domain.allowlist import Measurements
from attestation.domain.ita import TokenError, claims_verdict
from attestation.domain.quote import QuoteError, QuoteVerdict, evaluate_policy, parse_quote_fields, verify_quote
from attestation.errors import AttestationError, EvidenceRefused, ProvisioningRefused
from attestation.interface import AttestingExecutor, ExecutorIdentity
from attestation.models import AttestationRecord, CollateralDocument, ExecutorRecord, MeasurementEntry
from attestation.selectors import measurement_allowed, measurement_refusal
from mrmarket.controller import controller_key
from mrmarket.errors import ControllerNotConfigured
from mrmarket.observability.logging import get_logger
from wire.attestation import BindingError, normalize_api_url, report_data, runtime_config_digest

log = get_logger(__name__)
NONCE_PURPOSE = "executor"
# Refusals that say nothing against the executor: our collateral source or ITA could not be used just now. Any
# other refusal of an executor that held trust revokes its jobs (`services.executors_revoke`).
# Failures of our own side only (our collateral source, Intel Trust Authority down): they say nothing against the
# executor. Decided by where the failure came from, never by what its evidence can provoke: a quote that does not
# parse, or whose own certificates have expired, is the executor's failure.
INDETERMINATE_REASONS = frozenset({"collateral_unavailable", "ita_unavailable", "registration_rate_limited"})
# (A registration over the rate limit is refused without revoking anything: the executor leaves selection until a
# check under a key it already registered passes.)
REGISTRATION_WINDOW = timedelta(hours=1)


class AttestationFailed(AttestationError):
    """The executor's evidence did not pass; `code` says which check (one code per failure kind)."""

    status = 409

    def __init__(self, code: str, message: str, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.code = code


@dataclass(frozen=True)
class Verified:
    record: AttestationRecord
    executor: ExecutorRecord


def dev_root_ca() -> bytes | None:
    path = settings.ATTESTATION_DEV_ROOT_CA_FILE
    return Path(path).read_bytes() if path else None


def collateral_for(quote: bytes) -> str:
    """The DCAP collateral (JSON for `QuoteCollateralV3.from_json`) for this quote's platform."""
    return collateral_json(quote)


@dataclass(frozen=True)
class QuoteCheck:
    """A quote's verdict and what it was verified with: kept with the record so anyone can check it again."""

    verdict: QuoteVerdict
    hardware: bool
    collateral: str = ""
    at: int | None = None


def verify_quote_evidence(quote: bytes, *, expected: bytes) -> QuoteCheck:
    """Verify under Intel's root; under the dev root only when one is configured."""
    now = int(time.time())
    try:
        parse_quote_fields(quote)  # before any collateral is asked for it: garbage is the executor's failure
    except QuoteError as exc:
        return QuoteCheck(QuoteVerdict(False, "malformed_quote", str(exc), None, (), None), False)
    try:
        collateral = collateral_for(quote)
    except AttestationError as exc:
        return QuoteCheck(QuoteVerdict(False, "collateral_unavailable", exc.message, None, (), None), False)
    verdict = verify_quote(quote, collateral, now=now)
    hardware = verdict.ok
    root = dev_root_ca()
    if not verdict.ok and root is not None:
        dev = verify_quote(quote, collateral, now=now, root_ca_der=root)
        if dev.ok or verdict.reason == "untrusted_root":
            verdict = dev
    allowed = frozenset(settings.ATTESTATION_TCB_ALLOWED)
    verdict = evaluate_policy(verdict, expected_report_data=expected, allowed_tcb=allowed)
    return QuoteCheck(verdict, hardware, collateral, now)


def verify_token_evidence(token: str, *, expected: bytes) -> QuoteVerdict:
    """An Intel Trust Authority token as evidence: verified (`attestation/ita.py`), then the quote policy."""
    try:
        claims = ita.verify(token, now=int(time.time()))
    except (TokenError, ita.ItaUnavailable) as exc:  # refused, or no key set to check it against now
        return QuoteVerdict(False, exc.code, exc.message, None, (), None)
    allowed = frozenset(settings.ATTESTATION_TCB_ALLOWED)
    return evaluate_policy(claims_verdict(claims), expected_report_data=expected, allowed_tcb=allowed)


def verify_evidence(quote: bytes, token: str, *, expected: bytes) -> QuoteCheck:
    """A quote (verified here with dcap-qvl), an ITA token (Intel's appraisal of one), or both.

    With both, and ITA configured, each must pass on its own and they must describe the same TD (MRTD, RTMRs,
    REPORTDATA); a token is ignored where ITA is not configured only when a quote came with it.
    A token alone is accepted, as hardware-attested (Intel appraised the quote), only
    when `ATTESTATION_ITA_ROOT_CA_FILE` pins ITA's root: without it whoever serves the JWKS could vouch for any
    TD, so it is refused (`ita_root_not_pinned`) — send the quote with it and the quote decides here.
    """
    if not quote:
        if ita.configured() and not settings.ATTESTATION_ITA_ROOT_CA_FILE:
            detail = "a token without its quote is accepted only with ITA's root pinned (ATTESTATION_ITA_ROOT_CA_FILE)"
            return QuoteCheck(QuoteVerdict(False, "ita_root_not_pinned", detail, None, (), None), False)
        return QuoteCheck(verify_token_evidence(token, expected=expected), True)
    checked = verify_quote_evidence(quote, expected=expected)
    verdict = checked.verdict
    if not verdict.ok or not token or not ita.configured():
        return checked
    appraisal = verify_token_evidence(token, expected=expected)
    if not appraisal.ok:
        return dataclasses.replace(checked, verdict=appraisal)
    assert verdict.fields is not None
    assert appraisal.fields is not None
    mine, intels = verdict.fields, appraisal.fields
    if (mine.mrtd, mine.rtmrs, mine.report_data) != (intels.mrtd, intels.rtmrs, intels.report_data):
        mismatch = QuoteVerdict(
            False, "ita_mismatch", "the ITA token describes another TD than the quote", None, (), verdict.fields
        )
        return dataclasses.replace(checked, verdict=mismatch)
    return checked


def verify_executor_evidence(executor: ExecutorRecord, evidence: dict[str, Any], *, nonce: str) -> Verified:
    """Check one executor's answer to `nonce`. Records the outcome; raises `AttestationFailed` on any failure."""
    services.nonce_consume(value=nonce, purpose=NONCE_PURPOSE)  # unknown / expired / reused: refused here
    signing, sealing = str(evidence.get("signing_key", "")), str(evidence.get("sealing_key", ""))
    token = evidence.get("ita_token") or ""
    runtime = evidence.get("runtime_config")
    try:
        quote = base64.b64decode(str(evidence.get("quote_b64") or ""), validate=True)
        if not isinstance(runtime, dict):
            raise ValueError("the evidence has no runtime_config document")
        expected = report_data(
            nonce=nonce, signing_key=signing, sealing_key=sealing, runtime_config_digest=runtime_config_digest(runtime)
        )
        if not isinstance(token, str):
            raise ValueError("ita_token is not a string")
        if not quote and not token:
            raise ValueError("the evidence has neither quote_b64 nor ita_token")
    except (binascii.Error, ValueError, BindingError) as exc:
        return _refuse(executor, nonce, evidence, b"", "malformed_evidence", str(exc))
    if str(evidence.get("nonce", "")).lower() != nonce:
        return _refuse(executor, nonce, evidence, quote, "wrong_nonce", "the evidence answers another nonce")
    checked = verify_evidence(quote, token, expected=expected)
    verdict = checked.verdict
    if not verdict.ok:
        return _refuse(executor, nonce, evidence, quote, verdict.reason or "verification_failed", verdict.detail)
    refusal = runtime_config_refusal(runtime)  # now known to be what the TD runs with (bound in REPORTDATA)
    if refusal is not None:
        return _refuse(executor, nonce, evidence, quote, *refusal)
    assert verdict.fields is not None
    measured = Measurements(verdict.fields.mrtd, verdict.fields.rtmrs)
    entry = measurement_allowed(measured=measured)
    if entry is None:
        return _refuse(executor, nonce, evidence, quote, "unknown_measurement", measurement_refusal(measured=measured))
    if (refused := registration_refusal(executor, signing)) is not None:
        return _refuse(executor, nonce, evidence, quote, "registration_rate_limited", refused)
    with transaction.atomic():
        # Re-check under locks, entry first then executor (the order allowlist removal takes them), so a removal or
        # a revocation that committed after this check began wins over it, and one that comes later sees this
        # record and revokes it.
        live = MeasurementEntry.objects.select_for_update().get(pk=entry.pk).removed_at is None
        revoked = ExecutorRecord.objects.select_for_update().get(pk=executor.pk).state == ExecutorRecord.State.REVOKED
        if live and not revoked:
            record = _accept(executor, nonce, signing, sealing, quote, token, runtime, checked, measured, entry)
    if revoked:
        return _refuse(
            executor, nonce, evidence, quote, "executor_revoked", "the executor was revoked during the check"
        )
    if not live:
        return _refuse(
            executor, nonce, evidence, quote, "unknown_measurement", "its allowlist entry was removed during the check"
        )
    executor.refresh_from_db()
    log.info("executor_verified", executor=executor.url, tcb_status=verdict.tcb_status, hardware=checked.hardware)
    return Verified(record, executor)


def registration_refusal(executor: ExecutorRecord, signing_key: str) -> str | None:
    """Why a new identity (a signing key this executor has not had accepted before) may not be registered now: more
    than `ATTESTATION_REGISTRATIONS_PER_HOUR` new keys within the last hour. A key it registered already is never
    limited, so re-attestations of a running executor always go through."""
    accepted = AttestationRecord.objects.filter(executor=executor, ok=True)
    if accepted.filter(signing_key=signing_key).exists():
        return None
    since = timezone.now() - REGISTRATION_WINDOW
    recent = accepted.filter(verified_at__gte=since).values("signing_key").distinct().count()
    limit = settings.ATTESTATION_REGISTRATIONS_PER_HOUR
    if recent < limit:
        return None
    return f"the executor registered {recent} new signing keys within the hour (limit {limit})"


def _accept(
    executor: ExecutorRecord,
    nonce: str,
    signing: str,
    sealing: str,
    quote: bytes,
    token: str,
    runtime: dict[str, Any],
    checked: QuoteCheck,
    measured: Measurements,
    entry: MeasurementEntry,
) -> AttestationRecord:
    verdict, hardware = checked.verdict, checked.hardware
    record = AttestationRecord.objects.create(
        executor=executor,
        nonce=nonce,
        signing_key=signing,
        sealing_key=sealing,
        quote_sha256=hashlib.sha256(quote).hexdigest() if quote else "",
        quote_b64=base64.b64encode(quote).decode(),
        ita_token=token,
        collateral=_collateral_document(checked.collateral),
        verified_at_unix=checked.at,
        runtime_config=runtime,
        ok=True,
        tcb_status=verdict.tcb_status or "",
        advisory_ids=list(verdict.advisory_ids),
        mrtd=measured.mrtd,
        rtmrs=list(measured.rtmrs),
        hardware_attested=hardware,
        allowlist_entry=entry,
    )
    ExecutorRecord.objects.filter(pk=executor.pk).exclude(state=ExecutorRecord.State.REVOKED).update(
        state=ExecutorRecord.State.VERIFIED,
        signing_key=signing,
        sealing_key=sealing,
        mrtd=measured.mrtd,
        rtmrs=list(measured.rtmrs),
        tcb_status=verdict.tcb_status or "",
        hardware_attested=hardware,
        build_version=entry.build_version,
        last_verified_at=timezone.now(),
    )
    return record


def _collateral_document(text: str) -> CollateralDocument | None:
    if not text:
        return None
    document, _ = CollateralDocument.objects.get_or_create(
        sha256=hashlib.sha256(text.encode()).hexdigest(), defaults={"text": text}
    )
    return document


def runtime_config_refusal(runtime: dict[str, Any]) -> tuple[str, str] | None:
    """(code, detail) when an executor's attested runtime configuration is not one Django may trust, else None."""
    try:
        ours = controller_key().public_hex
    except ControllerNotConfigured as exc:
        return "controller_not_configured", exc.message
    if runtime["controller_key"] != ours:
        return "foreign_controller", "the executor obeys another controller key than Django's own"
    try:
        expected = {name: normalize_api_url(url) for name, url in settings.EXCHANGE_API_URLS.items()}
    except BindingError as exc:
        return "exchange_endpoint_mismatch", f"EXCHANGE_API_URLS is not usable: {exc}"
    attested: dict[str, str] = runtime["exchange_api_urls"]
    for name in sorted(set(expected) | set(attested)):
        if attested.get(name) != expected.get(name):
            theirs, mine = attested.get(name, "ccxt's built-in URLs"), expected.get(name, "ccxt's built-in URLs")
            return "exchange_endpoint_mismatch", f"the executor reaches {name} at {theirs}, Django at {mine}"
    if runtime["dev"] and not settings.EXECUTOR_ACCEPT_DEV_RUNTIME:
        return "dev_runtime_refused", "the executor runs in dev mode (plain http to exchanges allowed)"
    return None


def _refuse(
    executor: ExecutorRecord, nonce: str, evidence: dict[str, Any], quote: bytes, reason: str, detail: str
) -> NoReturn:
    AttestationRecord.objects.create(
        executor=executor,
        nonce=nonce,
        signing_key=str(evidence.get("signing_key", ""))[:64],
        sealing_key=str(evidence.get("sealing_key", ""))[:64],
        quote_sha256=hashlib.sha256(quote).hexdigest() if quote else "",
        runtime_config=evidence["runtime_config"] if isinstance(evidence.get("runtime_config"), dict) else {},
        ok=False,
        reason=reason,
        detail=detail[:500],
    )
    state = ExecutorRecord.State
    inconclusive = reason in INDETERMINATE_REASONS
    with transaction.atomic():
        # The state as it is now, not as it was when the check began: a revocation meanwhile stays a revocation.
        trusted = (
            ExecutorRecord.objects.select_for_update()
            .filter(pk=executor.pk, state__in=[state.VERIFIED, state.UNREACHABLE])
            .exists()
        )
        # An inconclusive check (our collateral or ITA unavailable) takes a trusted executor out of selection and
        # leaves its jobs alone; any other refusal marks it failed.
        after = state.UNREACHABLE if inconclusive and trusted else state.FAILED
        if reason == "registration_rate_limited":
            # Nothing against its build: out of selection while trusted, otherwise left as it was, and not counted
            # as a failed verification.
            if trusted:
                ExecutorRecord.objects.filter(pk=executor.pk).update(state=state.UNREACHABLE)
        else:
            ExecutorRecord.objects.filter(pk=executor.pk).update(
                state=Case(When(state=state.REVOKED, then=Value(state.REVOKED)), default=Value(after)),
                verification_failures=F("verification_failures") + 1,
            )
        if trusted and not inconclusive:
            # It was trusted and now fails (TCB out of date, build gone, other keys…): its running jobs lose their
            # credentials and stop, as when its build leaves the allowlist.
            services.executors_revoke(urls=[executor.url], state=state.FAILED, reason=reason)
    log.warning("executor_refused", executor=executor.url, reason=reason)
    raise AttestationFailed(reason, f"executor {executor.url} failed attestation: {reason}: {detail}"[:500])


def attested_identity(client: AttestingExecutor) -> ExecutorIdentity:
    """The provisioning gate: a fresh verification before every secret delivery."""
    executor, _ = ExecutorRecord.objects.get_or_create(url=client.base_url)
    if executor.state == ExecutorRecord.State.REVOKED:
        raise ProvisioningRefused(f"executor {executor.url} is revoked (its build left the allowlist)")
    nonce = services.nonce_issue(purpose=NONCE_PURPOSE).value
    try:
        evidence = client.attestation(nonce)
    except EvidenceRefused as exc:
        # An executor that answers but declines to attest has failed its check (a trusted one is revoked like any
        # other failure); only silence (any other error, left to the caller) is inconclusive.
        _refuse(executor, nonce, {}, b"", "attestation_refused", f"the executor refused to attest: {exc.message}")
    verified = verify_executor_evidence(executor, evidence, nonce=nonce)
    return ExecutorIdentity(
        url=client.base_url,
        signing_key=verified.record.signing_key,
        sealing_key=verified.record.sealing_key,
        attested=True,
        evidence_id=verified.record.pk,
    )
