"""Custody signing and nonces: the ERC-20 transfers the custody wallet signs, stored before they are broadcast,
and what keeps one moving until the chain mines a version of it.

- A nonce is allocated under a row lock (`CustodyNonce`), never below the chain's pending count.
- A transfer pending longer than `CUSTODY_GAS_BUMP_SECONDS` is replaced: the same nonce at a higher gas price,
  signed and stored before it is broadcast like the original, with an alert; whichever stored version mined is
  adopted (found by receipt). A nonce the chain used for none of our versions parks the transfer with a
  critical alert instead of failing on every beat.

The mechanics are the core's one sender (`mrmarket.chain_tx`, shared with the oracles' transactions): this module
gives it the transfer rows, how a replacement is signed and stored, the `CUSTODY_GAS_*` settings and the alerts.
What a transfer means for an order (its ledger moves and state) is the outbound leg's (`execution.outbound`).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from eth_account import Account
from eth_typing import HexStr
from web3 import Web3
from web3.exceptions import TransactionNotFound
from web3.types import Nonce, TxParams, TxReceipt, Wei

from contracts import load_artifact
from execution import services
from execution.funds import custody_asset
from execution.models import CustodyNonce, CustodyTransfer, CustodyTransferVersion
from mrmarket import chain_tx
from mrmarket.exchanges.errors import ExchangeUnavailable
from mrmarket.observability.logging import get_logger

log = get_logger(__name__)
ERC20_ABI = load_artifact("DevToken").abi


def allocate_nonce(w3: Web3, address: str) -> int:
    return chain_tx.allocate_nonce(w3, address, counters=CustodyNonce)


@dataclass(frozen=True)
class Signed:
    nonce: int
    tx_hash: str
    raw_tx: str


def sign_transfer(w3: Web3, asset: str, to: str, amount: int, nonce: int, gas_price: int) -> Signed:
    """The ERC-20 transfer from the custody wallet; the same arguments with another gas price is its replacement."""
    token_address, _ = custody_asset(asset)
    custody = Account.from_key(settings.CUSTODY_PRIVATE_KEY)
    params: TxParams = {
        "from": custody.address,
        "nonce": Nonce(nonce),
        "chainId": w3.eth.chain_id,
        "gas": 100_000,
        "gasPrice": Wei(gas_price),
    }
    token = w3.eth.contract(address=token_address, abi=ERC20_ABI)
    tx = token.functions.transfer(Web3.to_checksum_address(to), amount).build_transaction(params)
    signed = custody.sign_transaction(tx)
    return Signed(nonce=nonce, tx_hash="0x" + signed.hash.hex(), raw_tx="0x" + signed.raw_transaction.hex())


def broadcast(w3: Web3, sent: CustodyTransfer) -> bool:
    """Send a signed transfer (a broadcast one needs nothing more); False when it is, or is now, parked: its
    nonce went to a transaction that is none of ours."""
    if sent.status == CustodyTransfer.Status.PARKED:
        return False
    if sent.status == CustodyTransfer.Status.SIGNED:
        if not send(w3, sent) and mined_version(w3, sent) is None:
            park(sent)
            return False
        CustodyTransfer.objects.filter(pk=sent.pk, status=CustodyTransfer.Status.SIGNED).update(
            status=CustodyTransfer.Status.BROADCAST
        )
    return True


def send(w3: Web3, sent: CustodyTransfer) -> bool:
    """Broadcast the transfer's newest version. False when the chain has used its nonce already (by one of our
    versions, or by a transaction that is not ours: the caller finds out which by receipt)."""
    try:
        return chain_tx.send(w3, _pending(sent), send_raw=lambda raw: w3.eth.send_raw_transaction(HexStr(raw)))
    except chain_tx.BroadcastRefused as exc:
        raise ExchangeUnavailable(f"the chain refused the custody transfer ({exc.cause})") from None


def known(w3: Web3, tx_hash: str) -> bool:
    return chain_tx.known(w3, tx_hash)


def nonce_used(w3: Web3, sent: CustodyTransfer) -> bool:
    return chain_tx.nonce_used(w3, sent.from_address, sent.nonce)


def mined_version(w3: Web3, sent: CustodyTransfer) -> tuple[str, TxReceipt] | None:
    """The version of the transfer that the chain mined, with its receipt; None while none has."""
    return chain_tx.mined_version(w3, _pending(sent))


def adopt(sent: CustodyTransfer, tx_hash: str) -> CustodyTransfer:
    """The transfer is the version that mined (an earlier one can mine after its replacement was signed)."""
    if tx_hash != sent.tx_hash:
        version = sent.versions.get(tx_hash=tx_hash)
        CustodyTransfer.objects.filter(pk=sent.pk).update(
            tx_hash=version.tx_hash, raw_tx=version.raw_tx, gas_price=version.gas_price
        )
        log.warning("custody_transfer_version_mined", transfer_id=sent.pk, tx_hash=tx_hash)
        sent.refresh_from_db()
    return sent


def park(sent: CustodyTransfer) -> None:
    """The nonce went to a transaction that is none of ours (the key used elsewhere, a nonce reset): nothing
    of ours can mine any more, and sending again would only fail. The transfer waits for an operator."""
    chain_tx.park(
        mark=lambda: (
            CustodyTransfer.objects.filter(pk=sent.pk)
            .exclude(status=CustodyTransfer.Status.MINED)
            .update(status=CustodyTransfer.Status.PARKED)
        ),
        alert=chain_tx.Alert(
            "custody_nonce_taken",
            f"custody nonce {sent.nonce} of order {sent.order_id} was used by a transaction that is not one of its "
            f"signed versions; the transfer is parked (docs/runbook.md)",
            dedup=f"custody-parked:t{sent.pk}",
            detail={"order_id": sent.order_id, "transfer_id": sent.pk, "nonce": sent.nonce, "tx_hash": sent.tx_hash},
        ),
        sink=services.alert_raise,
    )


def keep_moving(w3: Web3, sent: CustodyTransfer) -> None:
    """A pending transfer: replaced at a higher gas price once it has waited too long (every later custody
    transfer queues behind its nonce), and sent again if the mempool dropped it."""
    chain_tx.keep_moving(
        w3,
        sent,
        view=_pending,
        replace=(lambda row: sign_replacement(w3, row)) if _bump_due(sent) else None,
        send=lambda row: send(w3, row),
        refused=ExchangeUnavailable,
        on_refused=lambda row: log.warning("custody_replacement_refused", transfer_id=row.pk, tx_hash=row.tx_hash),
    )


def _pending(sent: CustodyTransfer) -> chain_tx.Pending:
    return chain_tx.Pending(
        sender=sent.from_address,
        nonce=sent.nonce,
        tx_hash=sent.tx_hash,
        raw_tx=sent.raw_tx,
        versions=lambda: sent.versions.order_by("-pk").values_list("tx_hash", flat=True),
    )


def _bump() -> chain_tx.Bump:
    return chain_tx.Bump(
        seconds=settings.CUSTODY_GAS_BUMP_SECONDS,
        percent=settings.CUSTODY_GAS_BUMP_PERCENT,
        cap=settings.CUSTODY_GAS_PRICE_CAP_WEI,
    )


def _bump_due(sent: CustodyTransfer) -> bool:
    return chain_tx.bump_due(since=sent.signed_at or sent.created_at, seconds=settings.CUSTODY_GAS_BUMP_SECONDS)


@transaction.atomic
def sign_replacement(w3: Web3, sent: CustodyTransfer) -> CustodyTransfer:
    sent = CustodyTransfer.objects.select_for_update().get(pk=sent.pk)
    if sent.status not in (CustodyTransfer.Status.SIGNED, CustodyTransfer.Status.BROADCAST) or not _bump_due(sent):
        return sent  # another worker replaced it, or it is settled
    if mined_version(w3, sent) is not None:
        return sent  # a version mined meanwhile (the tracker adopts it): a replacement could never mine
    current = sent.gas_price or _pending_gas_price(w3, sent)
    detail = {"order_id": sent.order_id, "transfer_id": sent.pk, "nonce": sent.nonce, "gas_price": current}

    def resign(price: int) -> None:
        # The version being replaced stays on record: it can still be the one that mines.
        CustodyTransferVersion.objects.get_or_create(
            tx_hash=sent.tx_hash, defaults={"transfer": sent, "raw_tx": sent.raw_tx, "gas_price": current}
        )
        signed = sign_transfer(w3, sent.order.funding_asset, sent.to_address, sent.amount, sent.nonce, price)
        CustodyTransferVersion.objects.create(
            transfer=sent, tx_hash=signed.tx_hash, raw_tx=signed.raw_tx, gas_price=price
        )
        sent.tx_hash, sent.raw_tx, sent.gas_price, sent.signed_at = signed.tx_hash, signed.raw_tx, price, timezone.now()
        sent.save(update_fields=["tx_hash", "raw_tx", "gas_price", "signed_at"])

    chain_tx.replace(
        w3,
        current=current,
        bump=_bump(),
        resign=resign,
        cap_alert=lambda cap: chain_tx.Alert(
            "custody_gas_cap",
            f"custody transfer of order {sent.order_id} (nonce {sent.nonce}) is still pending at the gas price "
            f"cap {cap} wei; every later custody transfer waits behind it (docs/runbook.md)",
            dedup=f"custody-gas-cap:t{sent.pk}",
            detail=detail,
        ),
        stuck_alert=lambda price: chain_tx.Alert(
            "custody_transfer_stuck",
            f"custody transfer of order {sent.order_id} (nonce {sent.nonce}) was pending for "
            f"{settings.CUSTODY_GAS_BUMP_SECONDS}s; replaced at gas price {price} wei",
            dedup=f"custody-stuck:t{sent.pk}",
            detail={**detail, "gas_price": price, "replaced": current},
            warning=True,
        ),
        sink=services.alert_raise,
    )
    return sent


def _pending_gas_price(w3: Web3, sent: CustodyTransfer) -> int:
    # A transfer signed before gas prices were stored: the price the chain knows it at.
    try:
        return int(w3.eth.get_transaction(HexStr(sent.tx_hash)).get("gasPrice", 0))
    except TransactionNotFound:
        return 0
