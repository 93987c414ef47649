"""Writes of the reputation oracle: publish each recorded epoch's payout root, then push every leaf nobody has
claimed, in contiguous batches under a gas cap (docs/scoring.md, "Payout"; the state machine is
`payouts.domain.distribution`).

- pending → publishing: `publishPayout(epoch, root, manifestHash, total)` is signed with the reputation-oracle key
  the escrow names and stored before it is broadcast (`payouts.oracle_tx`: nonce under a row lock, gas bumped by
  replacement, the same bytes sent again after a crash). A root already on chain is adopted when it is ours and
  fails the payout when it is not; nothing is sent for it. A manifest that pays nobody is never published.
- distributing: each pass (1) advances every batch in flight and settles it by its receipt, (2) reads the
  epoch's `Claimed` and `Distributed` events — the chain's own record of which leaves are paid, by us or by
  anyone — and (3) plans new batches only over leaves neither paid nor in flight, at most
  `PAYOUT_BATCHES_IN_FLIGHT` at a time, each sized under `PAYOUT_BATCH_GAS_CAP` by the node's estimate. A batch
  row and its signed transaction are stored in one database transaction, so no signed nonce is ever left
  without the row that sends it; a batch that reverts because a participant claimed one of its leaves first pays
  nothing, and its other leaves go into the next plan. The escrow's bitmap is the last line, not the first.
- distributing → paid once the events show every leaf paid.

Every step runs under the payout's row lock where it decides something, so two workers take turns; every
transition is recorded once per key (`EpochPayoutTransition`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.files.storage import storages
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from eth_typing import HexStr
from web3 import Web3
from web3.contract import Contract

from execution import services as execution_services
from mrmarket.chain import get_web3
from mrmarket.observability.logging import get_logger
from payouts import closing, oracle_tx, selectors
from payouts.domain.distribution import (
    TERMINAL,
    BatchKind,
    BatchStatus,
    PayoutEvent,
    PayoutState,
    PlannedBatch,
    batch_capacity,
    packed_leaves,
    payout_transition,
    plan_batches,
)
from payouts.domain.epochs import CloseState
from payouts.domain.merkle import PayoutTree
from payouts.errors import OracleCallRejected, OracleKeyNotConfigured, OraclePurposeConflict, PayoutManifestMissing
from payouts.models import EpochClose, EpochPayout, EpochPayoutTransition, OracleTransaction, PayoutBatch
from payouts.oracle_keys import oracle_addresses
from payouts.timeline import transition_once

log = get_logger(__name__)
Tx = OracleTransaction.Status
# A first guess of a batch's gas before the node's estimate decides: the call's fixed part, and a fresh
# recipient's transfer, bitmap share, calldata and proof share, rounded up (docs/gas.md has the measured figures).
BATCH_BASE_GAS = 80_000
BATCH_PER_LEAF_GAS = 31_000
LOG_BLOCKS = 2_000  # blocks per eth_getLogs, as the indexer asks


@dataclass(frozen=True)
class Leaves:
    """The leaves of a stored manifest, in index order, and its tree."""

    accounts: list[str]
    amounts: list[int]
    tree: PayoutTree | None


def _manifest(close: EpochClose) -> tuple[dict[str, Any], Leaves]:
    data = None
    if close.manifest_name and storages[selectors.ARTIFACT_STORAGE].exists(close.manifest_name):
        data = selectors.epoch_artifact(close=close, kind="manifest")
    if data is None or hashlib.sha256(data).hexdigest() != close.manifest_digest:
        # Not stored (a close from before manifests were), or lost: rebuilt from the stored bundle, or refused.
        close = closing.epoch_manifest_restore(close_id=close.pk)
        data = selectors.epoch_artifact(close=close, kind="manifest")
        if data is None:
            raise PayoutManifestMissing(f"epoch {close.epoch} of {close.campaign.address} has no payout manifest")
    document = json.loads(data)
    built = selectors.payout_tree(close.manifest_digest, data)
    accounts = [str(leaf["account"]) for leaf in document["leaves"]]
    amounts = [int(leaf["amount"]) for leaf in document["leaves"]]
    return document, Leaves(accounts=accounts, amounts=amounts, tree=None if built is None else built[0])


def _escrow(w3: Web3, close: EpochClose) -> Contract:
    return w3.eth.contract(address=Web3.to_checksum_address(close.campaign.address), abi=oracle_tx.CAMPAIGN_ABI)


def _transition(
    payout: EpochPayout, event: PayoutEvent, *, key: str, detail: dict[str, Any] | None = None, **fields: Any
) -> EpochPayout:
    """Apply one event to a row the caller holds locked, once per key, with the fields it sets."""
    applied = transition_once(
        payout,
        EpochPayoutTransition,
        "payout",
        key=key,
        event=event.value,
        next_state=lambda state: payout_transition(PayoutState(state), event).value,
        detail=detail,
        fields=fields,
    )
    if applied:
        log.info("epoch_payout_transition", payout_id=payout.pk, payout_event=event.value, to_state=payout.state)
    return payout


def _note(payout: EpochPayout, *, key: str, event: str, detail: dict[str, Any]) -> None:
    """A step of the payout that changes no state (a batch signed, paid or refused), on the same timeline."""
    if not EpochPayoutTransition.objects.filter(payout=payout, key=key).exists():
        EpochPayoutTransition.objects.create(
            payout=payout, key=key, event=event, from_state=payout.state, to_state=payout.state, detail=detail
        )


def _round(payout: EpochPayout) -> int:
    """How many times an operator sent the payout back to pending: each round signs its own publication."""
    return payout.transitions.filter(event=PayoutEvent.RETRY.value).count()


def _locked(payout_id: int) -> EpochPayout:
    return (
        EpochPayout.objects.select_for_update(of=("self",))
        .select_related("close", "close__campaign", "publish_tx")
        .get(pk=payout_id)
    )


def _fail(payout: EpochPayout, reason: str, detail: dict[str, Any] | None = None) -> EpochPayout:
    log.error("epoch_payout_failed", payout_id=payout.pk, reason=reason)
    close = payout.close
    execution_services.alert_raise(
        "payout_failed",
        f"the payout of epoch {close.epoch} of campaign {close.campaign.address} failed: {reason}"[:500],
        dedup=f"payout-failed:p{payout.pk}:{_round(payout)}",
        detail={"payout_id": payout.pk, "epoch": close.epoch, "campaign": close.campaign.address},
    )
    return _transition(
        payout,
        PayoutEvent.FAILED,
        key=f"failed:{_round(payout)}",
        detail={**{k: str(v) for k, v in (detail or {}).items()}, "reason": reason},
        failure_reason=reason[:500],
    )


# ---------------------------------------------------------------------------------------------- creation


def epoch_payout_ensure(*, close: EpochClose) -> EpochPayout:
    """The payout row of a recorded epoch, created pending from the manifest stored beside its bundle."""
    existing = EpochPayout.objects.filter(close=close).first()
    if existing is not None:
        return existing
    document, leaves = _manifest(close)
    close.refresh_from_db(fields=["manifest_digest", "manifest_name"])  # a manifest rebuilt just now names itself
    payout, _ = EpochPayout.objects.get_or_create(
        close=close,
        defaults={
            "manifest_digest": close.manifest_digest,
            "merkle_root": document["merkle_root"] or "",
            "total": int(document["total"]),
            "leaf_count": len(leaves.accounts),
        },
    )
    return payout


def _ours() -> Q:
    ours = Q()
    for address in oracle_addresses("reputation"):
        ours |= Q(close__campaign__reputation_oracle__iexact=address)
    return ours


def epoch_payouts_due() -> list[int]:
    """Open the payout of every recorded epoch of every campaign this oracle pays for, and return the ids of those
    not yet paid, empty or failed: one task each. Campaigns naming another reputation oracle are not ours."""
    addresses = oracle_addresses("reputation")
    if not addresses:
        return []
    named = Q()
    for address in addresses:
        named |= Q(campaign__reputation_oracle__iexact=address)
    recorded = EpochClose.objects.filter(named, state=CloseState.RECORDED.value, payout__isnull=True)
    for close in recorded.select_related("campaign").order_by("pk"):
        try:
            epoch_payout_ensure(close=close)
        except PayoutManifestMissing as exc:
            # One epoch whose documents are gone holds up nobody else's payout; a person restores them.
            execution_services.alert_raise(
                "payout_manifest_missing",
                exc.message,
                dedup=f"payout-manifest-missing:c{close.pk}",
                detail={"close_id": close.pk, "epoch": close.epoch, "campaign": close.campaign.address},
            )
    settled = [s.value for s in TERMINAL] + [PayoutState.FAILED.value]
    open_payouts = EpochPayout.objects.filter(_ours()).exclude(state__in=settled)
    _alert_stalled(open_payouts)
    return list(open_payouts.order_by("pk").values_list("pk", flat=True))


def _alert_stalled(open_payouts: Any) -> None:
    """A payout still open `PAYOUT_STALL_SECONDS` after it was opened is told to a person, whatever holds it (a node
    that refuses every broadcast, a key without gas, a task failing on every pass)."""
    since = timezone.now() - timedelta(seconds=settings.PAYOUT_STALL_SECONDS)
    for payout in open_payouts.filter(created_at__lt=since).select_related("close", "close__campaign"):
        close = payout.close
        execution_services.alert_raise(
            "payout_stalled",
            f"the payout of epoch {close.epoch} of campaign {close.campaign.address} has been {payout.state} for "
            f"more than {settings.PAYOUT_STALL_SECONDS}s (last error: {payout.last_error or 'none'})",
            dedup=f"payout-stalled:p{payout.pk}",
            detail={"payout_id": payout.pk, "state": payout.state},
            warning=True,
        )


# ---------------------------------------------------------------------------------------------- publication


def _published_by(w3: Web3, close: EpochClose) -> tuple[str, int | None]:
    """The transaction and block of the epoch's PayoutPublished event (the escrow emits it once)."""
    events = (
        _escrow(w3, close)
        .events.PayoutPublished()
        .get_logs(
            from_block=close.block_number or close.campaign.created_block, argument_filters={"epoch": close.epoch}
        )
    )
    if not events:
        return "", None
    return "0x" + bytes(events[0]["transactionHash"]).hex(), int(events[0]["blockNumber"])


def _adopt_or_refuse(w3: Web3, payout: EpochPayout, on_chain: bytes) -> EpochPayout:
    """The escrow already holds a root for the epoch: ours is adopted (nothing more is sent), another fails."""
    if "0x" + on_chain.hex() != payout.merkle_root.lower():
        return _fail(
            payout,
            f"the escrow already holds another payout root for epoch {payout.close.epoch}: 0x{on_chain.hex()}",
            {"on_chain": "0x" + on_chain.hex(), "ours": payout.merkle_root},
        )
    tx_hash, block = _published_by(w3, payout.close)
    return _transition(
        payout,
        PayoutEvent.ADOPTED,
        key="published",
        detail={"tx_hash": tx_hash, "block": block},
        published_tx_hash=tx_hash,
        published_block=block,
    )


def _publish(payout_id: int) -> int | None:
    """Sign and store publishPayout (pending → publishing); the id of the transaction to broadcast, if any."""
    with transaction.atomic():
        payout = _locked(payout_id)
        if payout.state != PayoutState.PENDING:
            return None
        close = payout.close
        if payout.leaf_count == 0:
            _transition(payout, PayoutEvent.NOTHING_TO_PAY, key="empty")
            return None
        w3 = get_web3()
        escrow = _escrow(w3, close)
        on_chain = bytes(escrow.functions.payoutRoot(close.epoch).call())
        if on_chain != b"\0" * 32:
            _adopt_or_refuse(w3, payout, on_chain)
            return None
        sender = str(escrow.functions.params().call()[3])  # Params.reputationOracle, fixed at creation
        data = str(
            escrow.encode_abi(
                "publishPayout",
                args=[
                    close.epoch,
                    bytes.fromhex(payout.merkle_root[2:]),
                    bytes.fromhex(payout.manifest_digest),
                    payout.total,
                ],
            )
        )
        purpose = f"publish:{close.campaign.chain_id}:{close.campaign.address}:{close.epoch}"
        if _round(payout):
            purpose += f":retry{_round(payout)}"
        try:
            tx = oracle_tx.oracle_tx_prepare(
                purpose_key=purpose,
                role="reputation",
                chain_id=close.campaign.chain_id,
                to=close.campaign.address,
                data=data,
                sender=sender,
            )
        except OracleCallRejected as exc:
            if exc.extra.get("error") == "EpochNotEnded":
                return None  # the chain's clock is behind ours: the next pass tries again
            _fail(payout, f"publishPayout would revert: {exc.extra.get('error') or exc.message}")
            return None
        except (OraclePurposeConflict, OracleKeyNotConfigured) as exc:
            _fail(payout, exc.message, exc.extra)
            return None
        _transition(payout, PayoutEvent.PUBLISH_SIGNED, key=f"signed:{_round(payout)}", publish_tx=tx)
        return tx.pk


def _published(payout_id: int) -> None:
    """publishing → distributing once publishPayout mined; failed when the chain refused it."""
    payout = EpochPayout.objects.select_related("publish_tx").get(pk=payout_id)
    if payout.state != PayoutState.PUBLISHING or payout.publish_tx is None:
        return
    status = oracle_tx.oracle_tx_advance(tx_id=payout.publish_tx.pk)
    with transaction.atomic():
        payout = _locked(payout_id)
        tx = payout.publish_tx
        if payout.state != PayoutState.PUBLISHING or tx is None:
            return
        if status == Tx.MINED:
            _transition(
                payout,
                PayoutEvent.PUBLISHED,
                key="published",
                detail={"tx_hash": tx.tx_hash, "block": tx.block_number},
                published_tx_hash=tx.tx_hash or "",
                published_block=tx.block_number,
            )
        elif status in (Tx.REVERTED, Tx.PARKED):
            w3 = get_web3()
            on_chain = bytes(_escrow(w3, payout.close).functions.payoutRoot(payout.close.epoch).call())
            if on_chain != b"\0" * 32:
                _adopt_or_refuse(w3, payout, on_chain)  # published meanwhile, by an earlier version or by anyone
                return
            reason = tx.revert_reason or ("its nonce was used by another transaction" if status == Tx.PARKED else "")
            _fail(payout, f"publishPayout {status}: {reason}", {"tx_hash": tx.tx_hash or ""})


# ---------------------------------------------------------------------------------------------- distribution


@dataclass(frozen=True)
class ChainPaid:
    """What the epoch's events say is paid: leaf indices, and the amounts by each path."""

    indices: set[int]
    buried: set[int]  # of those, paid by events CHAIN_CONFIRMATIONS deep: what a reorg can no longer undo
    claimed: list[int]
    distributed: list[list[int]]  # [first index, count] of every Distributed event, in index order
    claimed_amount: int
    distributed_amount: int


def _epoch_logs(event: Any, epoch: int, since: int, head: int) -> list[Any]:
    """The epoch's events of one kind from `since` to `head`, asked `LOG_BLOCKS` blocks at a time (providers cap
    the range of one `eth_getLogs`, and a payout with a leaf left to be claimed stays open for long)."""
    found: list[Any] = []
    for first in range(since, head + 1, LOG_BLOCKS):
        last = min(head, first + LOG_BLOCKS - 1)
        found += event().get_logs(from_block=first, to_block=last, argument_filters={"epoch": epoch})
    return found


def _chain_paid(w3: Web3, payout: EpochPayout, leaves: Leaves) -> ChainPaid:
    close = payout.close
    escrow = _escrow(w3, close)
    since = payout.published_block or close.block_number or close.campaign.created_block
    head = int(w3.eth.block_number)
    claims = _epoch_logs(escrow.events.Claimed, close.epoch, since, head)
    pushes = _epoch_logs(escrow.events.Distributed, close.epoch, since, head)
    deep = head - settings.CHAIN_CONFIRMATIONS + 1
    indices: set[int] = set()
    buried: set[int] = set()
    claimed: list[int] = []
    distributed: list[list[int]] = []
    claimed_amount = distributed_amount = 0
    for event in claims:
        index = int(event["args"]["index"])
        claimed.append(index)
        indices.add(index)
        if int(event["blockNumber"]) <= deep:
            buried.add(index)
        claimed_amount += int(event["args"]["amount"])
    for event in pushes:
        first, count = int(event["args"]["firstIndex"]), int(event["args"]["count"])
        distributed.append([first, count])
        indices.update(range(first, first + count))
        if int(event["blockNumber"]) <= deep:
            buried.update(range(first, first + count))
        distributed_amount += int(event["args"]["amount"])
    if any(not 0 <= i < len(leaves.amounts) for i in indices):
        log.error("payout_events_outside_manifest", payout_id=payout.pk)
    return ChainPaid(
        indices=indices,
        buried=buried,
        claimed=sorted(claimed),
        distributed=sorted(distributed),
        claimed_amount=claimed_amount,
        distributed_amount=distributed_amount,
    )


def _settle_batch(w3: Web3, batch_id: int, status: str) -> None:
    gas_used = None
    if status == Tx.MINED:
        tx = OracleTransaction.objects.get(payout_batch__pk=batch_id)
        gas_used = int(w3.eth.get_transaction_receipt(HexStr(tx.tx_hash or ""))["gasUsed"])
    with transaction.atomic():
        batch = PayoutBatch.objects.select_for_update().select_related("tx", "payout").get(pk=batch_id)
        if batch.status != BatchStatus.PENDING or status not in (Tx.MINED, Tx.REVERTED, Tx.PARKED):
            return
        outcome = {Tx.MINED: BatchStatus.PAID, Tx.REVERTED: BatchStatus.REVERTED, Tx.PARKED: BatchStatus.PARKED}
        batch.status = outcome[Tx(status)].value
        batch.gas_used = gas_used
        batch.revert_reason = batch.tx.revert_reason[:200]
        batch.settled_at = timezone.now()
        batch.save(update_fields=["status", "gas_used", "revert_reason", "settled_at"])
        _note(
            batch.payout,
            key=f"batch:{batch.pk}:{batch.status}",
            event=f"batch_{batch.status}",
            detail={
                "first_index": batch.first_index,
                "count": batch.count,
                "amount": str(batch.amount),
                "tx_hash": batch.tx.tx_hash,
                "revert_reason": batch.revert_reason,
            },
        )
        log.info("payout_batch_settled", batch_id=batch.pk, status=batch.status, gas_used=gas_used)


def _batch_call(escrow: Contract, epoch: int, plan: PlannedBatch, leaves: Leaves) -> str:
    tree = leaves.tree
    assert tree is not None  # a payout with leaves has a tree
    last = plan.first_index + plan.count
    if plan.kind == BatchKind.CLAIM:
        index = plan.first_index
        proof = tree.proof(index)
        args: list[Any] = [index, Web3.to_checksum_address(leaves.accounts[index]), leaves.amounts[index], proof]
        return str(escrow.encode_abi("claim", args=[epoch, *args]))
    multiproof = tree.multiproof(range(plan.first_index, last))
    packed = packed_leaves(leaves.accounts[plan.first_index : last], leaves.amounts[plan.first_index : last])
    return str(
        escrow.encode_abi(
            "distribute", args=[epoch, plan.first_index, packed, list(multiproof.proof), multiproof.flag_words()]
        )
    )


class LeafRefused(Exception):
    """The escrow would refuse a batch of one leaf for a reason of that leaf (its token transfer fails)."""

    def __init__(self, index: int, error: str) -> None:
        super().__init__(f"leaf {index}: {error}")
        self.index = index
        self.error = error


# What the escrow says when the manifest, the root or the epoch is wrong, not one leaf: no batch can go through.
_WHOLE_PAYOUT_ERRORS = frozenset({"InvalidProof", "OverBudget", "NoPayout", "UnknownEpoch"})
# A range whose batches reverted this many times on chain (after passing the estimate) is left to be claimed.
REVERTS_BEFORE_REFUSAL = 3


def _sized(
    escrow: Contract, payout: EpochPayout, plan: PlannedBatch, leaves: Leaves, sender: str
) -> tuple[PlannedBatch, str, int] | None:
    """The batch cut down until the node's gas estimate fits the cap (a single leaf is sent whatever its gas):
    (plan, calldata, gas); None when the call would revert because a leaf in it was paid meanwhile (the next pass
    reads the events again). A batch refused for a reason of one of its leaves is halved until the leaf is found
    (LeafRefused); one refused for a reason of the whole payout raises OracleCallRejected."""
    cap = settings.PAYOUT_BATCH_GAS_CAP
    close = payout.close
    while True:
        data = _batch_call(escrow, close.epoch, plan, leaves)
        try:
            gas = oracle_tx.oracle_call_gas(
                chain_id=close.campaign.chain_id, sender=sender, to=close.campaign.address, data=data
            )
        except OracleCallRejected as exc:
            error = str(exc.extra.get("error") or "")
            if error == "AlreadyClaimed":
                return None
            if error in _WHOLE_PAYOUT_ERRORS:
                raise
            if plan.count == 1:
                raise LeafRefused(plan.first_index, error or "unknown") from None
            plan = PlannedBatch(plan.kind, plan.first_index, plan.count // 2)  # the leaf is in one half
            continue
        if gas <= cap or plan.count == 1:
            return plan, data, gas
        # Scale by what the estimate says, a little under; always at least one leaf fewer.
        smaller = max(1, min(plan.count - 1, plan.count * cap * 95 // (gas * 100)))
        plan = PlannedBatch(plan.kind, plan.first_index, smaller)


def _ranges(pairs: list[tuple[int, int]]) -> set[int]:
    return {i for first, count in pairs for i in range(first, first + count)}


def _plan_and_sign(w3: Web3, payout_id: int, leaves: Leaves) -> list[int]:
    """Settle the payout as paid when the chain says every leaf is and no batch of ours is in flight, else sign
    the next batches; the new transactions' ids. Everything it decides on is read under the payout's lock."""
    with transaction.atomic():
        payout = _locked(payout_id)
        if payout.state != PayoutState.DISTRIBUTING:
            return []
        paid = _chain_paid(w3, payout, leaves)
        batches = list(payout.batches.values_list("first_index", "count", "status", "revert_reason"))
        pending = [(first, count) for first, count, status, _ in batches if status == BatchStatus.PENDING]
        # Our mined batches count as paid even before the node's logs show them (a lagging or balanced RPC); they
        # are paid once CHAIN_CONFIRMATIONS deep (oracle_tx), as the events the payout settles on must be.
        ours = _ranges([(f, c) for f, c, status, _ in batches if status == BatchStatus.PAID])
        settled = paid.indices | ours
        payout.claimed_leaves = paid.claimed
        payout.distributed_ranges = paid.distributed
        payout.claimed_amount = paid.claimed_amount
        payout.distributed_amount = paid.distributed_amount
        payout.save(
            update_fields=[
                "claimed_leaves", "claimed_amount", "distributed_ranges", "distributed_amount", "updated_at"
            ]
        )  # fmt: skip
        if len(settled) >= payout.leaf_count:
            if pending:
                # Every leaf is paid, but a batch of ours is still in flight: it is sent and settled first (it
                # reverts), or its nonce would stay a hole that every later transaction of the key waits behind.
                return []
            if len(paid.buried | ours) < payout.leaf_count:
                return []  # a claim or push not yet deep enough to outlast a reorg: settled on a later pass
            _transition(
                payout,
                PayoutEvent.PAID,
                key="paid",
                detail={"distributed": str(paid.distributed_amount), "claimed": str(paid.claimed_amount)},
                paid_at=timezone.now(),
            )
            return []
        _refuse_reverted_ranges(payout, batches)
        room = settings.PAYOUT_BATCHES_IN_FLIGHT - len(pending)
        if room <= 0:
            return []
        capacity = batch_capacity(
            gas_cap=settings.PAYOUT_BATCH_GAS_CAP, base_gas=BATCH_BASE_GAS, per_leaf_gas=BATCH_PER_LEAF_GAS
        )
        plans = plan_batches(
            amounts=leaves.amounts,
            settled=settled | set(payout.refused_leaves),
            in_flight=pending,
            capacity=capacity,
            limit=room,
        )
        close = payout.close
        escrow = _escrow(w3, close)
        sender = str(escrow.functions.params().call()[3])
        signed: list[int] = []
        for plan in plans:
            try:
                sized = _sized(escrow, payout, plan, leaves, sender)
            except LeafRefused as refused:
                _leaf_refused(payout, refused.index, refused.error)
                break  # the rest of the range is planned on the next pass
            except OracleCallRejected as exc:
                # The escrow refuses a batch of our own manifest against our own root: nothing is signed, the batches
                # already in flight go on, and anyone can still claim. A person must look (the error is named).
                _batch_refused(payout, plan, exc)
                break
            if sized is None:
                break  # a leaf was paid since the events were read: plan again on the next pass
            plan, data, gas = sized
            attempt = payout.batches.filter(first_index=plan.first_index).count()
            chain, campaign = close.campaign.chain_id, close.campaign.address
            tx = oracle_tx.oracle_tx_prepare(
                purpose_key=f"{plan.kind}:{chain}:{campaign}:{close.epoch}:{plan.first_index}:{attempt}",
                role="reputation",
                chain_id=chain,
                to=campaign,
                data=data,
                sender=sender,
                gas=gas,
            )
            last = plan.first_index + plan.count
            batch = PayoutBatch.objects.create(
                payout=payout,
                kind=plan.kind.value,
                first_index=plan.first_index,
                count=plan.count,
                amount=sum(leaves.amounts[plan.first_index : last]),
                attempt=attempt,
                tx=tx,
            )
            _note(
                payout,
                key=f"batch:{batch.pk}:signed",
                event="batch_signed",
                detail={"first_index": batch.first_index, "count": batch.count, "tx_hash": tx.tx_hash, "gas": gas},
            )
            signed.append(tx.pk)
        return signed


def _refuse_reverted_ranges(payout: EpochPayout, batches: list[tuple[int, int, str, str]]) -> None:
    """A first leaf whose batches reverted on chain `REVERTS_BEFORE_REFUSAL` times for another reason than a claim
    (they passed the estimate, then failed: out of gas, a token that changed its mind) is left to be claimed."""
    reverts: dict[int, int] = {}
    for first, _, status, reason in batches:
        if status == BatchStatus.REVERTED and reason != "AlreadyClaimed":
            reverts[first] = reverts.get(first, 0) + 1
    for first, count in reverts.items():
        if count >= REVERTS_BEFORE_REFUSAL and first not in payout.refused_leaves:
            _leaf_refused(payout, first, f"reverted {count} times on chain")


def _leaf_refused(payout: EpochPayout, index: int, error: str) -> None:
    """One leaf the escrow will not pay in a batch (its transfer fails): left out of every later batch, so the rest
    is paid; it stays claimable by anyone, and a person is told."""
    close = payout.close
    payout.refused_leaves = sorted({*payout.refused_leaves, index})
    payout.last_error = f"leaf {index}: {error}"[:500]
    payout.save(update_fields=["refused_leaves", "last_error", "updated_at"])
    _note(payout, key=f"leaf:{index}:refused", event="leaf_refused", detail={"index": index, "error": error})
    execution_services.alert_raise(
        "payout_leaf_refused",
        f"leaf {index} of epoch {close.epoch} of campaign {close.campaign.address} cannot be pushed ({error}); the "
        f"other leaves are paid, this one stays claimable (docs/runbook.md)",
        dedup=f"payout-leaf-refused:p{payout.pk}:{index}",
        detail={"payout_id": payout.pk, "index": index, "error": error},
    )


def _batch_refused(payout: EpochPayout, plan: PlannedBatch, exc: OracleCallRejected) -> None:
    error = str(exc.extra.get("error") or exc.message)
    close = payout.close
    execution_services.alert_raise(
        "payout_batch_refused",
        f"a {plan.kind} of leaves {plan.first_index}..{plan.first_index + plan.count - 1} of epoch {close.epoch} of "
        f"campaign {close.campaign.address} would revert with {error}; nothing was signed (docs/runbook.md)",
        dedup=f"payout-batch-refused:p{payout.pk}:{plan.first_index}",
        detail={"payout_id": payout.pk, "first_index": plan.first_index, "count": plan.count, "error": error},
    )
    payout.last_error = f"{plan.kind} {plan.first_index}+{plan.count}: {error}"[:500]
    payout.save(update_fields=["last_error", "updated_at"])


def _distribute(payout_id: int) -> None:
    payout = EpochPayout.objects.select_related("close", "close__campaign").get(pk=payout_id)
    if payout.state != PayoutState.DISTRIBUTING:
        return
    w3 = get_web3()
    for batch_id, tx_id in payout.batches.filter(status=BatchStatus.PENDING).values_list("pk", "tx_id"):
        _settle_batch(w3, batch_id, oracle_tx.oracle_tx_advance(tx_id=tx_id))
    _, leaves = _manifest(payout.close)
    for tx_id in _plan_and_sign(w3, payout_id, leaves):
        oracle_tx.oracle_tx_send(tx_id=tx_id)  # stored first; a crash before this line is sent by the next pass


# ---------------------------------------------------------------------------------------------- entry points


def epoch_payout_advance(*, payout_id: int) -> EpochPayout:
    """Take one payout as far as it can go now; safe to call at any time, from any number of workers."""
    publish_tx = _publish(payout_id)
    if publish_tx is not None:
        oracle_tx.oracle_tx_send(tx_id=publish_tx)
    _published(payout_id)
    try:
        _distribute(payout_id)
    except PayoutManifestMissing as exc:
        # The manifest of a published payout is gone, and the bundle with it: nothing can be planned, the batches in
        # flight wait; the root is on chain, so participants can still claim with a proof from a restored copy.
        payout = EpochPayout.objects.select_related("close", "close__campaign").get(pk=payout_id)
        EpochPayout.objects.filter(pk=payout_id).update(last_error=exc.message[:500])
        execution_services.alert_raise(
            "payout_manifest_missing",
            exc.message,
            dedup=f"payout-manifest-missing:c{payout.close_id}",
            detail={
                "close_id": payout.close_id,
                "epoch": payout.close.epoch,
                "campaign": payout.close.campaign.address,
            },
        )
    return EpochPayout.objects.get(pk=payout_id)


@transaction.atomic
def epoch_payout_retry(*, payout_id: int) -> EpochPayout:
    """An operator sends a failed payout back to pending (its publication is prepared again, as a new purpose)."""
    payout = _locked(payout_id)
    return _transition(
        payout,
        PayoutEvent.RETRY,
        key=f"retry:{payout.transitions.count()}",
        failure_reason="",
        publish_tx=None,
    )
