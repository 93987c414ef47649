"""Reads of the payouts app."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from django.core.files.storage import storages
from django.db.models import Count, F
from web3 import Web3

from campaigns.models import Campaign, CampaignMetadata
from contracts import load_artifact
from execution.models import ExecutionReport
from mrmarket.errors import NotFound
from payouts.domain.distribution import BatchStatus, PayoutState
from payouts.domain.merkle import PayoutLeaf, PayoutTree
from payouts.domain.recorder import shard_of, stored_book
from payouts.domain.scoring.inputs import Snapshot
from payouts.models import BookSnapshot, EpochClose, EpochPayout, EpochPreview, Participant

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
    """A verified report's envelope as it was verified (canonical JSON), by its digest."""
    row = ExecutionReport.objects.filter(digest=digest.lower()).only("envelope").first()
    return None if row is None else row.envelope


# --- Payouts: a participant's leaf and its proof -------------------------------------------------------------------


class LeafStatus:
    NOT_PUBLISHED = "not_published"  # the root is not on chain yet: the proof cannot be used yet
    CLAIMABLE = "claimable"  # the root is on chain and the leaf is unpaid: a batch will push it, or claim it now
    DISTRIBUTED = "distributed"  # paid by one of the oracle's batches
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
    if data is None or not close.manifest_digest:
        return None
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
        status = LeafStatus.CLAIMABLE
        if index in payout.claimed_leaves:
            status = LeafStatus.CLAIMED
        elif payout.batches.filter(
            status=BatchStatus.PAID, first_index__lte=index, first_index__gt=index - F("count")
        ).exists():
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
