"""The chain indexer: mirrors a factory's campaigns and their events into the database.

Each run, under a row lock on the chain cursor (two workers never index the same factory at once):
1. **Reorg check** — the hashes of recently indexed blocks are compared with the chain's. If the newest
   differs, the indexer walks back to the newest block that still matches (the fork point), deletes every
   campaign and event that came from later blocks, moves the cursor back, and re-derives the campaigns' state.
2. **Catch up** to `latest − confirmations`, in ranges: the factory's `CampaignCreated` logs first (so a
   campaign created in a range has its own events in that range indexed too), then the events of every known
   campaign. Each range commits with the cursor, so a crash resumes from the last committed range, and
   re-reading a range is harmless (events are unique by transaction hash and log index).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from django.db import transaction
from eth_typing import ABIEvent
from eth_utils import event_abi_to_log_topic
from web3 import Web3

from campaigns.models import Campaign, CampaignEvent, CampaignMetadata, ChainCursor, IndexedBlock
from contracts import load_artifact
from mrmarket.observability import context
from mrmarket.observability.logging import get_logger

log = get_logger(__name__)
KEEP_BLOCKS = 256


@dataclass
class IndexResult:
    chain_id: int
    from_block: int
    to_block: int
    campaigns: int = 0
    events: int = 0
    rolled_back_to: int | None = None
    touched: set[int] = field(default_factory=set)


def _hex(value: Any) -> str:
    return "0x" + bytes(value).hex() if not isinstance(value, str) else value.lower()


def _event_decoders(w3: Web3) -> dict[str, Any]:
    decoders: dict[str, Any] = {}
    for name in ("Campaign", "CampaignFactory"):
        contract = w3.eth.contract(abi=load_artifact(name).abi)
        for item in load_artifact(name).abi:
            if item.get("type") == "event":
                topic = event_abi_to_log_topic(cast(ABIEvent, item))
                decoders["0x" + topic.hex()] = getattr(contract.events, item["name"])()
    return decoders


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value) if abs(value) >= 2**53 else value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _ts(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _rollback_if_reorged(w3: Web3, cursor: ChainCursor, result: IndexResult) -> None:
    blocks = list(cursor.blocks.order_by("-number")[:KEEP_BLOCKS])
    if not blocks or _hex(w3.eth.get_block(blocks[0].number)["hash"]) == blocks[0].hash:
        return
    fork = next((b.number for b in blocks[1:] if _hex(w3.eth.get_block(b.number)["hash"]) == b.hash), None)
    if fork is None:
        fork = max(0, blocks[-1].number - 1)  # deeper than the window: re-read everything after it
    stale_campaigns = Campaign.objects.filter(chain_id=cursor.chain_id, factory=cursor.factory, created_block__gt=fork)
    result.touched |= set(
        CampaignEvent.objects.filter(campaign__chain_id=cursor.chain_id, block_number__gt=fork)
        .exclude(campaign__in=stale_campaigns)
        .values_list("campaign_id", flat=True)
    )
    CampaignEvent.objects.filter(campaign__chain_id=cursor.chain_id, block_number__gt=fork).delete()
    stale_campaigns.delete()
    cursor.blocks.filter(number__gt=fork).delete()
    cursor.last_block = fork
    cursor.save(update_fields=["last_block", "updated_at"])
    result.rolled_back_to = fork
    log.warning("chain_reorg_rolled_back", chain_id=cursor.chain_id, fork_block=fork)


def _create_campaign(chain_id: int, factory: str, event: Any) -> Campaign:
    p = event["args"]["params"]
    campaign, _ = Campaign.objects.get_or_create(
        chain_id=chain_id,
        address=event["args"]["campaign"].lower(),
        defaults={
            "factory": factory,
            "creator": event["args"]["creator"].lower(),
            "token": p["token"].lower(),
            "recording_oracle": p["recordingOracle"].lower(),
            "reputation_oracle": p["reputationOracle"].lower(),
            "fee_recipient": p["feeRecipient"].lower(),
            "start": _ts(p["start"]),
            "end": _ts(p["end"]),
            "epoch_seconds": p["epochLength"],
            "dispute_window_seconds": p["disputeWindow"],
            "budget": p["budget"],
            "fee_bps": p["feeBps"],
            "metadata_hash": _hex(p["metadataHash"]),
            "metadata_uri": event["args"]["metadataURI"],
            "created_block": event["blockNumber"],
            "created_tx": _hex(event["transactionHash"]),
            **_market_of(_hex(p["metadataHash"])),
        },
    )
    return campaign


def _market_of(metadata_hash: str) -> dict[str, str]:
    """Exchange and pair from the stored metadata document with this hash (stored only under its own hash)."""
    document = CampaignMetadata.objects.filter(hash=metadata_hash).values_list("document", flat=True).first()
    if not document:
        return {}
    return {"exchange": document["exchange"], "pair": document["pair"]}


def _record(campaign: Campaign, event: Any) -> bool:
    _, created = CampaignEvent.objects.get_or_create(
        campaign=campaign,
        tx_hash=_hex(event["transactionHash"]),
        log_index=event["logIndex"],
        defaults={
            "kind": event["event"],
            "block_number": event["blockNumber"],
            "block_hash": _hex(event["blockHash"]),
            "data": _jsonable(dict(event["args"])),
        },
    )
    return created


def _derive(campaign_ids: Iterable[int]) -> None:
    """Recompute what a campaign's state says, from its events only (so rollback is just deletion)."""
    for campaign in Campaign.objects.filter(pk__in=set(campaign_ids)):
        events = list(campaign.events.all())
        campaign.funded = any(e.kind == CampaignEvent.Kind.FUNDED for e in events)
        campaign.paid_out = sum(
            int(e.data["amount"])
            for e in events
            if e.kind in (CampaignEvent.Kind.CLAIMED, CampaignEvent.Kind.DISTRIBUTED)
        )
        campaign.refunded = sum(int(e.data["amount"]) for e in events if e.kind == CampaignEvent.Kind.REFUNDED)
        campaign.save(update_fields=["funded", "paid_out", "refunded"])


def chain_index(
    *, w3: Web3, factory: str, confirmations: int, start_block: int = 0, batch_blocks: int = 2_000
) -> IndexResult:
    """Index one factory up to latest − confirmations; safe to run concurrently, repeatedly, after crashes."""
    factory = factory.lower()
    chain_id = w3.eth.chain_id
    decoders = _event_decoders(w3)
    created_topic = next(t for t, d in decoders.items() if d.event_name == "CampaignCreated")
    with context.bound(chain_id=chain_id):
        with transaction.atomic():
            cursor, _ = ChainCursor.objects.get_or_create(
                chain_id=chain_id, factory=factory, defaults={"last_block": max(0, start_block - 1)}
            )
            cursor = ChainCursor.objects.select_for_update().get(pk=cursor.pk)
            result = IndexResult(chain_id=chain_id, from_block=cursor.last_block + 1, to_block=cursor.last_block)
            _rollback_if_reorged(w3, cursor, result)
            _derive(result.touched)
        head = w3.eth.block_number - confirmations
        while True:
            with transaction.atomic():
                cursor = ChainCursor.objects.select_for_update().get(pk=cursor.pk)
                first = cursor.last_block + 1
                if first > head:
                    break
                last = min(head, first + batch_blocks - 1)
                touched = _index_range(w3, cursor, decoders, created_topic, first, last, result)
                _derive(touched)
                result.touched |= touched
                cursor.last_block = last
                cursor.save(update_fields=["last_block", "updated_at"])
                result.to_block = last
        ChainCursor.objects.filter(pk=cursor.pk)
        IndexedBlock.objects.filter(cursor=cursor, number__lt=result.to_block - KEEP_BLOCKS).delete()
        if result.events or result.campaigns or result.rolled_back_to is not None:
            log.info(
                "chain_indexed",
                from_block=result.from_block,
                to_block=result.to_block,
                campaigns=result.campaigns,
                events=result.events,
                rolled_back_to=result.rolled_back_to,
            )
    return result


def _index_range(
    w3: Web3,
    cursor: ChainCursor,
    decoders: dict[str, Any],
    created_topic: str,
    first: int,
    last: int,
    result: IndexResult,
) -> set[int]:
    touched: set[int] = set()
    block_hashes: dict[int, str] = {last: _hex(w3.eth.get_block(last)["hash"])}
    factory_logs = w3.eth.get_logs(
        {
            "address": Web3.to_checksum_address(cursor.factory),
            "fromBlock": first,
            "toBlock": last,
            "topics": [created_topic],
        }
    )
    for raw in factory_logs:
        event = decoders[_hex(raw["topics"][0])].process_log(raw)
        campaign = _create_campaign(cursor.chain_id, cursor.factory, event)
        result.campaigns += 1
        block_hashes[raw["blockNumber"]] = _hex(raw["blockHash"])
        touched.add(campaign.pk)
    known = {c.address: c for c in Campaign.objects.filter(chain_id=cursor.chain_id, factory=cursor.factory)}
    addresses = [Web3.to_checksum_address(a) for a in known]
    for i in range(0, len(addresses), 100):
        logs = w3.eth.get_logs({"address": addresses[i : i + 100], "fromBlock": first, "toBlock": last})
        for raw in logs:
            decoder = decoders.get(_hex(raw["topics"][0]))
            if decoder is None:
                continue
            campaign = known[_hex(raw["address"])]
            if _record(campaign, decoder.process_log(raw)):
                result.events += 1
            block_hashes[raw["blockNumber"]] = _hex(raw["blockHash"])
            touched.add(campaign.pk)
    for number, block_hash in block_hashes.items():
        IndexedBlock.objects.update_or_create(cursor=cursor, number=number, defaults={"hash": block_hash})
    return touched
