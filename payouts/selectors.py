"""Reads of the payouts app."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.files.storage import storages
from django.db.models import Count, F, Prefetch
from django.urls import reverse
from django.utils import timezone
from web3 import Web3

from campaigns.models import Campaign, CampaignMetadata
from campaigns.selectors import campaign_metadata_get, campaign_status, reward_token, token_units_text
from contracts import load_artifact
from execution.domain.units import for_people
from execution.models import ExecutionReport
from mrmarket.errors import NotFound
from payouts.domain.distribution import BatchStatus, PayoutState
from payouts.domain.epochs import CloseState
from payouts.domain.merkle import PayoutLeaf, PayoutTree
from payouts.domain.recorder import shard_of, stored_book
from payouts.domain.scoring.inputs import Snapshot
from payouts.errors import CampaignUnknown
from payouts.models import (
    BookSnapshot,
    EpochClose,
    EpochPayout,
    EpochPreview,
    ExternalReport,
    OracleTransaction,
    Participant,
    PayoutBatch,
)

ARTIFACT_STORAGE = "oracle_artifacts"

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


def artifact_path(close: EpochClose, kind: str) -> str:
    """The public path of one of an epoch's documents (`inputs`, `bundle` or `manifest`)."""
    return f"/api/v1/payouts/{close.campaign.chain_id}/{close.campaign.address}/{close.epoch}/{kind}.json"


def epoch_artifact(*, close: EpochClose, kind: str) -> bytes | None:
    """The stored bytes of an epoch's inputs, bundle or payout manifest; None before they are stored."""
    name = {"inputs": close.inputs_name, "bundle": close.bundle_name, "manifest": close.manifest_name}[kind]
    if not name:
        return None
    with storages[ARTIFACT_STORAGE].open(name, "rb") as stored:
        data: bytes = stored.read()
    return data


def report_envelope(*, digest: str) -> str | None:
    """A verified report's envelope as it was verified (canonical JSON), by its digest: one of this system's
    executors', or one pushed from an executor elsewhere (both are source reports of the inputs)."""
    row = ExecutionReport.objects.filter(digest=digest.lower()).only("envelope").first()
    if row is not None:
        return row.envelope
    pushed = ExternalReport.objects.filter(digest=digest.lower()).only("envelope").first()
    return None if pushed is None else pushed.envelope


# --- Payouts: a participant's leaf and its proof -------------------------------------------------------------------


class LeafStatus:
    NOT_PUBLISHED = "not_published"  # the root is not on chain yet: the proof cannot be used yet
    CLAIMABLE = "claimable"  # the root is on chain and the leaf is unpaid: a batch will push it, or claim it now
    DISTRIBUTED = "distributed"  # paid by a distribute batch (the oracle's, or anyone's)
    CLAIMED = "claimed"  # paid by a claim


@dataclass(frozen=True)
class LeafProof:
    """One account's leaf of an epoch's payout manifest, its Merkle proof, and the `claim` call that pays it."""

    chain_id: int
    campaign: str
    epoch: int
    index: int
    account: str
    amount: int
    proof: list[str]
    merkle_root: str
    manifest_digest: str
    status: str
    claim_to: str
    claim_data: str
    amount_display: str | None = None  # the amount in token units, for people (None: the decimals are unknown)


@lru_cache(maxsize=16)
def payout_tree(manifest_digest: str, data: bytes) -> tuple[PayoutTree, dict[str, int]] | None:
    """The manifest's tree and its leaf index by account, None when it pays nobody; cached by digest (a stored
    manifest never changes)."""
    leaves = [
        PayoutLeaf(int(leaf["index"]), str(leaf["account"]), int(leaf["amount"])) for leaf in json.loads(data)["leaves"]
    ]
    if not leaves:
        return None
    return PayoutTree(leaves), {leaf.account: leaf.index for leaf in leaves}


def payout_leaf_proof(*, close: EpochClose, account: str) -> LeafProof | None:
    """The leaf of `account` in the epoch's stored manifest with its proof and payment status; None when the
    manifest pays it nothing (or is not stored yet)."""
    data = epoch_artifact(close=close, kind="manifest")
    if data is None or hashlib.sha256(data).hexdigest() != close.manifest_digest:
        return None  # not stored, or not the bytes the close names: no proof is served from it
    built = payout_tree(close.manifest_digest, data)
    if built is None:
        return None
    tree, by_account = built
    index = by_account.get(account.lower())
    if index is None:
        return None
    leaf = tree.leaves[index]
    proof = tree.proof(index)
    payout = EpochPayout.objects.filter(close=close).first()
    status = LeafStatus.NOT_PUBLISHED
    if payout is not None and payout.state in (PayoutState.DISTRIBUTING, PayoutState.PAID):
        # What the chain's events said at the payout's last pass (a distribute by anyone counts), and our own
        # mined batches; a paid payout has no leaf left to claim.
        pushed = any(first <= index < first + count for first, count in payout.distributed_ranges)
        status = LeafStatus.CLAIMABLE
        if index in payout.claimed_leaves:
            status = LeafStatus.CLAIMED
        elif (
            pushed
            or payout.state == PayoutState.PAID
            or payout.batches.filter(
                status=BatchStatus.PAID, first_index__lte=index, first_index__gt=index - F("count")
            ).exists()
        ):
            status = LeafStatus.DISTRIBUTED
    calldata = (
        Web3()
        .eth.contract(abi=load_artifact("Campaign").abi)
        .encode_abi("claim", args=[close.epoch, index, Web3.to_checksum_address(leaf.account), leaf.amount, proof])
    )
    return LeafProof(
        chain_id=close.campaign.chain_id,
        campaign=close.campaign.address,
        epoch=close.epoch,
        index=index,
        account=leaf.account,
        amount=leaf.amount,
        proof=["0x" + node.hex() for node in proof],
        merkle_root="0x" + tree.root.hex(),
        manifest_digest=close.manifest_digest,
        status=status,
        claim_to=close.campaign.address,
        claim_data=str(calldata),
        amount_display=token_units_text(close.campaign, leaf.amount, _metadata(close.campaign)),
    )


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
    estimated_reward_display: str | None = None  # in token units; None when the metadata lacks the decimals


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
        estimated_reward_display=token_units_text(
            preview.campaign, int(entry["amount"]), campaign_metadata_get(metadata_hash=preview.campaign.metadata_hash)
        ),
    )


# --- Participants (Sign-In with Ethereum joining; docs/participants.md) ------------------------------------


@dataclass(frozen=True)
class ParticipantAccountStatus:
    exchange_account_id: int
    exchange: str
    label: str
    api_key_hint: str
    status: str
    added_at: datetime


@dataclass(frozen=True)
class ParticipantOrderStatus:
    mm_order_id: int
    job_id: str
    state: str
    verified_reports: int


@dataclass(frozen=True)
class ParticipantStatus:
    """What a participant sees of itself. The epoch fields are None when no preview was supplied."""

    participant_id: int
    chain_id: int
    campaign_address: str
    reward_address: str
    joined_at: datetime
    accounts: tuple[ParticipantAccountStatus, ...]
    orders: tuple[ParticipantOrderStatus, ...]
    estimate: ParticipantEstimate | None = None  # the open epoch so far, from the latest preview


def participant_get(*, chain_id: int, campaign_address: str, reward_address: str) -> Participant:
    participant = (
        Participant.objects.select_related("campaign")
        .filter(
            campaign__chain_id=chain_id,
            campaign__address=campaign_address.lower(),
            reward_address=reward_address.lower(),
        )
        .first()
    )
    if participant is None:
        raise NotFound("this address has not joined this campaign")
    return participant


def participant_status(*, participant: Participant) -> ParticipantStatus:
    """Joined when, which read-only keys (never the key itself), which MM orders with how many verified reports
    each, and the open epoch's figures so far (D, V, flags, estimated reward) from the latest preview."""
    accounts = tuple(
        ParticipantAccountStatus(
            exchange_account_id=link.exchange_account.pk,
            exchange=link.exchange_account.exchange,
            label=link.exchange_account.label,
            api_key_hint=link.exchange_account.api_key_hint,
            status=link.exchange_account.status,
            added_at=link.added_at,
        )
        for link in participant.accounts.select_related("exchange_account").order_by("added_at", "pk")
    )
    links = list(participant.orders.select_related("mm_order").order_by("mm_order_id"))
    # Stored reports are verified ones: a report is kept only once its signature and chain checked out.
    counts = dict(
        ExecutionReport.objects.filter(order_id__in=[link.mm_order_id for link in links])
        .values_list("order_id")
        .annotate(n=Count("pk"))
        .values_list("order_id", "n")
    )
    orders = tuple(
        ParticipantOrderStatus(
            mm_order_id=link.mm_order.pk,
            job_id=link.mm_order.job_id,
            state=link.mm_order.state,
            verified_reports=counts.get(link.mm_order_id, 0),
        )
        for link in links
    )
    return ParticipantStatus(
        participant_id=participant.pk,
        chain_id=participant.campaign.chain_id,
        campaign_address=participant.campaign.address,
        reward_address=participant.reward_address,
        joined_at=participant.joined_at,
        accounts=accounts,
        orders=orders,
        estimate=participant_estimate(campaign_id=participant.campaign_id, address=participant.reward_address),
    )


# --- end of Participants -----------------------------------------------------------------------------------


# --- Market-data recorder ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedCampaign:
    """What the recorder needs of one campaign: its market, its sample grid and its scoring band."""

    campaign_id: int
    chain_id: int
    address: str
    exchange: str
    symbol: str
    start_ms: int
    end_ms: int
    sample_ms: int
    max_spread_bps: int


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def recorder_campaigns(*, now: datetime, shard: int, shards: int) -> list[RecordedCampaign]:
    """The campaigns shard `shard` of `shards` records now: running ([start, end) holds `now`), on a known
    market, with a metadata document that carries scoring parameters."""
    running = Campaign.objects.filter(start__lte=now, end__gt=now).exclude(exchange="").exclude(pair="")
    mine = [c for c in running if shard_of(chain_id=c.chain_id, address=c.address, shards=shards) == shard]
    documents = dict(
        CampaignMetadata.objects.filter(hash__in={c.metadata_hash for c in mine}).values_list("hash", "document")
    )
    out: list[RecordedCampaign] = []
    for c in sorted(mine, key=lambda c: c.pk):
        scoring = (documents.get(c.metadata_hash) or {}).get("scoring") or {}
        sample_seconds, max_spread_bps = scoring.get("sample_seconds"), scoring.get("max_spread_bps")
        if not isinstance(sample_seconds, int) or not isinstance(max_spread_bps, int) or sample_seconds <= 0:
            continue  # no verified document yet: nothing says when to sample or what to keep
        out.append(
            RecordedCampaign(
                campaign_id=c.pk,
                chain_id=c.chain_id,
                address=c.address,
                exchange=c.exchange,
                symbol=c.pair,
                start_ms=_ms(c.start),
                end_ms=_ms(c.end),
                sample_ms=sample_seconds * 1000,
                max_spread_bps=max_spread_bps,
            )
        )
    return out


def epoch_snapshots(*, campaign: Campaign, sample_times: Sequence[int]) -> list[Snapshot]:
    """The recorded book at each sample time, in the order asked; a sample time with no row, or a row without
    a book, is a gap (`book=None`)."""
    found = BookSnapshot.objects.filter(campaign=campaign, t_ms__in=set(sample_times), book__isnull=False)
    books = {t: stored_book(book) for t, book in found.values_list("t_ms", "book") if book is not None}
    return [Snapshot(t_ms=t, book=books.get(t)) for t in sample_times]


# ------------------------------------------------------------------------------------------------------------------
# The public audit page of a campaign (/campaigns/<chain>/<address>/audit; docs/participants.md, "The audit page"):
# the campaign, each epoch's close and payout in plain words with the documents, reports and transactions to check
# them by, the commands that recompute them, and, for an address, its own leaf with the claim call.
# ------------------------------------------------------------------------------------------------------------------

CLOSE_STATE_TEXT = {
    CloseState.COLLECTING: "Collecting: the epoch is running, or its reports may still arrive.",
    CloseState.CLOSING: "Closing: the oracle is building the epoch's inputs and scoring them.",
    CloseState.STORED: "Stored: the documents are published here; recordResults is on its way to the chain.",
    CloseState.RECORDED: "Recorded: the results bundle's digest is on chain.",
    CloseState.FAILED: "Failed: the results could not be recorded; a person is looking at it.",
}
PAYOUT_STATE_TEXT = {
    PayoutState.PENDING: "Pending: the payout manifest is ready; its root is not sent to the chain yet.",
    PayoutState.PUBLISHING: "Publishing: publishPayout is sent and not yet mined.",
    PayoutState.DISTRIBUTING: (
        "Paying: the root is on chain. Batches pay every unpaid leaf, and anyone may claim a leaf now."
    ),
    PayoutState.PAID: "Paid: every leaf is paid.",
    PayoutState.EMPTY: "Nothing to pay: nobody scored, nothing is published, the epoch's budget stays refundable.",
    PayoutState.FAILED: "Failed: the chain refused the publication; a person decides what happens next.",
}
NO_PAYOUT_TEXT = "Not started: the payout starts once the results are recorded."
BATCH_STATUS_TEXT = {
    BatchStatus.PENDING: "sent, not yet mined",
    BatchStatus.PAID: "paid",
    BatchStatus.REVERTED: "reverted (a leaf was claimed first): nothing paid",
    BatchStatus.PARKED: "parked (its nonce went to another transaction): nothing paid",
}
LEAF_STATUS_TEXT = {
    LeafStatus.NOT_PUBLISHED: "Not payable yet: the payout's root is not on chain.",
    LeafStatus.CLAIMABLE: "Claimable: unpaid. A batch of the oracle will pay it, or claim it now.",
    LeafStatus.DISTRIBUTED: "Paid by a batch of the oracle.",
    LeafStatus.CLAIMED: "Paid by a claim.",
}
TX_STATUS_TEXT = {
    OracleTransaction.Status.SIGNED: "signed, not yet sent",
    OracleTransaction.Status.BROADCAST: "sent, not yet mined",
    OracleTransaction.Status.MINED: "mined",
    OracleTransaction.Status.REVERTED: "reverted",
    OracleTransaction.Status.PARKED: "parked: its nonce went to another transaction",
    OracleTransaction.Status.ADOPTED: "already on chain",
}
ARTIFACT_KINDS = ("inputs", "bundle", "manifest")
RECOMPUTE_COMMAND = (
    "python -m payouts.audit recompute --inputs inputs.json --bundle bundle.json --manifest manifest.json"
)
RPC_PLACEHOLDER = "<RPC URL>"  # never our own endpoint: its URL may carry a provider's key


@dataclass(frozen=True)
class AuditAmount:
    """An amount in base units and as people read it: token units, exact (base units only when the token's
    decimals are unknown)."""

    units: int
    text: str


@dataclass(frozen=True)
class AuditLink:
    """A transaction hash or an address, with its block explorer link when the chain has one configured."""

    value: str
    url: str | None


@dataclass(frozen=True)
class AuditTx:
    tx_hash: AuditLink
    block: int | None
    status: str  # plain words


@dataclass(frozen=True)
class AuditDocument:
    kind: str  # inputs, bundle or manifest
    digest: str
    url: str | None  # the public path; None until it is stored


@dataclass(frozen=True)
class AuditReport:
    digest: str
    url: str


@dataclass(frozen=True)
class AuditBatch:
    kind: str
    first_index: int
    last_index: int
    amount: AuditAmount
    status: str
    status_text: str
    tx: AuditTx | None


@dataclass(frozen=True)
class AuditPayout:
    state: str
    state_text: str
    merkle_root: str
    total: AuditAmount
    paid: AuditAmount  # by the oracle's batches and by claims
    leaf_count: int
    claimed_leaves: int
    publish_tx: AuditTx | None
    batches: tuple[AuditBatch, ...]
    failure_reason: str


@dataclass(frozen=True)
class AuditLeaf:
    """The audited address's leaf in one epoch's manifest, with the `claim` call that pays it."""

    index: int
    account: str
    amount: AuditAmount
    status: str
    status_text: str
    claimable: bool
    proof: tuple[str, ...]
    merkle_root: str
    claim_to: str
    claim_data: str


@dataclass(frozen=True)
class AuditCommands:
    """How to check one epoch yourself: download, recompute, verify against the chain; and the software to run."""

    downloads: tuple[str, ...]
    recompute: str
    verify: str
    software_version: str | None
    software_commit: str | None


@dataclass(frozen=True)
class AuditEpoch:
    epoch: int
    start: datetime
    end: datetime
    state: str
    state_text: str
    failure_reason: str
    participants: int
    notes: tuple[dict[str, Any], ...]
    documents: tuple[AuditDocument, ...]
    reports: tuple[AuditReport, ...]
    record_tx: AuditTx | None
    payout: AuditPayout | None
    payout_text: str  # the payout's state in plain words, or that there is none yet
    commands: AuditCommands | None  # None until the documents are stored
    leaf: AuditLeaf | None  # the audited address's leaf, when it has one
    manifest_stored: bool


@dataclass(frozen=True)
class CampaignAudit:
    chain_id: int
    address: AuditLink
    title: str
    exchange: str
    pair: str
    status: str
    token: AuditLink
    token_symbol: str
    token_decimals: int | None  # None when no verified metadata document names the campaign's token
    budget: AuditAmount
    fee_percent: str
    start: datetime
    end: datetime
    epoch_seconds: int
    epoch_length: str  # in words: "1 day", "3 minutes"
    epoch_count: int
    dispute_window_seconds: int
    dispute_window: str  # in words
    dispute_window_ends: datetime
    dispute_window_open: bool
    creator: AuditLink
    artifacts_base_url: str
    explorer_url: str | None  # the chain's block explorer, when one is configured
    epochs: tuple[AuditEpoch, ...]  # newest first
    account: str | None  # the audited address, lower-case


class _Units:
    """Formats the campaign's reward token amounts: exact token units, or base units when decimals are unknown."""

    def __init__(self, symbol: str, decimals: int | None) -> None:
        self.symbol, self.decimals = symbol, decimals

    def __call__(self, units: int) -> AuditAmount:
        if self.decimals is None:
            return AuditAmount(units, f"{units:,} base units")
        return AuditAmount(units, for_people(units, self.decimals, self.symbol))


def duration_text(seconds: int) -> str:
    """A whole number of seconds in words, largest units first: 172800 → "2 days", 5430 → "1 hour 30 minutes 30
    seconds"."""
    parts = []
    for name, size in (("day", 86_400), ("hour", 3_600), ("minute", 60), ("second", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {name}{'' if count == 1 else 's'}")
    return " ".join(parts) or "0 seconds"


def _explorer_base(chain_id: int) -> str | None:
    base = settings.CHAIN_EXPLORER_URLS.get(str(chain_id))
    return str(base).rstrip("/") if base else None


def _link(explorer: str | None, kind: str, value: str) -> AuditLink:
    return AuditLink(value, f"{explorer}/{kind}/{value}" if explorer else None)


def _tx(
    explorer: str | None, *, mined_hash: str, mined_block: int | None, row: OracleTransaction | None
) -> AuditTx | None:
    """The transaction as the chain settled it (`mined_hash`), else the stored one on its way, else None."""
    if mined_hash:
        return AuditTx(_link(explorer, "tx", mined_hash), mined_block, "mined")
    if row is None or not row.tx_hash:
        return None
    status = TX_STATUS_TEXT[OracleTransaction.Status(row.status)]
    return AuditTx(_link(explorer, "tx", row.tx_hash), row.block_number, status)


def _metadata(campaign: Campaign) -> dict[str, Any]:
    row = CampaignMetadata.objects.filter(hash=campaign.metadata_hash.lower()).only("document").first()
    return row.document if row is not None and isinstance(row.document, dict) else {}


def _reward_token(campaign: Campaign, metadata: dict[str, Any]) -> tuple[str, int | None]:
    return reward_token(campaign, metadata)


@lru_cache(maxsize=256)
def _source_reports(inputs_digest: str, inputs_name: str) -> tuple[str, ...]:
    """The stored inputs document's `source_reports`; cached by digest (a stored document never changes)."""
    with storages[ARTIFACT_STORAGE].open(inputs_name, "rb") as stored:
        reports = json.loads(stored.read()).get("source_reports") or []
    return tuple(str(digest) for digest in reports)


@lru_cache(maxsize=256)
def _bundle_software(bundle_digest: str, bundle_name: str) -> tuple[str | None, str | None]:
    """The (version, commit) the stored bundle's `software` names; cached by digest."""
    with storages[ARTIFACT_STORAGE].open(bundle_name, "rb") as stored:
        software = json.loads(stored.read()).get("software")
    if not isinstance(software, dict):
        return None, None
    version, commit = software.get("version"), software.get("commit")
    return (version if isinstance(version, str) else None), (commit if isinstance(commit, str) else None)


def _commands(close: EpochClose, base_url: str) -> AuditCommands | None:
    if not (close.inputs_name and close.bundle_name and close.manifest_name):
        return None
    version, commit = _bundle_software(close.bundle_digest, close.bundle_name)
    campaign = close.campaign
    return AuditCommands(
        downloads=tuple(f"curl -fsSo {kind}.json {base_url}{artifact_path(close, kind)}" for kind in ARTIFACT_KINDS),
        recompute=RECOMPUTE_COMMAND,
        verify=(
            f"python -m payouts.audit verify --rpc {RPC_PLACEHOLDER} --campaign {campaign.address} "
            f"--epoch {close.epoch} --artifacts {base_url}"
        ),
        software_version=version,
        software_commit=commit,
    )


def _payout(payout: EpochPayout, units: _Units, explorer: str | None) -> AuditPayout:
    batches = tuple(
        AuditBatch(
            kind=batch.kind,
            first_index=batch.first_index,
            last_index=batch.first_index + batch.count - 1,
            amount=units(int(batch.amount)),
            status=batch.status,
            status_text=BATCH_STATUS_TEXT[BatchStatus(batch.status)],
            tx=_tx(explorer, mined_hash="", mined_block=None, row=batch.tx),
        )
        for batch in payout.batches.all()
    )
    return AuditPayout(
        state=payout.state,
        state_text=PAYOUT_STATE_TEXT[PayoutState(payout.state)],
        merkle_root=payout.merkle_root,
        total=units(int(payout.total)),
        paid=units(int(payout.distributed_amount) + int(payout.claimed_amount)),
        leaf_count=payout.leaf_count,
        claimed_leaves=len(payout.claimed_leaves),
        publish_tx=_tx(
            explorer, mined_hash=payout.published_tx_hash, mined_block=payout.published_block, row=payout.publish_tx
        ),
        batches=batches,
        failure_reason=payout.failure_reason,
    )


def _leaf(close: EpochClose, account: str, units: _Units) -> AuditLeaf | None:
    found = payout_leaf_proof(close=close, account=account)
    if found is None:
        return None
    return AuditLeaf(
        index=found.index,
        account=found.account,
        amount=units(found.amount),
        status=found.status,
        status_text=LEAF_STATUS_TEXT[found.status],
        claimable=found.status == LeafStatus.CLAIMABLE,
        proof=tuple(found.proof),
        merkle_root=found.merkle_root,
        claim_to=found.claim_to,
        claim_data=found.claim_data,
    )


def _payout_of(close: EpochClose) -> EpochPayout | None:
    try:
        return close.payout
    except EpochPayout.DoesNotExist:
        return None


def _epoch(close: EpochClose, *, units: _Units, explorer: str | None, base_url: str, account: str | None) -> AuditEpoch:
    documents = tuple(
        AuditDocument(
            kind=kind,
            digest=getattr(close, f"{kind}_digest"),
            url=artifact_path(close, kind) if getattr(close, f"{kind}_name") else None,
        )
        for kind in ARTIFACT_KINDS
    )
    digests = _source_reports(close.inputs_digest, close.inputs_name) if close.inputs_name else ()
    reports = tuple(
        AuditReport(digest, reverse("api-v1:payouts:report", kwargs={"digest": digest})) for digest in digests
    )
    payout = _payout_of(close)
    audited = _payout(payout, units, explorer) if payout is not None else None
    return AuditEpoch(
        epoch=close.epoch,
        start=close.epoch_start,
        end=close.epoch_end,
        state=close.state,
        state_text=CLOSE_STATE_TEXT[CloseState(close.state)],
        failure_reason=close.failure_reason,
        participants=close.participants,
        notes=tuple(note for note in close.notes if isinstance(note, dict)),
        documents=documents,
        reports=reports,
        record_tx=_tx(explorer, mined_hash=close.tx_hash, mined_block=close.block_number, row=close.record_tx),
        payout=audited,
        payout_text=audited.state_text if audited is not None else NO_PAYOUT_TEXT,
        commands=_commands(close, base_url),
        leaf=_leaf(close, account, units) if account else None,
        manifest_stored=bool(close.manifest_name),
    )


def campaign_audit(*, chain_id: int, address: str, account: str | None = None) -> CampaignAudit:
    """Everything the audit page shows of one campaign, epochs newest first; with `account` (a 0x address), its
    own leaf in each epoch. Raises `CampaignUnknown`."""
    campaign = Campaign.objects.filter(chain_id=chain_id, address=address.lower()).first()
    if campaign is None:
        raise CampaignUnknown(f"no campaign {address} on chain {chain_id}")
    metadata = _metadata(campaign)
    symbol, decimals = _reward_token(campaign, metadata)
    units = _Units(symbol, decimals)
    explorer = _explorer_base(chain_id)
    base_url = str(settings.ORACLE_PUBLIC_BASE_URL).rstrip("/")
    closes = (
        EpochClose.objects.filter(campaign=campaign)
        .select_related("campaign", "record_tx", "payout", "payout__publish_tx")
        .prefetch_related(Prefetch("payout__batches", queryset=PayoutBatch.objects.select_related("tx")))
        .order_by("-epoch")
    )
    account = account.lower() if account else None
    epochs = tuple(
        _epoch(close, units=units, explorer=explorer, base_url=base_url, account=account) for close in closes
    )
    epoch_length = timedelta(seconds=campaign.epoch_seconds)
    dispute_window_ends = campaign.end + timedelta(seconds=campaign.dispute_window_seconds)
    return CampaignAudit(
        chain_id=campaign.chain_id,
        address=_link(explorer, "address", campaign.address),
        title=str(metadata.get("title") or ""),
        exchange=campaign.exchange,
        pair=campaign.pair,
        status=campaign_status(campaign).value,
        token=_link(explorer, "address", campaign.token),
        token_symbol=symbol,
        token_decimals=decimals,
        budget=units(int(campaign.budget)),
        fee_percent=format(Decimal(campaign.fee_bps) / 100, "f"),
        start=campaign.start,
        end=campaign.end,
        epoch_seconds=campaign.epoch_seconds,
        epoch_length=duration_text(campaign.epoch_seconds),
        epoch_count=-((campaign.start - campaign.end) // epoch_length),
        dispute_window_seconds=campaign.dispute_window_seconds,
        dispute_window=duration_text(campaign.dispute_window_seconds),
        dispute_window_ends=dispute_window_ends,
        dispute_window_open=timezone.now() < dispute_window_ends,
        creator=_link(explorer, "address", campaign.creator),
        artifacts_base_url=base_url,
        explorer_url=explorer,
        epochs=epochs,
        account=account,
    )


# --- end of The public audit page ---------------------------------------------------------------------------------


# --- A signed-in address's own page: the campaigns it created, the ones it joined, and its leaves ----------------


@dataclass(frozen=True)
class OwnLeaf:
    epoch: int
    index: int
    amount: AuditAmount
    status: str  # LeafStatus


@dataclass(frozen=True)
class OwnCampaign:
    campaign: Campaign
    title: str
    leaves: tuple[OwnLeaf, ...]  # newest epoch first, the latest OWN_EPOCHS recorded ones

    @property
    def claimable(self) -> int:
        return sum(1 for leaf in self.leaves if leaf.status == LeafStatus.CLAIMABLE)


@dataclass(frozen=True)
class AddressOverview:
    address: str
    created: tuple[OwnCampaign, ...]
    joined: tuple[OwnCampaign, ...]


OWN_EPOCHS = 50


def _own(campaign: Campaign, address: str) -> OwnCampaign:
    metadata = _metadata(campaign)
    units = _Units(*_reward_token(campaign, metadata))
    leaves = []
    closes = EpochClose.objects.filter(campaign=campaign, state=CloseState.RECORDED.value).order_by("-epoch")
    for close in closes.select_related("campaign")[:OWN_EPOCHS]:
        leaf = payout_leaf_proof(close=close, account=address)
        if leaf is not None:
            leaves.append(OwnLeaf(close.epoch, leaf.index, units(leaf.amount), leaf.status))
    title = metadata.get("title")
    return OwnCampaign(campaign, title if isinstance(title, str) and title else campaign.pair, tuple(leaves))


def address_overview(*, address: str) -> AddressOverview:
    """What a signed-in address has here: the campaigns it created (as their creator on chain), the campaigns it
    joined as a participant, and in each its leaves of the latest recorded epochs with their payment status."""
    address = address.lower()
    created = Campaign.objects.filter(creator__iexact=address).order_by("-created_block")
    joined = Campaign.objects.filter(participants__reward_address=address).order_by("-created_block").distinct()
    return AddressOverview(
        address=address,
        created=tuple(_own(c, address) for c in created[:100]),
        joined=tuple(_own(c, address) for c in joined[:100]),
    )
