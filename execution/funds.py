"""The funds flow of an MM order, outbound leg: custody wallet → exchange deposit address → confirmed (ADR 0006).

- `mm_order_create` checks everything that can be checked before any money moves (account usable for trading,
  market listed, asset configured, amount above the exchange's minimum) and creates nothing on bad input.
- `mm_order_fund` reserves the amount in the ledger with `fund` (custody → `custody:reserved:o<id>`, refused
  with LedgerOverdraft when the free custody balance is short, leaving the order `created`), so an order signed
  but not yet booked as sent still counts against custody; then it signs the ERC-20 transfer to the account's
  deposit address (asked of the exchange through ccxt), **stores the signed transaction**, and only then
  broadcasts it and applies `transfer_sent` with the ledger move reserved → transit. A crash anywhere leaves
  either nothing signed (safe to redo) or a stored transaction that a retry rebroadcasts unchanged.
- A transfer pending longer than `CUSTODY_GAS_BUMP_SECONDS` is replaced: the same nonce at a higher gas price,
  signed and stored before it is broadcast like the original, with an alert; the tracker accepts whichever
  stored version mined (found by receipt). A nonce the chain used for none of our versions parks the transfer
  with a critical alert instead of failing on every beat.
- `mm_order_track_deposit` (beat) applies `transfer_mined` once the receipt exists, and `deposit_confirmed`
  only when the exchange's deposit history shows **this** transaction hash credited for the amount **and** the
  chain shows `CHAIN_CONFIRMATIONS` blocks on it — never a balance threshold that other funds could satisfy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import ccxt
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from eth_account import Account
from eth_typing import ChecksumAddress, HexStr
from web3 import Web3
from web3.exceptions import TransactionNotFound
from web3.types import Nonce, TxParams, TxReceipt, Wei

from contracts import load_artifact
from execution import selectors, services
from execution.domain import mm_order as mm
from execution.domain.ledger import Transaction, transfer
from execution.domain.units import from_units, same_amount, units_up
from execution.errors import ExchangeUnavailable, ExecutionError, LedgerOverdraft
from execution.exchanges import TRANSIENT, exchange_call, exchange_client, exchange_market
from execution.models import (
    Alert,
    CustodyNonce,
    CustodyTransfer,
    CustodyTransferVersion,
    ExchangeAccount,
    ExchangeWithdrawal,
    MMOrder,
)
from mrmarket.chain import get_web3
from mrmarket.errors import NotFound
from mrmarket.observability import context
from mrmarket.observability.logging import get_logger

log = get_logger(__name__)
ERC20_ABI = load_artifact("DevToken").abi


class OrderRejected(ExecutionError):
    code = "mm_order_rejected"


class CustodyNotConfigured(ExecutionError):
    code = "custody_not_configured"
    status = 503


def custody_asset(asset: str) -> tuple[ChecksumAddress, int]:
    spec = settings.CUSTODY_ASSETS.get(asset)
    if not spec or not settings.CUSTODY_PRIVATE_KEY:
        raise CustodyNotConfigured(f"the custody wallet does not hold {asset} (CUSTODY_ASSETS, CUSTODY_PRIVATE_KEY)")
    return Web3.to_checksum_address(str(spec["token"])), int(str(spec["decimals"]))


STRATEGY_KEYS = frozenset({"name", "params", "risk", "report_interval_seconds", "sample_seconds"})


def _check_strategy(strategy: dict[str, Any] | None) -> dict[str, Any]:
    """The order's strategy choices: the shape here; the values by the executor's strategy at job start."""
    if strategy is None:
        return {}
    if not isinstance(strategy, dict):
        raise OrderRejected("strategy must be an object")
    unknown = sorted(set(strategy) - STRATEGY_KEYS)
    if unknown:
        raise OrderRejected(f"strategy has unknown field {unknown[0]!r}", code="invalid_strategy")
    for key in ("params", "risk"):
        if not isinstance(strategy.get(key, {}), dict):
            raise OrderRejected(f"strategy.{key} must be an object", code="invalid_strategy")
        for name, value in (strategy.get(key) or {}).items():
            if isinstance(value, float):
                raise OrderRejected(
                    f"strategy.{key}.{name}: use a decimal string, not a float", code="invalid_strategy"
                )
    for key in ("report_interval_seconds", "sample_seconds"):
        if key in strategy and (isinstance(strategy[key], bool) or not isinstance(strategy[key], int)):
            raise OrderRejected(f"strategy.{key} must be an integer", code="invalid_strategy")
    return dict(strategy)


def mm_order_create(
    *,
    owner_id: int,
    exchange_account_id: int,
    symbol: str,
    funding_asset: str,
    funding_amount: int,
    strategy: dict[str, Any] | None = None,
) -> MMOrder:
    account = ExchangeAccount.objects.filter(pk=exchange_account_id, owner_id=owner_id).first()
    if account is None:
        raise NotFound(f"no exchange account {exchange_account_id} of yours")
    if account.status != ExchangeAccount.Status.ACTIVE or account.role != ExchangeAccount.Role.TRADING:
        raise OrderRejected(f"exchange account {account.pk} is not an active trading account")
    market = exchange_market(account.exchange, symbol)
    if funding_asset not in (market["base"], market["quote"]):
        raise OrderRejected(f"{funding_asset} is neither side of {symbol}", extra={"symbol": symbol})
    _, decimals = custody_asset(funding_asset)
    chosen = _check_strategy(strategy)
    if funding_amount <= 0:
        raise OrderRejected("the funding amount must be positive")
    amount = from_units(funding_amount, decimals)
    minimum = _minimum(market, funding_asset)
    if amount < minimum:
        raise OrderRejected(
            f"{amount} {funding_asset} is below what {account.exchange} accepts for {symbol} ({minimum})",
            code="amount_below_minimum",
            extra={"minimum": str(minimum), "asset": funding_asset},
        )
    return MMOrder.objects.create(
        owner_id=owner_id,
        exchange_account=account,
        symbol=symbol,
        funding_asset=funding_asset,
        funding_amount=funding_amount,
        strategy=chosen,
    )


def _minimum(market: dict[str, Any], asset: str) -> Decimal:
    # Enough for one order on each side: twice the exchange's minimum notional (quote) or amount (base).
    limits = market.get("limits") or {}
    if asset == market["quote"]:
        value = (limits.get("cost") or {}).get("min") or 0
    else:
        value = (limits.get("amount") or {}).get("min") or 0
    return 2 * Decimal(str(value))


def _allocate_nonce(w3: Web3, address: str) -> int:
    chain_id = w3.eth.chain_id
    row, _ = CustodyNonce.objects.get_or_create(chain_id=chain_id, address=address.lower())
    row = CustodyNonce.objects.select_for_update().get(pk=row.pk)
    nonce = max(row.next_nonce, w3.eth.get_transaction_count(Web3.to_checksum_address(address), "pending"))
    row.next_nonce = nonce + 1
    row.save(update_fields=["next_nonce"])
    return nonce


def _deposit_address(account: ExchangeAccount, asset: str) -> str:
    client = exchange_client(account.exchange, credentials=services.exchange_account_credentials(account=account))
    with exchange_call(account.exchange, "a deposit address"):
        address = client.fetch_deposit_address(asset)["address"]
    return Web3.to_checksum_address(address)


def reserved_account(order: MMOrder) -> str:
    """Where the custody balance an order will send sits from `fund` until its transfer is booked as sent."""
    return f"custody:reserved:o{order.pk}"


def _reservation(order: MMOrder) -> Transaction:
    # Booked with `fund`, before anything is signed: the custody balance that later orders see no longer
    # includes it, so two orders can never both sign against funds that cover one.
    return transfer(
        f"o{order.pk}-custody-reserved",
        "reserve_lock",
        asset=order.funding_asset,
        amount=order.funding_amount,
        source="custody",
        target=reserved_account(order),
    )


def _overdraft(order: MMOrder) -> LedgerOverdraft:
    available = selectors.ledger_balance(account=f"custody:{order.funding_asset}")
    return LedgerOverdraft(
        f"custody holds {available} base units of {order.funding_asset} free, the order needs {order.funding_amount}",
        extra={"account": f"custody:{order.funding_asset}", "short": order.funding_amount - available},
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
            sent = _sign_deposit_transfer(w3, order)
        return _broadcast(w3, sent)


@transaction.atomic
def _sign_deposit_transfer(w3: Web3, order: MMOrder) -> CustodyTransfer:
    order = MMOrder.objects.select_for_update().get(pk=order.pk)
    existing = CustodyTransfer.objects.filter(order=order, direction="to_exchange").first()
    if existing is not None:
        return existing
    token_address, _ = custody_asset(order.funding_asset)
    custody = Account.from_key(settings.CUSTODY_PRIVATE_KEY)
    # Reserved with `fund`; an order funded before reservations existed reserves now (a no-op otherwise).
    try:
        services.ledger_record(tx=_reservation(order))
    except LedgerOverdraft:
        raise _overdraft(order) from None
    to = _deposit_address(order.exchange_account, order.funding_asset)
    gas_price = int(w3.eth.gas_price)
    signed = _sign(w3, order.funding_asset, to, order.funding_amount, _allocate_nonce(w3, custody.address), gas_price)
    sent = CustodyTransfer.objects.create(
        order=order,
        chain_id=w3.eth.chain_id,
        token=token_address.lower(),
        from_address=custody.address.lower(),
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


@dataclass(frozen=True)
class _Signed:
    nonce: int
    tx_hash: str
    raw_tx: str


def _sign(w3: Web3, asset: str, to: str, amount: int, nonce: int, gas_price: int) -> _Signed:
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
    return _Signed(nonce=nonce, tx_hash="0x" + signed.hash.hex(), raw_tx="0x" + signed.raw_transaction.hex())


def _broadcast(w3: Web3, sent: CustodyTransfer) -> MMOrder:
    if sent.status == CustodyTransfer.Status.PARKED:
        return MMOrder.objects.get(pk=sent.order_id)
    if sent.status == CustodyTransfer.Status.SIGNED:
        if not _send(w3, sent) and _mined_version(w3, sent) is None:
            _park(sent)
            return MMOrder.objects.get(pk=sent.order_id)
        CustodyTransfer.objects.filter(pk=sent.pk, status=CustodyTransfer.Status.SIGNED).update(
            status=CustodyTransfer.Status.BROADCAST
        )
    move = transfer(
        f"o{sent.order_id}-deposit-sent",
        "withdraw_debit",
        asset=sent.order.funding_asset,
        amount=sent.amount,
        source=reserved_account(sent.order),
        target=f"transit:o{sent.order_id}",
    )
    return services.mm_order_transition(
        order_id=sent.order_id,
        event=mm.Event.TRANSFER_SENT,
        key=f"o{sent.order_id}-transfer-sent",
        # The reservation is a no-op (recorded with `fund`) except for a transfer signed before reservations.
        ledger=[_reservation(sent.order), move],
        detail={"tx_hash": sent.tx_hash, "to": sent.to_address},
    )


def _send(w3: Web3, sent: CustodyTransfer) -> bool:
    """Broadcast the transfer's newest version. False when the chain has used its nonce already (by one of our
    versions, or by a transaction that is not ours: the caller finds out which by receipt)."""
    try:
        w3.eth.send_raw_transaction(HexStr(sent.raw_tx))
    except Exception as exc:  # "already known", "nonce too low", "underpriced": the chain's state decides, not the text
        if _known(w3, sent.tx_hash):
            return True
        if _nonce_used(w3, sent):
            return False
        raise ExchangeUnavailable(f"the chain refused the custody transfer ({type(exc).__name__})") from None
    return True


def _known(w3: Web3, tx_hash: str) -> bool:
    try:
        w3.eth.get_transaction(HexStr(tx_hash))
    except TransactionNotFound:
        return False
    return True


def _nonce_used(w3: Web3, sent: CustodyTransfer) -> bool:
    return int(w3.eth.get_transaction_count(Web3.to_checksum_address(sent.from_address), "latest")) > sent.nonce


def _mined_version(w3: Web3, sent: CustodyTransfer) -> tuple[str, TxReceipt] | None:
    """The version of the transfer that the chain mined, with its receipt; None while none has."""
    hashes = [sent.tx_hash]
    hashes += [h for h in sent.versions.order_by("-pk").values_list("tx_hash", flat=True) if h != sent.tx_hash]
    for tx_hash in hashes:
        try:
            return tx_hash, w3.eth.get_transaction_receipt(HexStr(tx_hash))
        except TransactionNotFound:
            continue
    return None


def _adopt(sent: CustodyTransfer, tx_hash: str) -> CustodyTransfer:
    """The transfer is the version that mined (an earlier one can mine after its replacement was signed)."""
    if tx_hash != sent.tx_hash:
        version = sent.versions.get(tx_hash=tx_hash)
        CustodyTransfer.objects.filter(pk=sent.pk).update(
            tx_hash=version.tx_hash, raw_tx=version.raw_tx, gas_price=version.gas_price
        )
        log.warning("custody_transfer_version_mined", transfer_id=sent.pk, tx_hash=tx_hash)
        sent.refresh_from_db()
    return sent


def _park(sent: CustodyTransfer) -> None:
    """The nonce went to a transaction that is none of ours (the key used elsewhere, a nonce reset): nothing
    of ours can mine any more, and sending again would only fail. The transfer waits for an operator."""
    CustodyTransfer.objects.filter(pk=sent.pk).exclude(status=CustodyTransfer.Status.MINED).update(
        status=CustodyTransfer.Status.PARKED
    )
    _alert(
        "custody_nonce_taken",
        f"custody nonce {sent.nonce} of order {sent.order_id} was used by a transaction that is not one of its "
        f"signed versions; the transfer is parked (docs/runbook.md)",
        dedup=f"custody-parked:t{sent.pk}",
        detail={"order_id": sent.order_id, "transfer_id": sent.pk, "nonce": sent.nonce, "tx_hash": sent.tx_hash},
    )


def _alert(kind: str, message: str, *, dedup: str, detail: dict[str, Any], warning: bool = False) -> None:
    severity = Alert.Severity.WARNING if warning else Alert.Severity.CRITICAL
    try:
        with transaction.atomic():
            Alert.objects.create(kind=kind, severity=severity, message=message[:500], detail=detail, dedup_key=dedup)
    except IntegrityError:
        return  # already open for this fact
    log.error(kind, **{k: str(v) for k, v in detail.items()})


def _keep_moving(w3: Web3, sent: CustodyTransfer) -> None:
    """A pending transfer: replaced at a higher gas price once it has waited too long (every later custody
    transfer queues behind its nonce), and sent again if the mempool dropped it."""
    if _bump_due(sent):
        sent = _sign_replacement(w3, sent)
    if _known(w3, sent.tx_hash):
        return
    try:
        _send(w3, sent)  # False: the nonce was used meanwhile; the next beat finds by receipt which version
    except ExchangeUnavailable:
        # A replacement the node refuses (underpriced for its policy) while an earlier version still waits in
        # its pool is no failure: that version can still mine, and the next bump offers more.
        earlier = sent.versions.exclude(tx_hash=sent.tx_hash).values_list("tx_hash", flat=True)
        if not any(_known(w3, tx_hash) for tx_hash in earlier):
            raise
        log.warning("custody_replacement_refused", transfer_id=sent.pk, tx_hash=sent.tx_hash)


def _bump_due(sent: CustodyTransfer) -> bool:
    since = sent.signed_at or sent.created_at
    return timezone.now() - since >= timedelta(seconds=settings.CUSTODY_GAS_BUMP_SECONDS)


@transaction.atomic
def _sign_replacement(w3: Web3, sent: CustodyTransfer) -> CustodyTransfer:
    sent = CustodyTransfer.objects.select_for_update().get(pk=sent.pk)
    if sent.status not in (CustodyTransfer.Status.SIGNED, CustodyTransfer.Status.BROADCAST) or not _bump_due(sent):
        return sent  # another worker replaced it, or it is settled
    current = sent.gas_price or _pending_gas_price(w3, sent)
    price = max(int(w3.eth.gas_price), current + max(1, -(-current * settings.CUSTODY_GAS_BUMP_PERCENT // 100)))
    cap = settings.CUSTODY_GAS_PRICE_CAP_WEI
    detail = {"order_id": sent.order_id, "transfer_id": sent.pk, "nonce": sent.nonce, "gas_price": current}
    if cap and price > cap:
        if current >= cap:
            _alert(
                "custody_gas_cap",
                f"custody transfer of order {sent.order_id} (nonce {sent.nonce}) is still pending at the gas price "
                f"cap {cap} wei; every later custody transfer waits behind it (docs/runbook.md)",
                dedup=f"custody-gas-cap:t{sent.pk}",
                detail=detail,
            )
            return sent
        price = cap
    # The version being replaced stays on record: it can still be the one that mines.
    CustodyTransferVersion.objects.get_or_create(
        tx_hash=sent.tx_hash, defaults={"transfer": sent, "raw_tx": sent.raw_tx, "gas_price": current}
    )
    signed = _sign(w3, sent.order.funding_asset, sent.to_address, sent.amount, sent.nonce, price)
    CustodyTransferVersion.objects.create(transfer=sent, tx_hash=signed.tx_hash, raw_tx=signed.raw_tx, gas_price=price)
    sent.tx_hash, sent.raw_tx, sent.gas_price, sent.signed_at = signed.tx_hash, signed.raw_tx, price, timezone.now()
    sent.save(update_fields=["tx_hash", "raw_tx", "gas_price", "signed_at"])
    _alert(
        "custody_transfer_stuck",
        f"custody transfer of order {sent.order_id} (nonce {sent.nonce}) was pending for "
        f"{settings.CUSTODY_GAS_BUMP_SECONDS}s; replaced at gas price {price} wei",
        dedup=f"custody-stuck:t{sent.pk}",
        detail={**detail, "gas_price": price, "replaced": current},
        warning=True,
    )
    return sent


def _pending_gas_price(w3: Web3, sent: CustodyTransfer) -> int:
    # A transfer signed before gas prices were stored: the price the chain knows it at.
    try:
        return int(w3.eth.get_transaction(HexStr(sent.tx_hash)).get("gasPrice", 0))
    except TransactionNotFound:
        return 0


def mm_order_track_deposit(*, order_id: int) -> MMOrder:
    """Advance an order whose funds are on their way to the exchange; idempotent, safe to run concurrently."""
    w3 = get_web3()
    order = MMOrder.objects.get(pk=order_id)
    sent = CustodyTransfer.objects.filter(order=order, direction="to_exchange").first()
    if sent is None or sent.status == CustodyTransfer.Status.PARKED:
        return order
    if order.state == mm.State.FUNDING:
        return _broadcast(w3, sent)  # signed but the broadcast never happened (crash): send the same tx again
    if order.state == mm.State.WITHDRAWING_TO_EXCHANGE:
        found = _mined_version(w3, sent)
        if found is None:
            if not _nonce_used(w3, sent):
                _keep_moving(w3, sent)
                return order
            found = _mined_version(w3, sent)  # one of ours may have mined between the two reads
            if found is None:
                _park(sent)
                return order
        tx_hash, receipt = found
        sent = _adopt(sent, tx_hash)
        if receipt["status"] != 1:
            CustodyTransfer.objects.filter(pk=sent.pk).update(status=CustodyTransfer.Status.REVERTED)
            back = transfer(
                f"o{order_id}-deposit-reverted",
                "reversal",
                asset=order.funding_asset,
                amount=sent.amount,
                source=f"transit:o{order_id}",
                target="custody",
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
        Alert.objects.filter(
            dedup_key__in=[f"custody-stuck:t{sent.pk}", f"custody-gas-cap:t{sent.pk}"], resolved_at__isnull=True
        ).update(resolved_at=timezone.now())
        order = services.mm_order_transition(
            order_id=order_id,
            event=mm.Event.TRANSFER_MINED,
            key=f"o{order_id}-transfer-mined",
            detail={"block": receipt["blockNumber"], "tx_hash": sent.tx_hash},
        )
        sent.refresh_from_db()
    if order.state == mm.State.DEPOSIT_CONFIRMING:
        confirmations = w3.eth.block_number - int(sent.block_number or 0) + 1
        if confirmations < settings.CHAIN_CONFIRMATIONS or not _credited_by_exchange(order, sent):
            return order
        arrive = transfer(
            f"o{order_id}-deposit-credited",
            "deposit_credit",
            asset=order.funding_asset,
            amount=sent.amount,
            source=f"transit:o{order_id}",
            target=f"exchange:a{order.exchange_account_id}:free",
        )
        order = services.mm_order_transition(
            order_id=order_id,
            event=mm.Event.DEPOSIT_CONFIRMED,
            key=f"o{order_id}-deposit-confirmed",
            ledger=[arrive],
            detail={"tx_hash": sent.tx_hash, "confirmations": confirmations},
        )
    return order


def _credited_by_exchange(order: MMOrder, sent: CustodyTransfer) -> bool:
    account = order.exchange_account
    client = exchange_client(account.exchange, credentials=services.exchange_account_credentials(account=account))
    _, decimals = custody_asset(order.funding_asset)
    try:
        deposits = client.fetch_deposits(order.funding_asset)
    except TRANSIENT:
        return False  # try again on the next beat
    # ccxt reports amounts as floats: compared in base units at the precision a float carries (ADR 0013).
    return any(
        str(d.get("txid", "")).lower() == sent.tx_hash
        and d.get("status") == "ok"
        and same_amount(d.get("amount"), sent.amount, decimals)
        for d in deposits
    )


# --- return leg: exchange → custody --------------------------------------------------------------------------


def _client_for(account: ExchangeAccount) -> Any:
    return exchange_client(account.exchange, credentials=services.exchange_account_credentials(account=account))


def mm_order_withdraw_back(*, order_id: int, treasury_account_id: int) -> MMOrder:
    """Bring a stopped order's funds back to custody with the operator's treasury key (trading keys cannot
    withdraw): every asset the order holds on the exchange by its own ledger entries (the funding asset, and
    what its fills bought). The treasury key must belong to the very exchange account the order traded on:
    both keys must be given the same deposit address. Safe to call again: each withdrawal is recorded before the
    exchange is asked, under a client id the exchange deduplicates."""
    from execution.jobs import order_holdings

    order = MMOrder.objects.select_related("exchange_account").get(pk=order_id)
    if order.state != mm.State.STOPPING:
        return order
    if order.job_id:
        raise OrderRejected(f"order {order_id} still has job {order.job_id}; its orders must be cancelled first")
    treasury = ExchangeAccount.objects.filter(pk=treasury_account_id, owner_id=order.owner_id).first()
    if treasury is None:
        raise NotFound(f"no exchange account {treasury_account_id} of this order's owner")
    if treasury.role != ExchangeAccount.Role.TREASURY or treasury.status != ExchangeAccount.Status.ACTIVE:
        raise OrderRejected(f"exchange account {treasury.pk} is not an active treasury account")
    trading = order.exchange_account
    holdings = order_holdings(order)
    for asset in holdings:
        custody_asset(asset)  # every asset must have a way home before anything is withdrawn
    probe = order.funding_asset
    with exchange_call(trading.exchange, "the deposit addresses of both keys"):
        same = (
            treasury.exchange == trading.exchange
            and _client_for(treasury).fetch_deposit_address(probe)["address"]
            == _client_for(trading).fetch_deposit_address(probe)["address"]
        )
    if not same:
        raise OrderRejected("the treasury key belongs to another exchange account than the order's")
    custody = Account.from_key(settings.CUSTODY_PRIVATE_KEY).address
    ledger = []
    for asset, units in sorted(holdings.items()):
        if units <= 0:
            continue
        withdrawal, _ = ExchangeWithdrawal.objects.get_or_create(
            order=order,
            asset=asset,
            defaults={
                "treasury_account": treasury,
                "client_id": f"mmo{order.pk}back{asset}",
                "amount": units,
                "to_address": custody.lower(),
            },
        )
        _, decimals = custody_asset(asset)
        amount = from_units(withdrawal.amount, decimals)
        try:
            with exchange_call(trading.exchange, "the withdrawal"):
                result = _client_for(treasury).withdraw(
                    asset,
                    format(amount, "f"),  # a decimal string: ccxt formats it to the currency precision, no float
                    Web3.to_checksum_address(withdrawal.to_address),
                    {"withdrawOrderId": withdrawal.client_id},
                )
        except ccxt.InsufficientFunds:
            raise OrderRejected(f"the exchange account does not hold {amount} {asset} to withdraw") from None
        ExchangeWithdrawal.objects.filter(pk=withdrawal.pk).update(exchange_id=str(result.get("id") or ""))
        ledger.append(
            transfer(
                f"o{order_id}-withdraw-requested-{asset}",
                "withdraw_debit",
                asset=asset,
                amount=withdrawal.amount,
                source=f"exchange:a{trading.pk}:free",
                target=f"transit:o{order_id}",
            )
        )
    return services.mm_order_transition(
        order_id=order_id,
        event=mm.Event.ORDERS_SETTLED,
        key=f"o{order_id}-orders-settled",
        ledger=ledger,
        detail={"withdrawals": sorted(w.client_id for w in order.withdrawals.all())},
    )


def mm_order_track_withdrawal(*, order_id: int) -> MMOrder:
    """Settle once the exchange reports every withdrawal of the order done and the chain shows each confirmed;
    a failed withdrawal puts its funds back on the exchange and fails the order (funds located, nothing lost)."""
    order = MMOrder.objects.get(pk=order_id)
    withdrawals = list(ExchangeWithdrawal.objects.filter(order=order).order_by("asset"))
    if order.state != mm.State.WITHDRAWING_BACK or not withdrawals:
        return order
    done: list[tuple[ExchangeWithdrawal, str, int]] = []
    for withdrawal in withdrawals:
        outcome = _withdrawal_outcome(withdrawal)
        if outcome is None:
            return order  # not there yet: the next beat looks again
        if outcome == "failed":
            ExchangeWithdrawal.objects.filter(pk=withdrawal.pk).update(status=ExchangeWithdrawal.Status.FAILED)
            back = transfer(
                f"o{order_id}-withdraw-failed-{withdrawal.asset}",
                "reversal",
                asset=withdrawal.asset,
                amount=withdrawal.amount,
                source=f"transit:o{order_id}",
                target=f"exchange:a{order.exchange_account_id}:free",
            )
            return services.mm_order_transition(
                order_id=order_id,
                event=mm.Event.FAIL,
                key=f"o{order_id}-withdraw-failed",
                ledger=[back],
                detail={"reason": f"the exchange failed withdrawal {withdrawal.client_id}"},
            )
        tx_hash, fee = outcome.split("|")[0], int(outcome.split("|")[1])
        done.append((withdrawal, tx_hash, fee))
    postings = []
    for withdrawal, tx_hash, fee in done:
        ExchangeWithdrawal.objects.filter(pk=withdrawal.pk).update(
            status=ExchangeWithdrawal.Status.COMPLETED, tx_hash=tx_hash, fee=fee
        )
        if withdrawal.amount - fee > 0:
            postings.append(
                transfer(
                    f"o{order_id}-withdraw-arrived-{withdrawal.asset}",
                    "deposit_credit",
                    asset=withdrawal.asset,
                    amount=withdrawal.amount - fee,
                    source=f"transit:o{order_id}",
                    target="custody",
                )
            )
        if fee:
            postings.append(
                transfer(
                    f"o{order_id}-withdraw-fee-{withdrawal.asset}",
                    "fee_debit",
                    asset=withdrawal.asset,
                    amount=fee,
                    source=f"transit:o{order_id}",
                    target="external:fees",
                )
            )
    return services.mm_order_transition(
        order_id=order_id,
        event=mm.Event.WITHDRAWAL_ARRIVED,
        key=f"o{order_id}-withdrawal-arrived",
        ledger=postings,
        detail={"tx_hashes": [t for _, t, _ in done], "fees": {w.asset: f for w, _, f in done}},
    )


def _withdrawal_outcome(withdrawal: ExchangeWithdrawal) -> str | None:
    """None while pending; "failed"; or "<tx hash>|<fee in base units>" once done and confirmed on chain."""
    client = _client_for(withdrawal.treasury_account)
    try:
        rows = client.fetch_withdrawals(withdrawal.asset, params={"withdrawOrderId": withdrawal.client_id})
    except TRANSIENT:
        return None
    row = next(
        (
            r
            for r in rows
            if str(r.get("id")) == withdrawal.exchange_id
            or r.get("info", {}).get("withdrawOrderId") == withdrawal.client_id
        ),
        None,
    )
    if row is None or row.get("status") == "pending":
        return None
    if row.get("status") in ("failed", "canceled"):
        return "failed"
    tx_hash = str(row.get("txid") or "").lower()
    if row.get("status") != "ok" or not tx_hash:
        return None
    w3 = get_web3()
    try:
        receipt = w3.eth.get_transaction_receipt(HexStr(tx_hash))
    except TransactionNotFound:
        return None
    if receipt["status"] != 1 or w3.eth.block_number - receipt["blockNumber"] + 1 < settings.CHAIN_CONFIRMATIONS:
        return None
    _, decimals = custody_asset(withdrawal.asset)
    fee = units_up((row.get("fee") or {}).get("cost") or 0, decimals)  # a fee we pay: never under-booked
    return f"{tx_hash}|{fee}"
