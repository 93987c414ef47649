"""A campaign with epochs in every state the audit page tells apart, built as rows and stored documents (no chain,
no worker): the documents are real ones (inputs → bundle → manifest through `payouts.domain`), so their digests,
leaves and proofs are what the close and the payout would have produced.

Epochs, newest first: 4 collecting; 3 recorded and paid (two batches); 2 recorded and distributing (one batch
paid, one pending: the audited account's leaf is claimable); 1 failed before anything was stored; 0 recorded
with nobody scored (an empty payout)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import storages

from campaigns.models import Campaign, CampaignMetadata
from execution.models import ExchangeAccount, ExecutionReport, MMOrder
from payouts.domain.bundle import Software, bundle_bytes, results_bundle
from payouts.domain.manifest import manifest_bytes, payout_manifest
from payouts.models import (
    EpochClose,
    EpochPayout,
    ExternalReport,
    OracleTransaction,
    Participant,
    ParticipantAccount,
    PayoutBatch,
)
from payouts.selectors import ARTIFACT_STORAGE
from tests.factories import user_with
from tests.payouts.bundle_fixtures import envelope, paying_document
from tests.payouts.scoring_fixtures import A, C, D, document, participant
from wire.canonical import canonical_bytes

CHAIN = 31337
ADDRESS = "0x" + "c4" * 20
TOKEN = "0x" + "ab" * 20
DECIMALS = 18
SYMBOL = "MMT"
COMMIT = "1f" * 20
SOFTWARE = Software(version="0.1.0", commit=COMMIT)
AUDITED = D  # paid in epochs 3 and 2 (leaf 2 of A, C, D)
START = datetime(2026, 11, 1, tzinfo=UTC)
EPOCH = timedelta(days=1)
REPORTS = sorted(hashlib.sha256(f"audit report {n}".encode()).hexdigest() for n in range(5))
_hashes = iter(range(1, 1_000))


def tx_hash() -> str:
    return "0x" + f"{next(_hashes):064x}"


def oracle_settings(settings: Any, location: Path) -> None:
    """The artifact storage in `location` and the public origin the commands name."""
    settings.STORAGES = {
        **settings.STORAGES,
        ARTIFACT_STORAGE: {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": location}},
    }
    settings.ORACLE_PUBLIC_BASE_URL = "https://oracle.example.org"
    settings.CHAIN_EXPLORER_URLS = {}


def campaign(**fields: Any) -> Campaign:
    metadata = {
        "title": "MMT depth",
        "reward_token": {"address": TOKEN, "symbol": SYMBOL, "decimals": DECIMALS},
        "exchange": "binance",
        "pair": "MMT/USDT",
    }
    digest = "0x" + hashlib.sha256(json.dumps(metadata, sort_keys=True).encode()).hexdigest()
    CampaignMetadata.objects.get_or_create(hash=digest, defaults={"document": metadata})
    values: dict[str, Any] = {
        "chain_id": CHAIN,
        "address": ADDRESS,
        "factory": "0x" + "fa" * 20,
        "creator": "0x" + "c0" * 20,
        "token": TOKEN,
        "recording_oracle": "0x" + "01" * 20,
        "reputation_oracle": "0x" + "02" * 20,
        "fee_recipient": "0x" + "03" * 20,
        "start": START,
        "end": START + 10 * EPOCH,
        "epoch_seconds": int(EPOCH.total_seconds()),
        "dispute_window_seconds": 2 * 86_400,
        "budget": 5_000 * 10**DECIMALS + 5,
        "fee_bps": 50,
        "metadata_hash": digest,
        "exchange": "binance",
        "pair": "MMT/USDT",
        "created_block": 1,
        "created_tx": "0x" + "77" * 32,
        "funded": True,
    }
    values.update(fields)
    return Campaign.objects.create(**values)


@dataclass
class Stored:
    inputs: bytes
    bundle: bytes
    manifest: bytes
    leaves: list[dict[str, Any]]
    root: str | None
    total: int


def documents(inputs: dict[str, Any]) -> Stored:
    bundle = json.loads(bundle_bytes(results_bundle(inputs, software=SOFTWARE)))
    manifest = payout_manifest(bundle)
    return Stored(
        inputs=canonical_bytes(inputs),
        bundle=bundle_bytes(bundle),
        manifest=manifest_bytes(manifest),
        leaves=manifest["leaves"],
        root=manifest["merkle_root"],
        total=int(manifest["total"]),
    )


def close(target: Campaign, epoch: int, state: str, stored: Stored | None = None, **fields: Any) -> EpochClose:
    values: dict[str, Any] = {
        "campaign": target,
        "epoch": epoch,
        "state": state,
        "epoch_start": START + epoch * EPOCH,
        "epoch_end": START + (epoch + 1) * EPOCH,
    }
    if stored is not None:
        for kind in ("inputs", "bundle", "manifest"):
            data = getattr(stored, kind)
            name = storages[ARTIFACT_STORAGE].save(f"{CHAIN}/{target.address}/{epoch}/{kind}.json", ContentFile(data))
            values[f"{kind}_name"] = name
            values[f"{kind}_digest"] = hashlib.sha256(data).hexdigest()
        values["participants"] = len(stored.leaves)
    values.update(fields)
    return EpochClose.objects.create(**values)


def oracle_tx(purpose: str, status: str, *, block: int | None = None) -> OracleTransaction:
    return OracleTransaction.objects.create(
        purpose_key=purpose,
        role=OracleTransaction.Role.REPUTATION,
        chain_id=CHAIN,
        sender="0x" + "02" * 20,
        to=ADDRESS,
        data="0x",
        tx_hash=tx_hash(),
        status=status,
        block_number=block,
    )


def payout(row: EpochClose, stored: Stored, state: str, **fields: Any) -> EpochPayout:
    return EpochPayout.objects.create(
        close=row,
        state=state,
        manifest_digest=row.manifest_digest,
        merkle_root=stored.root or "",
        total=stored.total,
        leaf_count=len(stored.leaves),
        **fields,
    )


def batch(target: EpochPayout, first: int, count: int, amount: int, status: str, tx_status: str) -> PayoutBatch:
    block = 200 + first if tx_status == OracleTransaction.Status.MINED else None
    tx = oracle_tx(f"distribute:{target.pk}:{first}", tx_status, block=block)
    return PayoutBatch.objects.create(
        payout=target, first_index=first, count=count, amount=amount, status=status, tx=tx
    )


def exchange_account(owner: Any, label: str, role: str) -> ExchangeAccount:
    return ExchangeAccount.objects.create(
        owner=owner,
        exchange="binance",
        label=label,
        role=role,
        credentials_key_id="k1",
        credentials_wrapped_key=b"",
        credentials_ciphertext=b"",
        api_key_hint="abcd",
    )


def source_reports(target: Campaign, digests: list[str]) -> None:
    """Verified reports with these digests, so that their public links resolve: the last one pushed from an
    executor elsewhere for a participant's read-only account, the others from this system's own executor."""
    owner = user_with(username="audit-operator")
    trading = exchange_account(owner, "audit", ExchangeAccount.Role.TRADING)
    order = MMOrder.objects.create(
        owner=owner, exchange_account=trading, symbol="MMT/USDT", funding_asset="USDT", funding_amount=1, job_id="j1"
    )
    *own, pushed = digests
    for seq, digest in enumerate(own):
        ExecutionReport.objects.create(
            order=order,
            job_id="j1",
            sequence=seq,
            digest=digest,
            signing_key="aa" * 32,
            window_start_ms=seq,
            window_end_ms=seq + 1,
            envelope=json.dumps({"digest": digest}),
        )
    joined = Participant.objects.create(
        campaign=target, reward_address=A, owner=owner, joined_at=START, siwe_message="…", siwe_signature="0x"
    )
    link = ParticipantAccount.objects.create(
        participant=joined, exchange_account=exchange_account(owner, "watch", ExchangeAccount.Role.READ_ONLY)
    )
    ExternalReport.objects.create(
        account=link,
        job_id="elsewhere",
        sequence=0,
        digest=pushed,
        signing_key="bb" * 32,
        window_start_ms=0,
        window_end_ms=1,
        envelope=json.dumps({"digest": pushed}),
    )


@dataclass
class Scene:
    campaign: Campaign
    closes: dict[int, EpochClose]
    paying: Stored
    txs: dict[str, str]  # what → hash


def scene() -> Scene:
    target = campaign()
    many = paying_document()
    many["source_reports"] = REPORTS
    paying = documents(many)
    few = paying_document()
    few["source_reports"] = REPORTS[:2]
    paying_few = documents(few)
    nobody = documents(envelope(document([participant(A), participant(C)], epoch_budget="5000"), source_reports=[]))
    amounts = [int(leaf["amount"]) for leaf in paying.leaves]
    assert [leaf["account"] for leaf in paying.leaves] == [A, C, D]
    txs: dict[str, str] = {}
    closes: dict[int, EpochClose] = {}

    closes[0] = close(target, 0, "recorded", nobody, tx_hash=tx_hash(), block_number=100)
    payout(closes[0], nobody, "empty")

    closes[1] = close(target, 1, "failed", failure_reason="the escrow refused recordResults: EpochNotOver")

    closes[2] = close(target, 2, "recorded", paying_few, tx_hash=tx_hash(), block_number=102)
    publish = oracle_tx("publish:2", OracleTransaction.Status.MINED, block=103)
    distributing = payout(
        closes[2],
        paying_few,
        "distributing",
        publish_tx=publish,
        published_tx_hash=publish.tx_hash or "",
        published_block=103,
        distributed_amount=amounts[0] + amounts[1],
    )
    batch(distributing, 0, 2, amounts[0] + amounts[1], "paid", OracleTransaction.Status.MINED)
    pending = batch(distributing, 2, 1, amounts[2], "pending", OracleTransaction.Status.BROADCAST)
    txs["pending_batch"] = pending.tx.tx_hash or ""

    closes[3] = close(target, 3, "recorded", paying, tx_hash=tx_hash(), block_number=110)
    txs["record_3"] = closes[3].tx_hash
    publish = oracle_tx("publish:3", OracleTransaction.Status.MINED, block=111)
    txs["publish_3"] = publish.tx_hash or ""
    paid = payout(
        closes[3],
        paying,
        "paid",
        publish_tx=publish,
        published_tx_hash=publish.tx_hash or "",
        published_block=111,
        distributed_amount=sum(amounts),
    )
    batch(paid, 0, 2, amounts[0] + amounts[1], "paid", OracleTransaction.Status.MINED)
    last = batch(paid, 2, 1, amounts[2], "paid", OracleTransaction.Status.MINED)
    txs["batch_3_2"] = last.tx.tx_hash or ""

    closes[4] = close(target, 4, "collecting")
    source_reports(target, REPORTS)
    return Scene(campaign=target, closes=closes, paying=paying, txs=txs)
