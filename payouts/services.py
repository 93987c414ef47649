"""Writes of the payouts app: `<entity>_<action>(*, ...)`, typed, atomic, idempotent where they touch the outside."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from attestation.selectors import signing_key_attested
from campaigns.models import Campaign
from execution.accounts import exchange_account_enrol
from execution.models import ExecutionReport, MMOrder
from mrmarket.errors import NotFound
from mrmarket.exchanges.credentials import ExchangeCredentials
from mrmarket.siwe import (
    DatabaseNonceStore,
    IssuedNonce,
    NonceStore,
    campaign_resource,
    siwe_nonce_issue,
    siwe_verify,
)
from payouts.errors import (
    AccountNotForParticipant,
    CampaignUnknown,
    ExternalReportChainBroken,
    ExternalReportClaimed,
    ExternalReportInvalid,
    ExternalReportWrongMarket,
    IdentityRateLimited,
    MMOrderNotForParticipant,
    ParticipantOwnedByAnother,
    ReportKeyNotAttested,
    SnapshotInvalid,
)
from payouts.models import BookSnapshot, ExternalReport, Participant, ParticipantAccount, ParticipantOrder
from wire.canonical import digest, parse
from wire.errors import ChainError, WireError
from wire.reports import SignedReport, report_bytes, validate_report, verify_chain

# --- Participants (Sign-In with Ethereum joining; docs/participants.md) ------------------------------------


def participant_nonce_issue(*, owner_id: int | None = None) -> IssuedNonce:
    """A fresh single-use nonce for the EIP-4361 message of a join: issued to a signed-in user (as the API always
    does), only that user's join can use it; issued to nobody (in-process callers), any user's join can."""
    return siwe_nonce_issue(user_id=owner_id)


def participant_join(
    *,
    chain_id: int,
    campaign_address: str,
    message: str,
    signature: str,
    owner_id: int,
    mm_order_ids: Iterable[int] = (),
    nonces: NonceStore | None = None,
) -> Participant:
    """Join the campaign with the reward address that signed `message`, and link the owner's MM orders made for
    it. Joining again (a fresh nonce, a fresh signature) returns the same participant and adds the new links.
    One transaction: any refusal leaves nothing behind, not even a used nonce."""
    address = campaign_address.lower()
    with transaction.atomic():
        campaign = Campaign.objects.filter(chain_id=chain_id, address=address).first()
        if campaign is None:
            raise CampaignUnknown(f"no campaign {address} on chain {chain_id}")
        verified = siwe_verify(
            message=message,
            signature=signature,
            chain_id=chain_id,
            resource=campaign_resource(chain_id, address),
            nonces=nonces or DatabaseNonceStore(user_id=owner_id),
        )
        orders = _orders_for(
            order_ids=mm_order_ids, owner_id=owner_id, chain_id=chain_id, campaign=address, reward=verified.address
        )
        try:
            with transaction.atomic():
                participant, _ = Participant.objects.get_or_create(
                    campaign=campaign,
                    reward_address=verified.address,
                    defaults={
                        "owner_id": owner_id,
                        "joined_at": timezone.now(),
                        "siwe_message": verified.message,
                        "siwe_signature": verified.signature,
                    },
                )
        except IntegrityError:  # a concurrent first join of the same address won the insert
            participant = Participant.objects.get(campaign=campaign, reward_address=verified.address)
        if participant.owner_id != owner_id:
            raise ParticipantOwnedByAnother(
                "this reward address joined the campaign through another user",
                extra={"participant_id": participant.pk},
            )
        for order in orders:
            ParticipantOrder.objects.get_or_create(participant=participant, mm_order=order)
    return participant


def _orders_for(*, order_ids: Iterable[int], owner_id: int, chain_id: int, campaign: str, reward: str) -> list[MMOrder]:
    wanted = sorted(set(order_ids))
    found = {o.pk: o for o in MMOrder.objects.filter(pk__in=wanted)}
    for pk in wanted:
        order = found.get(pk)
        if (
            order is None
            or order.owner_id != owner_id
            or order.campaign_chain_id != chain_id
            or order.campaign_address != campaign
            or order.reward_address != reward
        ):
            raise MMOrderNotForParticipant(
                f"MM order {pk} is not yours, or makes markets for another campaign or reward address",
                extra={"mm_order_id": pk},
            )
    return [found[pk] for pk in wanted]


def participant_account_enrol(
    *, participant_id: int, owner_id: int, exchange: str, label: str, api_key: str, secret: str, password: str = ""
) -> ParticipantAccount:
    """Enrol a read-only exchange key for the participant (execution refuses, storing nothing, a key that can
    trade or withdraw) and link it. One transaction: a refused key leaves neither account nor link."""
    participant = Participant.objects.filter(pk=participant_id, owner_id=owner_id).first()
    if participant is None:
        raise NotFound(f"you have no participant {participant_id}")
    with transaction.atomic():
        account = exchange_account_enrol(
            owner_id=owner_id,
            exchange=exchange,
            label=label,
            role="read_only",
            credentials=ExchangeCredentials(api_key=api_key, secret=secret, password=password),
        )
        return ParticipantAccount.objects.create(participant=participant, exchange_account=account)


# --- end of Participants -----------------------------------------------------------------------------------


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


# --- Reports from executors elsewhere (docs/participants.md, "Reports from executors elsewhere") ----------------


def external_reports_submit(*, participant_id: int, account_id: int, owner_id: int, envelopes: list[Any]) -> int:
    """Store the signed reports an attested executor of another operator made while trading one of the
    participant's enrolled read-only accounts, and return how many were new. Each must be signed by the key it
    names, that key bound by an accepted attestation of an executor in good standing now, be of the campaign's
    market, and continue its job's stored chain for this account (sequence 0 first, no gap, each linking to the
    digest before it). All or nothing: the first refusal (typed) stores nothing of the batch. Reports stored
    already are skipped, so a retried push is harmless."""
    try:
        with transaction.atomic():
            participant = (
                Participant.objects.select_related("campaign").filter(pk=participant_id, owner_id=owner_id).first()
            )
            if participant is None:
                raise NotFound(f"you have no participant {participant_id}")
            # Locked: two pushes for one account cannot both extend the same chain.
            link = (
                ParticipantAccount.objects.select_for_update()
                .filter(participant=participant, exchange_account_id=account_id)
                .first()
            )
            if link is None:
                raise AccountNotForParticipant(
                    f"exchange account {account_id} is not enrolled for participant {participant_id}",
                    extra={"account_id": account_id},
                )
            rows = _external_verified(link=link, campaign=participant.campaign, envelopes=envelopes)
            ExternalReport.objects.bulk_create(rows)
    except IntegrityError as exc:
        # Only the digest can collide once the account is locked: the same report pushed at the same moment for
        # another account.
        raise ExternalReportClaimed("a report is being stored for another account") from exc
    return len(rows)


def _external_verified(*, link: ParticipantAccount, campaign: Campaign, envelopes: list[Any]) -> list[ExternalReport]:
    last: dict[str, SignedReport | None] = {}  # the chain's head per job: stored, then extended by the batch
    batch: dict[tuple[str, int], str] = {}
    attested: set[str] = set()
    pushed: dict[str, int] = {}  # new reports of the batch per signing key, for the identity's rate limit
    rows: list[ExternalReport] = []
    for index, envelope in enumerate(envelopes):
        try:
            signed = SignedReport.from_json(envelope)
            # Schema and size caps first: every step after reads only fields of a checked, bounded report.
            validate_report(signed.report)
        except WireError as exc:
            raise ExternalReportInvalid(
                f"report {index}: {exc}", extra={"index": index, "reason_code": exc.code}
            ) from None
        r = signed.report
        job_id, sequence, key = r["job_id"], signed.sequence, r["executor"]["signing_key"]
        where = {"index": index, "job_id": job_id, "sequence": sequence}
        if (r["exchange"], r["symbol"]) != (campaign.exchange, campaign.pair):
            raise ExternalReportWrongMarket(
                f"report {index} is of {r['exchange']} {r['symbol']}, the campaign's market is "
                f"{campaign.exchange} {campaign.pair}",
                extra=where,
            )
        if job_id not in last:
            last[job_id] = _external_head(link, job_id)
        after = last[job_id]
        try:
            if after is not None and sequence <= after.sequence:
                known = batch.get((job_id, sequence)) or _external_digest(link, job_id, sequence)
                if known != signed.digest or digest(r) != signed.digest:
                    raise ChainError(f"report {sequence} differs from the one already stored (rewritten history)")
                continue
            if key not in attested:
                if signing_key_attested(key) is None:
                    raise ReportKeyNotAttested(
                        f"report {index} is signed by a key no accepted attestation binds now",
                        extra={**where, "signing_key": key},
                    )
                attested.add(key)
            pushed[key] = pushed.get(key, 0) + 1
            if after is not None and after.report["executor"]["signing_key"] != key:
                raise ChainError(f"report {sequence} is signed by another key than the job's earlier reports")
            verify_chain(
                [signed],
                signing_key=key,
                after=after,
                job_spec_digest=after.report["job_spec_digest"] if after is not None else None,
            )
        except ChainError as exc:
            raise ExternalReportChainBroken(
                f"report {index}: {exc}", extra={**where, "reason_code": exc.code}
            ) from None
        except WireError as exc:
            raise ExternalReportInvalid(f"report {index}: {exc}", extra={**where, "reason_code": exc.code}) from None
        if (
            ExternalReport.objects.filter(digest=signed.digest).exists()
            or ExecutionReport.objects.filter(digest=signed.digest).exists()
        ):
            raise ExternalReportClaimed(
                f"report {index} is stored already for another account or MM order", extra=where
            )
        rows.append(
            ExternalReport(
                account=link,
                job_id=job_id,
                sequence=sequence,
                digest=signed.digest,
                prev_digest=r["prev_digest"] or "",
                signing_key=key,
                window_start_ms=r["window_start_ms"],
                window_end_ms=r["window_end_ms"],
                envelope=report_bytes(signed).decode(),
            )
        )
        batch[(job_id, sequence)] = signed.digest
        last[job_id] = signed
    _identity_rate_check(pushed)
    return rows


IDENTITY_RATE_WINDOW = timedelta(hours=1)


def _identity_rate_check(pushed: dict[str, int]) -> None:
    """Refuse the batch when a signing key would have pushed more new reports within the hour than its limit."""
    limit = settings.REPORTS_PER_IDENTITY_PER_HOUR
    since = timezone.now() - IDENTITY_RATE_WINDOW
    for key, count in sorted(pushed.items()):
        stored = ExternalReport.objects.filter(signing_key=key, received_at__gte=since).count()
        if stored + count > limit:
            raise IdentityRateLimited(
                f"signing key {key[:16]}… may push {limit} reports an hour: {stored} stored within the hour, "
                f"{count} more pushed now",
                extra={"signing_key": key, "limit": limit, "stored": stored, "pushed": count},
            )


def _external_head(link: ParticipantAccount, job_id: str) -> SignedReport | None:
    row = ExternalReport.objects.filter(account=link, job_id=job_id).order_by("-sequence").first()
    return None if row is None else SignedReport.from_json(parse(row.envelope))


def _external_digest(link: ParticipantAccount, job_id: str, sequence: int) -> str | None:
    return (
        ExternalReport.objects.filter(account=link, job_id=job_id, sequence=sequence)
        .values_list("digest", flat=True)
        .first()
    )


# --- end of Reports from executors elsewhere ----------------------------------------------------------------
