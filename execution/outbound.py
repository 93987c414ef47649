"""The outbound leg of an MM order's funds: custody wallet → the exchange's deposit address → confirmed (ADR 0006).

- `mm_order_fund` reserves the amount in the ledger with `fund` (custody → `custody:reserved:o<id>`, refused
  with LedgerOverdraft when the free custody balance is short, leaving the order `created`), so an order signed
  but not yet booked as sent still counts against custody; then it signs the ERC-20 transfer to the account's
  deposit address (asked of the exchange through ccxt), **stores the signed transaction**, and only then
  broadcasts it and applies `transfer_sent` with the ledger move reserved → transit. A crash anywhere leaves
  either nothing signed (safe to redo) or a stored transaction that a retry rebroadcasts unchanged.
- `mm_order_track_deposit` (beat) keeps a pending transfer moving (`execution.custody`: replaced at a higher
  gas price, parked when its nonce is taken), applies `transfer_mined` once the receipt exists, and
  `deposit_confirmed` only when the exchange's deposit history shows **this** transaction hash credited for the
  amount **and** the chain shows `CHAIN_CONFIRMATIONS` blocks on it — never a balance threshold that other
  funds could satisfy. Until then every beat reads the receipt again: a transfer a reorg took off the chain is
  sent again (the same bytes), one it moved is counted from its new block.
- `mm_order_refund` closes an order that never traded, its funds (if any) in custody: what is reserved for it goes
  back to free custody with `refund`, under the row lock the signer takes too, so a refund and a signing at once
  never both happen.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from eth_account import Account
from web3 import Web3
from web3.types import TxReceipt

from execution import accounts, custody, selectors, services
from execution.alerts import alerts_resolve_keys
from execution.domain import mm_order as mm
from execution.domain import withdrawal as wd
from execution.domain.ledger import (
    CUSTODY,
    Transaction,
    custody_reserved,
    exchange_holdings,
    in_transit,
    of_asset,
    transfer,
)
from execution.domain.units import same_amount
from execution.errors import LedgerOverdraft, OrderNotRefundable
from execution.funds import custody_asset
from execution.models import CustodyTransfer, CustodyTransferVersion, ExchangeAccount, MMOrder
from mrmarket.chain import get_web3
from mrmarket.exchanges.client import TRANSIENT, exchange_call
from mrmarket.observability import context
from mrmarket.observability.logging import get_logger

log = get_logger(__name__)


def _deposit_address(account: ExchangeAccount, asset: str) -> str:
    client = accounts.exchange_account_client(account=account)
    with exchange_call(account.exchange, "a deposit address"):
        address = client.fetch_deposit_address(asset)["address"]
    return Web3.to_checksum_address(address)


def _reservation(order: MMOrder) -> Transaction:
    # Booked with `fund`, before anything is signed: the custody balance that later orders see no longer
    # includes it, so two orders can never both sign against funds that cover one.
    return transfer(
        f"o{order.pk}-custody-reserved",
        "reserve_lock",
        asset=order.funding_asset,
        amount=order.funding_amount,
        source=CUSTODY,
        target=custody_reserved(order.pk),
    )


def _overdraft(order: MMOrder) -> LedgerOverdraft:
    free = of_asset(CUSTODY, order.funding_asset)
    available = selectors.ledger_balance(account=free)
    return LedgerOverdraft(
        f"custody holds {available} base units of {order.funding_asset} free, the order needs {order.funding_amount}",
        extra={"account": free, "short": order.funding_amount - available},
    )


def mm_order_fund(*, order_id: int) -> MMOrder:
    """Move the order's funds toward the exchange. Safe to call again: it continues where it stopped.

    Custody short of the amount: LedgerOverdraft, and the order stays `created` with nothing reserved or signed."""
    w3 = get_web3()
    with context.bound(order_id=order_id):
        order = MMOrder.objects.get(pk=order_id)
        if order.state == mm.State.CREATED:
            try:
                order = services.mm_order_transition(
                    order_id=order_id, event=mm.Event.FUND, key=f"o{order_id}-fund", ledger=[_reservation(order)]
                )
            except LedgerOverdraft:
                raise _overdraft(order) from None
        if order.state != mm.State.FUNDING:
            return order
        sent = CustodyTransfer.objects.filter(order=order, direction="to_exchange").first()
        if sent is None:
            # Checked again (it is, by the credentials service) outside the signing transaction too, so that
            # the alert of a row nobody vouched for is not rolled back with it: nothing is signed or sent.
            accounts.exchange_account_trusted(account=order.exchange_account)
            sent = _sign_deposit_transfer(w3, order)
            if sent is None:
                return MMOrder.objects.get(pk=order_id)  # refunded while this worker was on its way: nothing signed
        return _broadcast(w3, sent)


@transaction.atomic
def _sign_deposit_transfer(w3: Web3, order: MMOrder) -> CustodyTransfer | None:
    """The order's transfer, signed and stored once; None when the order is no longer funding (a refund took the
    row lock first and released the reservation: signing now would send funds nothing reserves)."""
    order = MMOrder.objects.select_for_update().get(pk=order.pk)
    existing = CustodyTransfer.objects.filter(order=order, direction="to_exchange").first()
    if existing is not None:
        return existing
    if order.state != mm.State.FUNDING:
        return None
    token_address, _ = custody_asset(order.funding_asset)
    wallet = Account.from_key(settings.CUSTODY_PRIVATE_KEY)
    # Reserved with `fund`; an order funded before reservations existed reserves now (a no-op otherwise).
    try:
        services.ledger_record(tx=_reservation(order))
    except LedgerOverdraft:
        raise _overdraft(order) from None
    to = _deposit_address(order.exchange_account, order.funding_asset)
    gas_price = int(w3.eth.gas_price)
    signed = custody.sign_transfer(
        w3, order.funding_asset, to, order.funding_amount, custody.allocate_nonce(w3, wallet.address), gas_price
    )
    sent = CustodyTransfer.objects.create(
        order=order,
        chain_id=w3.eth.chain_id,
        token=token_address.lower(),
        from_address=wallet.address.lower(),
        to_address=to.lower(),
        amount=order.funding_amount,
        nonce=signed.nonce,
        tx_hash=signed.tx_hash,
        raw_tx=signed.raw_tx,
        gas_price=gas_price,
        signed_at=timezone.now(),
    )
    CustodyTransferVersion.objects.create(
        transfer=sent, tx_hash=signed.tx_hash, raw_tx=signed.raw_tx, gas_price=gas_price
    )
    return sent


def _broadcast(w3: Web3, sent: CustodyTransfer) -> MMOrder:
    if not custody.broadcast(w3, sent):
        return MMOrder.objects.get(pk=sent.order_id)
    move = transfer(
        f"o{sent.order_id}-deposit-sent",
        "withdraw_debit",
        asset=sent.order.funding_asset,
        amount=sent.amount,
        source=custody_reserved(sent.order_id),
        target=in_transit(sent.order_id),
    )
    return services.mm_order_transition(
        order_id=sent.order_id,
        event=mm.Event.TRANSFER_SENT,
        key=f"o{sent.order_id}-transfer-sent",
        # The reservation is a no-op (recorded with `fund`) except for a transfer signed before reservations.
        ledger=[_reservation(sent.order), move],
        detail={"tx_hash": sent.tx_hash, "to": sent.to_address},
    )


# A custody transfer that may still move the order's funds: signed (perhaps broadcast), or parked with its nonce
# taken by a transaction not ours (the funds are located by an operator first).
_TRANSFER_OPEN = (CustodyTransfer.Status.SIGNED, CustodyTransfer.Status.BROADCAST, CustodyTransfer.Status.PARKED)


def _refund_refusal(order: MMOrder) -> str:
    """Why the order cannot be refunded, or "" when it can: read under its row lock. Created or funding, nothing
    has left custody until its transfer is signed. Failed, its funds may be anywhere: only the ledger holding
    nothing of it in transit or on its exchange account, with no transfer or withdrawal of it in flight, puts
    them all in custody; and an order that started a job may have traded, so it settles the normal way."""
    state = mm.State(order.state)
    if state not in (mm.State.CREATED, mm.State.FUNDING, mm.State.FAILED):
        return "only an order created, funding or failed that never traded can be refunded"
    transfers = CustodyTransfer.objects.filter(order=order)
    if state is not mm.State.FAILED:
        signed = transfers.exists()
        return "its custody transfer is signed: its funds are on their way to the exchange" if signed else ""
    if order.transitions.filter(event=mm.Event.START.value).exists():
        return "it started a job, which may have traded: stop it and withdraw its funds back"
    if transfers.filter(status__in=_TRANSFER_OPEN).exists():
        return "its custody transfer is signed and may still move its funds"
    if order.withdrawals.filter(status__in=sorted(wd.IN_FLIGHT)).exists():
        return "a withdrawal of its funds is in flight"
    transit = selectors.ledger_balances(prefix=f"{in_transit(order.pk)}:")
    if transit:
        return f"the ledger holds funds of it in transit ({', '.join(sorted(transit))})"
    held = sorted(asset for asset, units in selectors.order_holdings(order).items() if units > 0)
    if held:
        return f"the ledger holds funds of it on its exchange account ({', '.join(held)}): stop it and withdraw them"
    return ""


@transaction.atomic
def mm_order_refund(*, order_id: int) -> MMOrder:
    """Refund an order that never traded, its funds (if any) in custody: what the ledger holds reserved for it goes
    back to free custody in the same transaction as `refund`. Anything else raises OrderNotRefundable, nothing
    changed.

    Under the order's row lock, which `_sign_deposit_transfer` takes too: a refund and a signing at once
    serialize, and the second finds the first's result (a transfer signed: refused; the order refunded: nothing
    signed). Refunded is final, so the order has one refund key: a repeat returns the refunded order."""
    order = MMOrder.objects.select_for_update().get(pk=order_id)
    key = f"o{order_id}-refund"
    if order.transitions.filter(key=key).exists():
        return order
    why = _refund_refusal(order)
    if why:
        raise OrderNotRefundable(
            f"order {order_id} is {order.state} and cannot be refunded: {why}",
            extra={"state": order.state, "reason": why},
        )
    reserved = selectors.ledger_balance(account=of_asset(custody_reserved(order_id), order.funding_asset))
    release = (
        transfer(
            f"o{order_id}-custody-released",
            "reserve_release",
            asset=order.funding_asset,
            amount=reserved,
            source=custody_reserved(order_id),
            target=CUSTODY,
        )
        if reserved
        else None
    )
    return services.mm_order_transition(
        order_id=order_id,
        event=mm.Event.REFUND,
        key=key,
        ledger=[release] if release else [],
        detail={"released": str(reserved), "asset": order.funding_asset},
    )


def mm_order_track_deposit(*, order_id: int) -> MMOrder:
    """Advance an order whose funds are on their way to the exchange; idempotent, safe to run concurrently."""
    w3 = get_web3()
    order = MMOrder.objects.get(pk=order_id)
    sent = CustodyTransfer.objects.filter(order=order, direction="to_exchange").first()
    if sent is None and order.state == mm.State.FUNDING:
        # Reserved but never signed: the worker that funded it died in between. Its task comes back only when the
        # broker redelivers it (after the visibility timeout, or never if the broker lost it): continue here.
        return mm_order_fund(order_id=order_id)
    if sent is None or sent.status == CustodyTransfer.Status.PARKED:
        return order
    if order.state == mm.State.FUNDING:
        return _broadcast(w3, sent)  # signed but the broadcast never happened (crash): send the same tx again
    if order.state == mm.State.WITHDRAWING_TO_EXCHANGE:
        found = _on_chain(w3, sent)
        if found is None:
            return order
        tx_hash, receipt = found
        sent = custody.adopt(sent, tx_hash)
        if receipt["status"] != 1:
            CustodyTransfer.objects.filter(pk=sent.pk).update(status=CustodyTransfer.Status.REVERTED)
            back = transfer(
                f"o{order_id}-deposit-reverted",
                "reversal",
                asset=order.funding_asset,
                amount=sent.amount,
                source=in_transit(order_id),
                target=CUSTODY,
            )
            return services.mm_order_transition(
                order_id=order_id,
                event=mm.Event.FAIL,
                key=f"o{order_id}-transfer-reverted",
                ledger=[back],
                detail={"reason": f"custody transfer {sent.tx_hash} reverted"},
            )
        CustodyTransfer.objects.filter(pk=sent.pk).update(
            status=CustodyTransfer.Status.MINED, block_number=receipt["blockNumber"]
        )
        # The stall is over: its alerts describe a fact that is no longer true.
        alerts_resolve_keys([f"custody-stuck:t{sent.pk}", f"custody-gas-cap:t{sent.pk}"])
        order = services.mm_order_transition(
            order_id=order_id,
            event=mm.Event.TRANSFER_MINED,
            key=f"o{order_id}-transfer-mined",
            detail={"block": receipt["blockNumber"], "tx_hash": sent.tx_hash},
        )
        sent.refresh_from_db()
    if order.state == mm.State.DEPOSIT_CONFIRMING:
        # Asked again on every beat until confirmed: a reorg can take the mined transfer off the chain, or move it
        # to another block. Gone, it is sent again (the same bytes, the same nonce) rather than waited on forever
        # with its nonce free, which would hold every later custody transfer; moved, it is counted from where it is.
        found = _on_chain(w3, sent)
        if found is None:
            log.warning("custody_transfer_reorged", order_id=order_id, transfer_id=sent.pk, tx_hash=sent.tx_hash)
            return order
        tx_hash, receipt = found
        sent = custody.adopt(sent, tx_hash)
        if receipt["blockNumber"] != sent.block_number:
            CustodyTransfer.objects.filter(pk=sent.pk).update(block_number=receipt["blockNumber"])
            sent.refresh_from_db()
        confirmations = w3.eth.block_number - int(sent.block_number or 0) + 1
        if confirmations < settings.CHAIN_CONFIRMATIONS or not _credited_by_exchange(order, sent):
            return order
        arrive = transfer(
            f"o{order_id}-deposit-credited",
            "deposit_credit",
            asset=order.funding_asset,
            amount=sent.amount,
            source=in_transit(order_id),
            target=exchange_holdings(order.exchange_account_id),
        )
        order = services.mm_order_transition(
            order_id=order_id,
            event=mm.Event.DEPOSIT_CONFIRMED,
            key=f"o{order_id}-deposit-confirmed",
            ledger=[arrive],
            detail={"tx_hash": sent.tx_hash, "confirmations": confirmations},
        )
    return order


def _on_chain(w3: Web3, sent: CustodyTransfer) -> tuple[str, TxReceipt] | None:
    """The version of the transfer the chain holds now, with its receipt. None while none does: the transfer is
    then kept moving (replaced when due, sent again if the node dropped it), or parked when its nonce went to a
    transaction that is none of ours."""
    found = custody.mined_version(w3, sent)
    if found is None:
        if not custody.nonce_used(w3, sent):
            custody.keep_moving(w3, sent)
            return None
        found = custody.mined_version(w3, sent)  # one of ours may have mined between the two reads
        if found is None:
            custody.park(sent)
    return found


def _credited_by_exchange(order: MMOrder, sent: CustodyTransfer) -> bool:
    account = order.exchange_account
    client = accounts.exchange_account_client(account=account)
    _, decimals = custody_asset(order.funding_asset)
    try:
        deposits = client.fetch_deposits(order.funding_asset)
    except TRANSIENT:
        return False  # try again on the next beat
    # ccxt reports amounts as floats: compared in base units at the precision a float carries (ADR 0013).
    # Any version of ours counts: the one that mined is the one the exchange credits, whichever the row names.
    ours = {sent.tx_hash, *sent.versions.values_list("tx_hash", flat=True)}
    return any(
        str(d.get("txid", "")).lower() in ours
        and d.get("status") == "ok"
        and same_amount(d.get("amount"), sent.amount, decimals)
        for d in deposits
    )
