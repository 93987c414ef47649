"""Writes of the epoch close: one row per (campaign, epoch) through collecting → closing → stored → recorded.

- collecting → closing once the epoch's end plus `ORACLE_REPORT_GRACE_SECONDS` (late reports) has passed;
- closing: a worker takes a lease, builds the inputs (`payouts.inputs_build`), scores them exactly as
  `python -m payouts.audit score` does, stores both documents under names that carry their digests, and only
  then moves the row to stored with the digests — a crash before that leaves the row in closing, and the next
  worker (once the lease has run out) builds again;
- stored → recorded: `recordResults(epoch, bundle digest, bundle URI)` signed with the recording-oracle key and
  stored before it is broadcast (`payouts.oracle_tx`), so a crash after sending resumes the same transaction and
  the chain's own check (`ResultsAlreadyRecorded`) is the last line, never the first; an epoch whose results are
  already on chain with the same digest is adopted, a different digest fails the close without sending anything.

Every transition is recorded once per key (`EpochCloseTransition`); a retry is never a second step.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from web3 import Web3

from campaigns.models import Campaign
from execution import services as execution_services
from mrmarket.chain import get_web3
from mrmarket.errors import ApplicationError
from mrmarket.exchanges.errors import ExchangeUnavailable
from mrmarket.observability.logging import get_logger
from payouts import oracle_tx, selectors
from payouts.audit.recompute import software_version
from payouts.audit.schemas import SchemaViolation, validate_inputs
from payouts.domain.bundle import UNKNOWN, bundle_bytes, results_bundle
from payouts.domain.epochs import CloseEvent, CloseState, close_transition
from payouts.domain.manifest import ManifestError, manifest_bytes, payout_manifest
from payouts.domain.scoring.inputs import OracleInputs, ScoringInputError
from payouts.errors import (
    EpochNotStarted,
    OracleCallRejected,
    OracleKeyNotConfigured,
    OraclePurposeConflict,
    PayoutManifestMissing,
    ResultsAlreadyRecordedDifferently,
    SoftwareUnknown,
)
from payouts.inputs_build import build_inputs, campaign_terms
from payouts.models import EpochClose, EpochCloseTransition, EpochPreview, OracleTransaction
from payouts.oracle_keys import oracle_addresses
from payouts.proof import epoch_attribution
from payouts.selectors import ARTIFACT_STORAGE, artifact_path
from payouts.timeline import transition_once
from wire.canonical import canonical_bytes, parse

log = get_logger(__name__)


def _storage() -> Any:
    return storages[ARTIFACT_STORAGE]


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def artifact_dir(close: EpochClose) -> str:
    return f"{close.campaign.chain_id}/{close.campaign.address}/{close.epoch}"


def artifact_uri(close: EpochClose, kind: str) -> str:
    """The stable public URL of one of the epoch's documents (`inputs` or `bundle`)."""
    return settings.ORACLE_PUBLIC_BASE_URL.rstrip("/") + artifact_path(close, kind)


def _transition(
    close: EpochClose, event: CloseEvent, *, key: str, detail: dict[str, Any] | None = None, **fields: Any
) -> EpochClose:
    """Apply one event to a row already locked by the caller, once per key, with the fields it sets."""
    applied = transition_once(
        close,
        EpochCloseTransition,
        "close",
        key=key,
        event=event.value,
        next_state=lambda state: close_transition(CloseState(state), event).value,
        detail=detail,
        fields=fields,
    )
    if applied:
        log.info(
            "epoch_close_transition",
            campaign_id=close.campaign_id,
            epoch=close.epoch,
            close_event=event.value,
            to_state=close.state,
        )
    return close


def _round(close: EpochClose) -> int:
    """How many times an operator sent the close back to closing: each round may store and fail once more, so
    the keys of those steps carry it (a retry would otherwise find its step already taken, and stop there)."""
    return close.transitions.filter(event=CloseEvent.RETRY.value).count()


def epoch_close_ensure(*, campaign: Campaign, epoch: int) -> EpochClose:
    """The close row of an epoch that has started (created in collecting when new)."""
    start, end = campaign_terms(campaign).epoch_bounds(epoch)
    close, _ = EpochClose.objects.get_or_create(
        campaign=campaign, epoch=epoch, defaults={"epoch_start": _at(start), "epoch_end": _at(end)}
    )
    return close


def _alert_failed(close: EpochClose, reason: str) -> None:
    """A failed close waits for a person (nothing retries it): tell one, in the transaction that fails it, so a
    worker killed before that commits leaves neither the step nor the alert, and one after leaves both."""
    execution_services.alert_raise(
        "epoch_close_failed",
        f"the close of epoch {close.epoch} of campaign {close.campaign.address} failed: {reason}"[:500],
        dedup=f"close-failed:c{close.pk}:{_round(close)}",
        detail={"close_id": close.pk, "epoch": close.epoch, "campaign": close.campaign.address},
    )


def _fail(close_id: int, reason: str, *, key: str, worker: str) -> EpochClose:
    with transaction.atomic():
        close = EpochClose.objects.select_for_update().get(pk=close_id)
        if CloseState(close.state) not in (CloseState.CLOSING, CloseState.STORED):
            return close
        if close.lease_owner and close.lease_owner != worker:
            return close  # another worker took the close over: its build decides
        log.error("epoch_close_failed", campaign_id=close.campaign_id, epoch=close.epoch, reason=reason)
        _alert_failed(close, reason)
        return _transition(
            close,
            CloseEvent.FAILED,
            key=key,
            detail={"reason": reason},
            failure_reason=reason[:500],
            lease_owner="",
            lease_until=None,
        )


def _grace_over(close_id: int, now: datetime) -> EpochClose:
    with transaction.atomic():
        close = EpochClose.objects.select_for_update().get(pk=close_id)
        if close.state != CloseState.COLLECTING or now < close.epoch_end + timedelta(
            seconds=settings.ORACLE_REPORT_GRACE_SECONDS
        ):
            return close
        return _transition(close, CloseEvent.GRACE_OVER, key="grace_over")


def _take_lease(close_id: int, worker: str, now: datetime) -> bool:
    with transaction.atomic():
        close = EpochClose.objects.select_for_update().get(pk=close_id)
        if close.state != CloseState.CLOSING:
            return False
        if close.lease_until and close.lease_until > now:
            # Someone is building it: another worker, or this very task delivered twice (a broker redelivery
            # runs the same task id again while the first delivery still builds).
            return False
        close.lease_owner = worker
        close.lease_until = now + timedelta(seconds=settings.ORACLE_CLOSE_LEASE_SECONDS)
        close.attempts += 1
        close.save(update_fields=["lease_owner", "lease_until", "attempts", "updated_at"])
        return True


class LeaseLost(Exception):
    """Another worker holds the close now (this one's lease ran out): stop building, its build stands."""


def _renew(close_id: int, worker: str) -> None:
    """Extend this worker's lease while it builds; raise LeaseLost when the close is no longer its own."""
    with transaction.atomic():
        close = EpochClose.objects.select_for_update().get(pk=close_id)
        if close.state != CloseState.CLOSING or close.lease_owner != worker:
            raise LeaseLost(close_id)
        close.lease_until = timezone.now() + timedelta(seconds=settings.ORACLE_CLOSE_LEASE_SECONDS)
        close.save(update_fields=["lease_until", "updated_at"])


def _release(close_id: int, worker: str, error: str) -> None:
    with transaction.atomic():
        close = EpochClose.objects.select_for_update().get(pk=close_id)
        if close.lease_owner == worker:
            close.lease_owner, close.lease_until, close.last_error = "", None, error[:500]
            close.save(update_fields=["lease_owner", "lease_until", "last_error", "updated_at"])


def _store_document(directory: str, kind: str, data: bytes) -> tuple[str, str]:
    """Store bytes under a name carrying their digest; the same bytes again are left as they are."""
    digest = hashlib.sha256(data).hexdigest()
    name = f"{directory}/{kind}-{digest}.json"
    storage = _storage()
    if storage.exists(name):
        with storage.open(name, "rb") as existing:
            if hashlib.sha256(existing.read()).hexdigest() == digest:
                return name, digest
        # A writer killed mid-write left a truncated file under the digest's name: it is not these bytes.
        storage.delete(name)
    saved = storage.save(name, ContentFile(data))
    if saved != name:  # a concurrent writer stored the same bytes first; ours is a duplicate
        storage.delete(saved)
    return name, digest


def scored_documents(document: dict[str, Any]) -> tuple[bytes, bytes]:
    """The canonical bytes of the inputs and of their bundle, computed exactly as the audit CLI does from the
    stored inputs file (schema first, then the engine), so `score` on the stored file reproduces the bundle."""
    inputs_data = canonical_bytes(document)
    parsed = parse(inputs_data)
    validate_inputs(parsed)
    return inputs_data, bundle_bytes(results_bundle(parsed, software=software_version()))


def _build(close_id: int, worker: str) -> EpochClose:
    close = EpochClose.objects.select_related("campaign").get(pk=close_id)
    try:
        if software_version().commit == UNKNOWN:
            # The bundle names the commit that computed it, so that anyone can check it out and recompute: a
            # bundle that cannot say so is not published (set MRMARKET_COMMIT where the code has no .git).
            raise SoftwareUnknown("the oracle cannot tell which commit it runs: set MRMARKET_COMMIT")
        built = build_inputs(campaign=close.campaign, epoch=close.epoch, progress=lambda: _renew(close_id, worker))
        inputs_data, bundle_data = scored_documents(built.document)
        manifest_data = manifest_bytes(payout_manifest(parse(bundle_data)))
    except LeaseLost:
        return EpochClose.objects.get(pk=close_id)  # another worker took the close over: its build stands
    except ExchangeUnavailable as exc:
        _release(close_id, worker, f"{exc.code}: {exc.message}")
        raise  # the task retries with backoff; the row stays in closing
    except (SchemaViolation, ScoringInputError, ManifestError) as exc:
        _release(close_id, worker, str(exc))
        return _fail(
            close_id, f"the oracle built inputs it cannot score: {exc}", key=f"failed:{_round(close)}", worker=worker
        )
    except ApplicationError as exc:
        # A typed error (the metadata document missing, say): its message is written to be shown.
        _release(close_id, worker, f"{exc.code}: {exc.message}")
        raise
    except Exception as exc:
        # Anything else (the chain node or the database down): the next pass builds again at once instead of
        # waiting out this worker's lease. Only the type is kept: an untyped error's text may quote a URL with a key.
        _release(close_id, worker, type(exc).__name__)
        raise
    directory = artifact_dir(close)
    inputs_name, inputs_digest = _store_document(directory, "inputs", inputs_data)
    bundle_name, bundle_digest = _store_document(directory, "bundle", bundle_data)
    # The payout manifest of the bundle, beside it (docs/scoring.md, "Payout manifest"): what the reputation oracle
    # publishes once the results are on chain; anyone rebuilds it from the bundle alone.
    manifest_name, manifest_digest = _store_document(directory, "manifest", manifest_data)
    with transaction.atomic():
        close = EpochClose.objects.select_for_update(of=("self",)).select_related("campaign").get(pk=close_id)
        if close.state != CloseState.CLOSING or close.lease_owner != worker:
            return close  # the lease ran out and another worker took over: its result stands
        return _transition(
            close,
            CloseEvent.STORED,
            key=f"stored:{_round(close)}",
            detail={"inputs_digest": inputs_digest, "bundle_digest": bundle_digest},
            inputs_digest=inputs_digest,
            bundle_digest=bundle_digest,
            inputs_name=inputs_name,
            bundle_name=bundle_name,
            manifest_digest=manifest_digest,
            manifest_name=manifest_name,
            bundle_uri=artifact_uri(close, "bundle"),
            participants=built.participants,
            notes=built.notes,
            lease_owner="",
            lease_until=None,
            last_error="",
        )


def epoch_manifest_restore(*, close_id: int) -> EpochClose:
    """Store the payout manifest of a stored bundle whose manifest is not in the artifact storage (a close stored
    before manifests were, or a lost file): rebuilt from the bundle alone, as anyone would rebuild it. Raises
    PayoutManifestMissing when the bundle is not stored either."""
    close = EpochClose.objects.select_related("campaign").get(pk=close_id)
    bundle_data = selectors.epoch_artifact(close=close, kind="bundle")
    if bundle_data is None or hashlib.sha256(bundle_data).hexdigest() != close.bundle_digest:
        raise PayoutManifestMissing(
            f"epoch {close.epoch} of {close.campaign.address} has neither its payout manifest nor its results "
            f"bundle in the artifact storage",
            extra={"close_id": close.pk},
        )
    name, digest = _store_document(artifact_dir(close), "manifest", manifest_bytes(payout_manifest(parse(bundle_data))))
    with transaction.atomic():
        close = EpochClose.objects.select_for_update().get(pk=close_id)
        if (close.manifest_name, close.manifest_digest) != (name, digest):
            close.manifest_name, close.manifest_digest = name, digest
            close.save(update_fields=["manifest_name", "manifest_digest", "updated_at"])
    log.warning("epoch_manifest_restored", close_id=close.pk, manifest_digest=digest)
    return close


def _record_tx(close: EpochClose) -> OracleTransaction:
    """The close's recordResults transaction, prepared (signed and stored) once; later passes find it."""
    if close.record_tx is not None:
        return close.record_tx
    tx = oracle_tx.record_results_tx(
        chain_id=close.campaign.chain_id,
        campaign_address=close.campaign.address,
        epoch=close.epoch,
        digest_hex="0x" + close.bundle_digest,
        uri=close.bundle_uri,
        attempt=_round(close),
    )
    close.record_tx = tx
    close.save(update_fields=["record_tx", "updated_at"])
    return tx


def _record(close_id: int) -> EpochClose:
    with transaction.atomic():
        close = (
            EpochClose.objects.select_for_update(of=("self",)).select_related("campaign", "record_tx").get(pk=close_id)
        )
        if close.state != CloseState.STORED:
            return close
        try:
            tx_id = _record_tx(close).pk
        except OracleCallRejected as exc:
            if exc.extra.get("error") == "EpochNotEnded":
                return close  # the chain's clock is behind ours: the next pass tries again
            return _refused(close, f"recordResults would revert: {exc.extra.get('error') or exc.message}")
        except (ResultsAlreadyRecordedDifferently, OraclePurposeConflict, OracleKeyNotConfigured) as exc:
            return _refused(close, exc.message, exc.extra)
    status = oracle_tx.oracle_tx_advance(tx_id=tx_id)
    with transaction.atomic():
        close = (
            EpochClose.objects.select_for_update(of=("self",)).select_related("campaign", "record_tx").get(pk=close_id)
        )
        tx = close.record_tx
        if close.state != CloseState.STORED or tx is None:
            return close
        if status in (OracleTransaction.Status.MINED, OracleTransaction.Status.ADOPTED):
            tx_hash, block = tx.tx_hash or "", tx.block_number
            if status == OracleTransaction.Status.ADOPTED:
                # Nothing of ours was sent: the close points at the transaction that did record it.
                tx_hash, block = _recorded_by(close)
            return _transition(
                close,
                CloseEvent.RECORDED,
                key="recorded",
                detail={"tx_hash": tx_hash, "block": block, "status": status},
                tx_hash=tx_hash,
                block_number=block,
            )
        if status in (OracleTransaction.Status.REVERTED, OracleTransaction.Status.PARKED):
            reason = tx.revert_reason or ("its nonce was used by another transaction" if status == "parked" else "")
            return _refused(close, f"recordResults {status}: {reason}", {"tx_hash": tx.tx_hash or ""})
        return close  # sent, not mined yet: the next pass looks again (and bumps the gas when due)


def _recorded_by(close: EpochClose) -> tuple[str, int | None]:
    """The transaction and block of the ResultsRecorded event of the close's epoch (the escrow emits it once)."""
    w3 = get_web3()
    contract = w3.eth.contract(address=Web3.to_checksum_address(close.campaign.address), abi=oracle_tx.CAMPAIGN_ABI)
    events = contract.events.ResultsRecorded().get_logs(
        from_block=close.campaign.created_block, argument_filters={"epoch": close.epoch}
    )
    if not events:
        return "", None
    event = events[0]
    return "0x" + bytes(event["transactionHash"]).hex(), int(event["blockNumber"])


def _refused(close: EpochClose, reason: str, detail: dict[str, Any] | None = None) -> EpochClose:
    """Fail a close the chain will not take (the row is locked by the caller); nothing more is sent for it.
    `detail` is the error's own (an error's `extra` may name any key, `reason` included)."""
    detail = detail or {}
    log.error("epoch_close_failed", campaign_id=close.campaign_id, epoch=close.epoch, reason=reason)
    _alert_failed(close, reason)
    return _transition(
        close,
        CloseEvent.FAILED,
        key=f"failed:{_round(close)}",
        detail={**{k: str(v) for k, v in detail.items()}, "reason": reason},
        failure_reason=reason[:500],
        tx_hash=str(detail.get("tx_hash", close.tx_hash)),
    )


def epoch_close_advance(*, close_id: int, worker: str, now: datetime | None = None) -> EpochClose:
    """Take one close as far as it can go now; safe to call at any time, from any number of workers."""
    now = now or timezone.now()
    close = _grace_over(close_id, now)
    if close.state == CloseState.CLOSING and _take_lease(close_id, worker, now):
        close = _build(close_id, worker)
    if close.state == CloseState.STORED:
        close = _record(close_id)
    return EpochClose.objects.get(pk=close_id)


@transaction.atomic
def epoch_close_retry(*, close_id: int) -> EpochClose:
    """An operator sends a failed close back to closing (its inputs are built again from scratch)."""
    close = EpochClose.objects.select_for_update().get(pk=close_id)
    return _transition(
        close,
        CloseEvent.RETRY,
        key=f"retry:{close.transitions.count()}",
        failure_reason="",
        record_tx=None,
        tx_hash="",
        attempts=0,
    )


def _ours(campaigns: QuerySet[Campaign], addresses: list[str]) -> QuerySet[Campaign]:
    """Campaigns whose recording oracle is one of ours, still within the window the escrow accepts results in."""
    recorder = Q()
    for address in addresses:
        recorder |= Q(recording_oracle__iexact=address)
    return campaigns.filter(recorder)


def epoch_closes_due(*, now: datetime | None = None) -> list[int]:
    """Create the close row of every started epoch of every campaign this oracle records for, and return the ids
    of those not yet recorded or failed: one task each. Campaigns naming another recording oracle are not ours."""
    now = now or timezone.now()
    ours = oracle_addresses("recording")
    if not ours:
        return []
    due: list[int] = []
    seconds = int(now.timestamp())
    campaigns = _ours(Campaign.objects.filter(funded=True, start__lte=now), ours)
    for campaign in campaigns.order_by("pk"):
        terms = campaign_terms(campaign)
        current = terms.epoch_at(seconds)
        last = terms.epoch_count - 1 if current is None else current
        # One read per campaign for the rows it has: a campaign of thousands of epochs costs a query, not
        # thousands, on every pass of the beat.
        opened = set(EpochClose.objects.filter(campaign=campaign).values_list("epoch", flat=True))
        for epoch in range(last + 1):
            if epoch not in opened:
                epoch_close_ensure(campaign=campaign, epoch=epoch)
        due.extend(
            EpochClose.objects.filter(campaign=campaign, epoch__lte=last)
            .exclude(state__in=(CloseState.RECORDED.value, CloseState.FAILED.value))
            .order_by("epoch")
            .values_list("pk", flat=True)
        )
    return due


def epoch_preview_refresh(*, campaign_id: int, now: datetime | None = None) -> EpochPreview | None:
    """Score the open epoch of a campaign over its part so far and keep the bundle as the running estimate;
    None outside the campaign, and at the very first instant of an epoch (nothing of it to score yet). The same
    build and scoring as the close, so the estimate is what the close would say if the epoch ended now."""
    now = now or timezone.now()
    campaign = Campaign.objects.get(pk=campaign_id)
    epoch = campaign_terms(campaign).epoch_at(int(now.timestamp()))
    if epoch is None:
        return None
    until_ms = int(now.timestamp() * 1000)
    try:
        built = build_inputs(campaign=campaign, epoch=epoch, until_ms=until_ms)
    except EpochNotStarted:
        return None
    inputs_data, bundle_data = scored_documents(built.document)
    attested = epoch_attribution(campaign=campaign, epoch=epoch, inputs=OracleInputs.from_json(parse(inputs_data)))
    preview, _ = EpochPreview.objects.update_or_create(
        campaign=campaign,
        defaults={"epoch": epoch, "as_of_ms": until_ms, "bundle": parse(bundle_data), "attested_depth": attested},
    )
    return preview


def epoch_previews_due(*, now: datetime | None = None) -> list[int]:
    """Campaigns running now that this oracle records for: one preview task each."""
    now = now or timezone.now()
    ours = oracle_addresses("recording")
    if not ours:
        return []
    return list(
        _ours(Campaign.objects.filter(funded=True, start__lte=now, end__gt=now), ours)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
