"""Oracle transactions: the calls the recording and reputation oracles send to campaign escrows, sent by the core's
one sender (`mrmarket.chain_tx`, as custody's transfers are).

- Each transaction is known by its purpose (`record:<chain>:<campaign>:<epoch>`): preparing it twice returns the
  same row. It is signed and stored before anything is sent, its nonce allocated under a row lock in execution's
  `CustodyNonce` table (keyed by chain and address alone), so a retry after a crash sends the same bytes again.
- Every step that touches the chain runs with the row locked (`select_for_update`), so two workers advancing
  the same transaction take turns: neither sends a version the other already sent, neither loses the other's
  write.
- Pending longer than `ORACLE_GAS_BUMP_SECONDS`: replaced by the same call with the same nonce at a higher gas
  price, stored before it is broadcast; whichever stored version mined is adopted (found by receipt). A nonce the
  chain used for none of our versions parks the transaction with a critical alert.
- A reverted transaction stores the Campaign error it reverted with, found by replaying the call.
- Mined (or reverted) counts once the receipt is `CHAIN_CONFIRMATIONS` deep: a transaction a shallower reorg took
  off the chain is still ours to send again, not a result recorded, a payout published or a batch paid that the
  chain no longer holds (its nonce left free would also hold every later transaction of the key).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from web3 import Web3
from web3.exceptions import ContractLogicError, Web3Exception
from web3.types import TxParams, TxReceipt

from contracts import load_artifact
from execution import services as execution_services
from execution.alerts import alerts_resolve_keys
from execution.custody import allocate_nonce
from mrmarket import chain_tx
from mrmarket.chain import get_web3
from mrmarket.observability.logging import get_logger
from mrmarket.oracle_addresses import OracleRole
from payouts.errors import (
    InvalidOracleCall,
    OracleCallRejected,
    OracleChainMismatch,
    OracleChainUnavailable,
    OraclePurposeConflict,
    ResultsAlreadyRecordedDifferently,
)
from payouts.models import OracleTransaction, OracleTransactionVersion
from payouts.oracle_keys import oracle_signer

log = get_logger(__name__)
CAMPAIGN_ABI = load_artifact("Campaign").abi
Status = OracleTransaction.Status
SETTLED = (Status.MINED, Status.REVERTED, Status.PARKED, Status.ADOPTED)
_HASH32 = re.compile(r"^0x[0-9a-fA-F]{64}$")
# Error(string), the revert of `require(cond, "reason")`.
_ERROR_STRING = bytes.fromhex("08c379a0")


def _error_selectors() -> dict[bytes, tuple[str, list[str]]]:
    found: dict[bytes, tuple[str, list[str]]] = {}
    for item in CAMPAIGN_ABI:
        if item.get("type") == "error":
            types = [i["type"] for i in item["inputs"]]
            found[bytes(Web3.keccak(text=f"{item['name']}({','.join(types)})")[:4])] = (item["name"], types)
    return found


_ERRORS = _error_selectors()


def decode_revert(data: Any) -> str:
    """The name of the Campaign error in revert data ("Unauthorized"), the reason of an Error(string), or
    "unknown"."""
    if not isinstance(data, str | bytes):
        return "unknown"
    try:
        raw = bytes.fromhex(data.removeprefix("0x")) if isinstance(data, str) else data
    except ValueError:
        return "unknown"
    if raw[:4] == _ERROR_STRING:
        try:
            return str(abi_decode(["string"], raw[4:])[0])[:200]
        except DecodingError:  # malformed revert data names nothing
            return "unknown"
    known = _ERRORS.get(raw[:4])
    return known[0] if known else "unknown"


# ---------------------------------------------------------------------------------------------- services


def oracle_tx_prepare(
    *,
    purpose_key: str,
    role: OracleRole,
    chain_id: int,
    to: str,
    data: str,
    sender: str | None = None,
    gas: int | None = None,
) -> OracleTransaction:
    """Sign and store the call for `purpose_key` (nothing is sent); the row already stored for it when there is
    one. Signed by the role's key for `sender` (the address the escrow names; the current key when None). The gas
    limit is estimated unless given; a call that reverts in the estimate raises OracleCallRejected and nothing is
    stored."""
    to, data = _checked_call(to, data)
    existing = OracleTransaction.objects.filter(purpose_key=purpose_key).first()
    if existing is not None:
        return _same(existing, role=role, chain_id=chain_id, to=to, data=data)
    if sender is not None and not Web3.is_address(sender):
        raise InvalidOracleCall("the sender is not an Ethereum address", extra={"sender": str(sender)})
    signer = oracle_signer(role, address=sender)
    w3 = _connected(chain_id)
    if gas is None:
        gas = _estimate(w3, signer.address, to, data)
    gas_price = int(w3.eth.gas_price)
    try:
        with transaction.atomic():
            nonce = allocate_nonce(w3, signer.address)
            raw, tx_hash = _sign(signer, chain_id=chain_id, to=to, data=data, nonce=nonce, gas=gas, price=gas_price)
            row = OracleTransaction.objects.create(
                purpose_key=purpose_key,
                role=role,
                chain_id=chain_id,
                sender=signer.address.lower(),
                to=to,
                data=data,
                nonce=nonce,
                gas=gas,
                gas_price=gas_price,
                raw_tx=raw,
                tx_hash=tx_hash,
                signed_at=timezone.now(),
            )
            OracleTransactionVersion.objects.create(transaction=row, tx_hash=tx_hash, raw_tx=raw, gas_price=gas_price)
    except IntegrityError:
        # Another worker prepared the same purpose first; its nonce stands, ours was rolled back with our row.
        winner = OracleTransaction.objects.filter(purpose_key=purpose_key).first()
        if winner is None:
            raise
        return _same(winner, role=role, chain_id=chain_id, to=to, data=data)
    log.info("oracle_tx_signed", tx_id=row.pk, purpose=purpose_key, chain_id=chain_id, nonce=nonce, tx_hash=tx_hash)
    return row


def oracle_call_gas(*, chain_id: int, sender: str, to: str, data: str) -> int:
    """The gas limit a call would be signed with (the node's estimate plus headroom), against the chain's current
    state; raises OracleCallRejected naming the Campaign error when it would revert. Nothing is signed."""
    to, data = _checked_call(to, data)
    return _estimate(_connected(chain_id), sender, to, data)


def oracle_tx_send(*, tx_id: int) -> str:
    """Broadcast the stored bytes of a signed transaction (a no-op once broadcast or settled); its status."""
    with transaction.atomic():
        row = OracleTransaction.objects.select_for_update().get(pk=tx_id)
        if row.status == Status.SIGNED:
            _send_signed(_connected(row.chain_id), row)
        return row.status


def oracle_tx_advance(*, tx_id: int) -> str:
    """Move a transaction one step towards settled: broadcast it if it never was, settle it by the receipt of
    whichever version mined once that is CHAIN_CONFIRMATIONS deep, park it if its nonce went elsewhere, else
    replace it once it has waited too long and rebroadcast it if the node dropped it. Idempotent, safe to run from
    several workers at once. Its status."""
    _replace_when_due(tx_id)  # committed on its own: a replacement is stored before anything can broadcast it
    with transaction.atomic():
        row = OracleTransaction.objects.select_for_update().get(pk=tx_id)
        if row.status in SETTLED:
            return row.status
        w3 = _connected(row.chain_id)
        if row.status == Status.SIGNED:
            _send_signed(w3, row)  # signed, then a crash before the broadcast: the same bytes go out now
            if row.status == Status.PARKED:
                return row.status
        found = _mined_version(w3, row)
        if found is None:
            if not _nonce_used(w3, row):
                _keep_moving(w3, row)
                return row.status
            found = _mined_version(w3, row)  # one of ours may have mined between the two reads
            if found is None:
                _park(row)
                return row.status
        if not chain_tx.buried(w3, found[1], settings.CHAIN_CONFIRMATIONS):
            return row.status  # mined, not yet deep enough to outlast a reorg: the next pass looks again
        _settle(w3, row, *found)
        return row.status


def oracle_txs_unsettled(*, older_than_seconds: int) -> list[int]:
    """Transactions signed or broadcast longer ago than that and not settled: what the sweep advances, whatever
    row (a close, a payout, a batch) they were signed for. A signed nonce left unsent blocks every later
    transaction of its key, so nothing depends on the caller that signed it coming back."""
    since = timezone.now() - timedelta(seconds=older_than_seconds)
    unsettled = OracleTransaction.objects.filter(status__in=(Status.SIGNED, Status.BROADCAST), created_at__lt=since)
    return list(unsettled.order_by("nonce", "pk").values_list("pk", flat=True))


def record_results_tx(
    *, chain_id: int, campaign_address: str, epoch: int, digest_hex: str, uri: str, attempt: int = 0
) -> OracleTransaction:
    """Prepare `recordResults(epoch, digest, uri)` for a campaign. The chain is read first: results already
    recorded with this digest give an `adopted` row and nothing is signed; another digest raises
    ResultsAlreadyRecordedDifferently (recordResults can never overwrite it) and nothing is stored."""
    if not Web3.is_address(campaign_address):
        raise InvalidOracleCall("the campaign address is not an Ethereum address", extra={"to": campaign_address})
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch < 2**256:
        raise InvalidOracleCall("the epoch is not a uint256", extra={"epoch": str(epoch)})
    if not isinstance(uri, str):
        raise InvalidOracleCall("the results uri is not a string")
    if not isinstance(digest_hex, str) or not _HASH32.match(digest_hex) or int(digest_hex, 16) == 0:
        raise InvalidOracleCall("the results digest is not a non-zero 32-byte 0x hex string")
    digest = bytes.fromhex(digest_hex[2:])
    w3 = _connected(chain_id)
    campaign = w3.eth.contract(address=Web3.to_checksum_address(campaign_address), abi=CAMPAIGN_ABI)
    # An operator's retry of a close whose record was refused is a new purpose (the refused one stays as it was);
    # the resultsHash read below and the contract's own check keep it to one record.
    purpose_key = f"record:{chain_id}:{campaign_address.lower()}:{epoch}" + (f":retry{attempt}" if attempt else "")
    data = str(campaign.encode_abi("recordResults", args=[epoch, digest, uri]))
    recorder = str(campaign.functions.params().call()[2])  # Params.recordingOracle, fixed at creation
    recorded = bytes(campaign.functions.resultsHash(epoch).call())
    if recorded == b"\0" * 32:
        return oracle_tx_prepare(
            purpose_key=purpose_key,
            role="recording",
            chain_id=chain_id,
            to=campaign_address,
            data=data,
            sender=recorder,
        )
    if recorded != digest:
        raise ResultsAlreadyRecordedDifferently(
            f"epoch {epoch} of campaign {campaign_address} already holds results hash 0x{recorded.hex()}",
            extra={"epoch": epoch, "recorded": "0x" + recorded.hex(), "ours": digest_hex.lower()},
        )
    to, data = _checked_call(campaign_address, data)
    existing = OracleTransaction.objects.filter(purpose_key=purpose_key).first()
    if existing is not None:
        return _same(existing, role="recording", chain_id=chain_id, to=to, data=data)  # ours: advance settles it
    try:
        with transaction.atomic():
            row = OracleTransaction.objects.create(
                purpose_key=purpose_key,
                role="recording",
                chain_id=chain_id,
                sender=recorder.lower(),
                to=to,
                data=data,
                status=Status.ADOPTED,
                settled_at=timezone.now(),
            )
    except IntegrityError:
        winner = OracleTransaction.objects.filter(purpose_key=purpose_key).first()
        if winner is None:
            raise
        return _same(winner, role="recording", chain_id=chain_id, to=to, data=data)
    log.info("oracle_tx_adopted", tx_id=row.pk, purpose=purpose_key, chain_id=chain_id)
    return row


# ---------------------------------------------------------------------------------------------- internals


def _checked_call(to: str, data: str) -> tuple[str, str]:
    if not isinstance(to, str) or not Web3.is_address(to):
        raise InvalidOracleCall("the destination is not an Ethereum address", extra={"to": str(to)})
    if not isinstance(data, str) or not re.fullmatch(r"0x(?:[0-9a-fA-F]{2})+", data):
        raise InvalidOracleCall("the calldata is not 0x-prefixed hex bytes")
    return to.lower(), data.lower()


def _same(row: OracleTransaction, *, role: str, chain_id: int, to: str, data: str) -> OracleTransaction:
    if (row.role, row.chain_id, row.to, row.data) != (role, chain_id, to, data):
        raise OraclePurposeConflict(
            f"a transaction for {row.purpose_key} is already stored with other contents",
            extra={"tx_id": row.pk, "purpose_key": row.purpose_key},
        )
    return row


def _connected(chain_id: int) -> Web3:
    w3 = get_web3()
    served = int(w3.eth.chain_id)
    if served != chain_id:
        raise OracleChainMismatch(
            f"the chain RPC serves chain {served}, the transaction is for chain {chain_id}",
            extra={"served": served, "chain_id": chain_id},
        )
    return w3


def _estimate(w3: Web3, sender: str, to: str, data: str) -> int:
    call: TxParams = {
        "from": Web3.to_checksum_address(sender),
        "to": Web3.to_checksum_address(to),
        "data": HexStr(data),
    }
    try:
        estimate = int(w3.eth.estimate_gas(call))
    except ContractLogicError as exc:
        reason = decode_revert(exc.data)
        raise OracleCallRejected(
            f"the call reverts with {reason} against the chain's current state; nothing was signed",
            extra={"error": reason},
        ) from None
    return estimate * 6 // 5  # 20 % headroom: state can change between the estimate and the block


def _sign(
    signer: LocalAccount, *, chain_id: int, to: str, data: str, nonce: int, gas: int, price: int
) -> tuple[str, str]:
    signed = signer.sign_transaction(
        {
            "chainId": chain_id,
            "to": Web3.to_checksum_address(to),
            "data": HexStr(data),
            "value": 0,
            "nonce": nonce,
            "gas": gas,
            "gasPrice": price,
        }
    )
    return "0x" + signed.raw_transaction.hex(), "0x" + signed.hash.hex()


def _send_raw(w3: Web3, raw_tx: str) -> None:
    """The one place bytes go to the node."""
    w3.eth.send_raw_transaction(HexStr(raw_tx))


def _broadcast(w3: Web3, row: OracleTransaction) -> bool:
    """Send the newest version. False when the chain has used its nonce already (by one of our versions or by a
    transaction that is not ours: the caller finds out which by receipt)."""

    def sent() -> None:
        row.broadcast_at = timezone.now()
        row.save(update_fields=["broadcast_at", "updated_at"])

    try:
        return chain_tx.send(
            w3,
            _pending(row),
            send_raw=lambda raw: _send_raw(w3, raw),
            refusals=(Web3Exception, OSError),
            on_sent=sent,
        )
    except chain_tx.BroadcastRefused as exc:
        raise OracleChainUnavailable(
            f"the chain refused oracle transaction {row.pk} ({exc.cause})", extra={"tx_id": row.pk}
        ) from None


def _send_signed(w3: Web3, row: OracleTransaction) -> None:
    if not _broadcast(w3, row) and _mined_version(w3, row) is None:
        _park(row)
        return
    row.status = Status.BROADCAST
    row.save(update_fields=["status", "updated_at"])


def _pending(row: OracleTransaction) -> chain_tx.Pending:
    return chain_tx.Pending(
        sender=row.sender,
        nonce=row.nonce,
        tx_hash=row.tx_hash,
        raw_tx=row.raw_tx,
        versions=lambda: row.versions.order_by("-pk").values_list("tx_hash", flat=True),
    )


def _nonce_used(w3: Web3, row: OracleTransaction) -> bool:
    return chain_tx.nonce_used(w3, row.sender, row.nonce)


def _mined_version(w3: Web3, row: OracleTransaction) -> tuple[str, TxReceipt] | None:
    return chain_tx.mined_version(w3, _pending(row))


def _settle(w3: Web3, row: OracleTransaction, tx_hash: str, receipt: TxReceipt) -> None:
    if tx_hash != row.tx_hash:
        # An earlier version can mine after its replacement was signed: the row becomes the one that mined.
        version = row.versions.get(tx_hash=tx_hash)
        row.tx_hash, row.raw_tx, row.gas_price = version.tx_hash, version.raw_tx, version.gas_price
        log.warning("oracle_tx_version_mined", tx_id=row.pk, tx_hash=tx_hash)
    row.block_number = int(receipt["blockNumber"])
    row.settled_at = timezone.now()
    if receipt["status"] == 1:
        row.status = Status.MINED
    else:
        row.status = Status.REVERTED
        row.revert_reason = _revert_reason(w3, row, row.block_number)
        log.error("oracle_tx_reverted", tx_id=row.pk, tx_hash=tx_hash, reason=row.revert_reason)
    row.save()
    # The stall is over: its alerts describe a fact that is no longer true.
    alerts_resolve_keys([f"oracle-stuck:t{row.pk}", f"oracle-gas-cap:t{row.pk}"])
    log.info("oracle_tx_settled", tx_id=row.pk, status=row.status, block=row.block_number, tx_hash=row.tx_hash)


def _revert_reason(w3: Web3, row: OracleTransaction, block: int) -> str:
    """The call replayed on the state after its block (where a revert caused by an earlier transaction of the
    same block shows), then before it; "unknown" when neither reverts (out of gas, say)."""
    call: TxParams = {
        "from": Web3.to_checksum_address(row.sender),
        "to": Web3.to_checksum_address(row.to),
        "data": HexStr(row.data),
    }
    for at in (block, max(block - 1, 0)):
        try:
            w3.eth.call(call, block_identifier=at)
        except ContractLogicError as exc:
            return decode_revert(exc.data)
    return "unknown"


def _park(row: OracleTransaction) -> None:
    """The nonce went to a transaction that is none of ours (the key used elsewhere, a nonce reset): nothing of
    ours can mine any more. The transaction waits for an operator."""

    def mark() -> None:
        row.status = Status.PARKED
        row.settled_at = timezone.now()
        row.save(update_fields=["status", "settled_at", "updated_at"])

    chain_tx.park(
        mark=mark,
        alert=chain_tx.Alert(
            "oracle_nonce_taken",
            f"{row.role} oracle nonce {row.nonce} of {row.purpose_key} was used by a transaction that is not one of "
            f"its signed versions; the transaction is parked: treat the {row.role} oracle key as exposed "
            f"(docs/key-lifecycle.md)",
            dedup=f"oracle-parked:t{row.pk}",
            detail={"tx_id": row.pk, "purpose_key": row.purpose_key, "nonce": row.nonce, "tx_hash": row.tx_hash},
        ),
        sink=execution_services.alert_raise,
    )


def _replace_when_due(tx_id: int) -> None:
    """Sign and store the replacement of a broadcast transaction that has waited too long, and commit it: the
    broadcast is the next step's, so a worker killed after the node took the replacement still holds its record
    (without it, the replacement mining would look like a nonce taken by someone else)."""
    with transaction.atomic():
        row = OracleTransaction.objects.select_for_update().get(pk=tx_id)
        if row.status != Status.BROADCAST or not _bump_due(row):
            return
        w3 = _connected(row.chain_id)
        if _mined_version(w3, row) is not None or _nonce_used(w3, row):
            return  # mined, or its nonce went elsewhere: the next step settles or parks it
        _sign_replacement(w3, row)


def _keep_moving(w3: Web3, row: OracleTransaction) -> None:
    """Send the newest version again if the node dropped it (its replacement, when due, is already stored)."""
    chain_tx.keep_moving(
        w3,
        row,
        view=_pending,
        replace=None,
        send=lambda r: _broadcast(w3, r),
        refused=OracleChainUnavailable,
        on_refused=lambda r: log.warning("oracle_tx_replacement_refused", tx_id=r.pk, tx_hash=r.tx_hash),
    )


def _bump_due(row: OracleTransaction) -> bool:
    return chain_tx.bump_due(since=row.signed_at or row.created_at, seconds=settings.ORACLE_GAS_BUMP_SECONDS)


def _sign_replacement(w3: Web3, row: OracleTransaction) -> OracleTransaction:
    """The same call, same nonce, at a higher gas price; stored before it is broadcast (the caller holds the row
    lock)."""
    signer = oracle_signer(row.role, address=row.sender)  # type: ignore[arg-type]
    nonce = row.nonce
    if nonce is None:
        return row  # adopted rows have nothing of ours pending
    current = row.gas_price
    detail = {"tx_id": row.pk, "purpose_key": row.purpose_key, "nonce": nonce, "gas_price": current}

    def resign(price: int) -> None:
        raw, tx_hash = _sign(
            signer, chain_id=row.chain_id, to=row.to, data=row.data, nonce=nonce, gas=row.gas, price=price
        )
        OracleTransactionVersion.objects.create(transaction=row, tx_hash=tx_hash, raw_tx=raw, gas_price=price)
        row.tx_hash, row.raw_tx, row.gas_price, row.signed_at = tx_hash, raw, price, timezone.now()
        row.save(update_fields=["tx_hash", "raw_tx", "gas_price", "signed_at", "updated_at"])

    chain_tx.replace(
        w3,
        current=current,
        bump=chain_tx.Bump(
            seconds=settings.ORACLE_GAS_BUMP_SECONDS,
            percent=settings.ORACLE_GAS_BUMP_PERCENT,
            cap=settings.ORACLE_GAS_PRICE_CAP_WEI,
        ),
        resign=resign,
        cap_alert=lambda cap: chain_tx.Alert(
            "oracle_gas_cap",
            f"oracle transaction {row.purpose_key} (nonce {nonce}) is still pending at the gas price cap "
            f"{cap} wei; every later {row.role} oracle transaction waits behind it (docs/runbook.md)",
            dedup=f"oracle-gas-cap:t{row.pk}",
            detail=detail,
        ),
        stuck_alert=lambda price: chain_tx.Alert(
            "oracle_tx_stuck",
            f"oracle transaction {row.purpose_key} (nonce {nonce}) was pending for "
            f"{settings.ORACLE_GAS_BUMP_SECONDS}s; replaced at gas price {price} wei",
            dedup=f"oracle-stuck:t{row.pk}",
            detail={**detail, "gas_price": price, "replaced": current},
            warning=True,
        ),
        sink=execution_services.alert_raise,
    )
    return row
