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

import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import ccxt
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from eth_account import Account
from eth_typing import ChecksumAddress, HexStr
from web3 import Web3
from web3.exceptions import TransactionNotFound
from web3.types import Nonce, TxParams, TxReceipt, Wei

from contracts import load_artifact
from execution import selectors, services
from execution.domain import mm_order as mm
from execution.domain import withdrawal as wd
from execution.domain.ledger import NON_CUSTODY_DECIMALS, Transaction, transfer
from execution.domain.units import from_units, reported_units, same_amount, units_up
from execution.errors import ExchangeUnavailable, ExecutionError, InvalidOrderTransition, LedgerOverdraft
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
from mrmarket.errors import ApplicationError, NotFound
from mrmarket.observability import context
from mrmarket.observability.logging import get_logger
from wire.errors import StrategyParamError, UnknownStrategy, WireError

log = get_logger(__name__)
ERC20_ABI = load_artifact("DevToken").abi


class OrderRejected(ExecutionError):
    code = "mm_order_rejected"


class CustodyNotConfigured(ExecutionError):
    code = "custody_not_configured"
    status = 503


def custody_wallet_address() -> str:
    """The custody wallet: from its key where this process holds it (worker, beat), else its configured address
    (the production web process never holds the key)."""
    if settings.CUSTODY_PRIVATE_KEY:
        return str(Account.from_key(settings.CUSTODY_PRIVATE_KEY).address)
    return str(settings.CUSTODY_ADDRESS)


def custody_asset(asset: str) -> tuple[ChecksumAddress, int]:
    spec = settings.CUSTODY_ASSETS.get(asset)
    if not spec or not custody_wallet_address():
        raise CustodyNotConfigured(f"the custody wallet does not hold {asset} (CUSTODY_ASSETS, CUSTODY_ADDRESS)")
    return Web3.to_checksum_address(str(spec["token"])), int(str(spec["decimals"]))


def is_custody_asset(asset: str) -> bool:
    return asset in settings.CUSTODY_ASSETS


def asset_decimals(asset: str) -> int:
    """The base-unit scale the ledger books `asset` in: the custody token's decimals, or `NON_CUSTODY_DECIMALS`
    for an asset custody does not hold (a fee paid in BNB, a base bought that custody cannot take home)."""
    spec = settings.CUSTODY_ASSETS.get(asset)
    return int(str(spec["decimals"])) if spec else NON_CUSTODY_DECIMALS


STRATEGY_KEYS = frozenset({"name", "params", "risk", "report_interval_seconds", "sample_seconds"})


def _check_strategy(
    strategy: dict[str, Any] | None, *, exchange: str, symbol: str, funding_asset: str, funding_amount: int
) -> dict[str, Any]:
    """The order's strategy, resolved (defaults and sizes filled in) and checked as the complete job spec it
    becomes, by the same parser the executor runs (`wire.jobs.JobSpec.parse`): a spec the executor would refuse
    is refused here, before the order exists and before any money moves. Returns what the order stores."""
    # Imported here: execution.jobspec imports this module (custody_asset).
    from execution.jobspec import validated_strategy

    if strategy is None:
        strategy = {}
    if not isinstance(strategy, dict):
        raise OrderRejected("strategy must be an object", code="invalid_strategy")
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
    if "name" in strategy and not isinstance(strategy["name"], str):
        raise OrderRejected("strategy.name must be a string", code="invalid_strategy")
    for key in ("report_interval_seconds", "sample_seconds"):
        if key in strategy and (isinstance(strategy[key], bool) or not isinstance(strategy[key], int)):
            raise OrderRejected(f"strategy.{key} must be an integer", code="invalid_strategy")
    try:
        resolved = validated_strategy(
            dict(strategy), exchange=exchange, symbol=symbol, funding_asset=funding_asset, funding_amount=funding_amount
        )
    except WireError as exc:
        # The executor's own codes: unknown_strategy, invalid_strategy_params; the envelope's and risk's schema.
        code = exc.code if isinstance(exc, (UnknownStrategy, StrategyParamError)) else "invalid_job_spec"
        raise OrderRejected(
            f"the job spec would be refused: {exc}", code=code, extra={"path": exc.path, "reason": exc.message}
        ) from None
    return resolved


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
    chosen = _check_strategy(
        strategy, exchange=account.exchange, symbol=symbol, funding_asset=funding_asset, funding_amount=funding_amount
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
            # Checked again (it is, by the credentials service) outside the signing transaction too, so that
            # the alert of a row nobody vouched for is not rolled back with it: nothing is signed or sent.
            services.exchange_account_trusted(account=order.exchange_account)
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
    services.alert_raise(
        "custody_nonce_taken",
        f"custody nonce {sent.nonce} of order {sent.order_id} was used by a transaction that is not one of its "
        f"signed versions; the transfer is parked (docs/runbook.md)",
        dedup=f"custody-parked:t{sent.pk}",
        detail={"order_id": sent.order_id, "transfer_id": sent.pk, "nonce": sent.nonce, "tx_hash": sent.tx_hash},
    )


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
    if _mined_version(w3, sent) is not None:
        return sent  # a version mined meanwhile (the tracker adopts it): a replacement could never mine
    current = sent.gas_price or _pending_gas_price(w3, sent)
    price = max(int(w3.eth.gas_price), current + max(1, -(-current * settings.CUSTODY_GAS_BUMP_PERCENT // 100)))
    cap = settings.CUSTODY_GAS_PRICE_CAP_WEI
    detail = {"order_id": sent.order_id, "transfer_id": sent.pk, "nonce": sent.nonce, "gas_price": current}
    if cap and price > cap:
        if current >= cap:
            services.alert_raise(
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
    services.alert_raise(
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
    # Any version of ours counts: the one that mined is the one the exchange credits, whichever the row names.
    ours = {sent.tx_hash, *sent.versions.values_list("tx_hash", flat=True)}
    return any(
        str(d.get("txid", "")).lower() in ours
        and d.get("status") == "ok"
        and same_amount(d.get("amount"), sent.amount, decimals)
        for d in deposits
    )


# --- return leg: exchange → custody (ADR 0014) ----------------------------------------------------------------

# Exchanges whose withdraw() takes a client id they deduplicate, by the parameter (and history field) naming it.
# Elsewhere a request whose answer was lost is found in the history by amount, address and time instead.
WITHDRAW_CLIENT_ID_PARAM: dict[str, str] = {"binance": "withdrawOrderId"}
# After this long, a request's absence from the history proves it never landed: Binance refuses a request older
# than its recvWindow (5 s by default, 60 s at most) and lists an accepted one at once.
WITHDRAWAL_LISTING_SECONDS = 90.0
# How far our clock and the exchange's may disagree when a request is matched by its time.
WITHDRAWAL_CLOCK_SKEW_SECONDS = 30


class WithdrawalRefused(OrderRejected):
    code = "withdrawal_refused"


@dataclass(frozen=True)
class WithdrawalOutcome:
    """What the exchange and the chain say of an accepted withdrawal: `event` None while it is on its way."""

    event: wd.Event | None
    tx_hash: str = ""
    fee: int = 0
    reason: str = ""


def _client_for(account: ExchangeAccount) -> Any:
    return exchange_client(account.exchange, credentials=services.exchange_account_credentials(account=account))


def _units(value: Any, asset: str) -> int:
    # An amount the exchange reports in decimals, in base units: exact within the token's decimals, which is
    # what exchanges report withdrawals in. Kept in one place so the units module can take it over.
    _, decimals = custody_asset(asset)
    return reported_units(value or 0, decimals)


def homeward(holdings: dict[str, int]) -> dict[str, int]:
    """What of an order's holdings can come home: positive amounts of the assets custody holds. Another asset (a
    fee rebate in BNB, a base custody has no token for) has no address to go to; a negative one (a fee paid from
    a balance the ledger never saw arrive) is nothing to bring back."""
    return {asset: units for asset, units in holdings.items() if units > 0 and is_custody_asset(asset)}


def _note_stranded(order: MMOrder, holdings: dict[str, int]) -> None:
    """Alert once about what stays on the exchange because custody cannot take it: it stays booked to the
    exchange account (reconciliation still counts it) and never blocks the return of the rest."""
    stranded = {a: u for a, u in sorted(holdings.items()) if u > 0 and not is_custody_asset(a)}
    if stranded:
        services.alert_raise(
            "withdrawal_not_possible",
            f"order {order.pk}: custody holds no token for {', '.join(stranded)}; it stays on the exchange account",
            dedup=f"withdrawal-stranded:o{order.pk}:{','.join(stranded)}",
            detail={"order": order.pk, "assets": {a: str(u) for a, u in stranded.items()}},
            warning=True,
        )


def _withdraw_back_refusal(order: MMOrder, treasury_account_id: int) -> ExchangeAccount:
    """What refuses a withdraw-back before any key is opened; the treasury account when nothing does."""
    if order.state not in (mm.State.STOPPING, mm.State.WITHDRAWING_BACK):
        raise InvalidOrderTransition(
            f"order {order.pk} is {order.state}; stop it before withdrawing its funds back",
            extra={"state": order.state},
        )
    if order.job_id:
        raise OrderRejected(f"order {order.pk} still has job {order.job_id}; its orders must be cancelled first")
    treasury = ExchangeAccount.objects.filter(pk=treasury_account_id, owner_id=order.owner_id).first()
    if treasury is None:
        raise NotFound(f"no exchange account {treasury_account_id} of this order's owner")
    if treasury.role != ExchangeAccount.Role.TREASURY or treasury.status != ExchangeAccount.Status.ACTIVE:
        raise OrderRejected(f"exchange account {treasury.pk} is not an active treasury account")
    return treasury


def mm_order_withdraw_back_request(*, order_id: int, treasury_account_id: int) -> MMOrder:
    """Queue a withdraw-back (the API and the admin call this in the web process, which holds no master key to
    open the treasury key with, ADR 0015): what can be refused without the exchange is refused here, typed and
    with nothing queued; the rest runs in a worker (`tasks.withdraw_back`), whose progress shows in the order's
    state and timeline and whose refusals are alerted."""
    from execution import tasks

    order = MMOrder.objects.get(pk=order_id)
    if order.state == mm.State.SETTLED:
        return order  # everything is home already
    _withdraw_back_refusal(order, treasury_account_id)
    transaction.on_commit(lambda: tasks.withdraw_back.delay(order_id, treasury_account_id))
    log.info("withdraw_back_queued", order_id=order_id, treasury_account=treasury_account_id)
    return order


def mm_order_withdraw_back_queued(*, order_id: int, treasury_account_id: int) -> MMOrder | None:
    """Worker: run a queued withdraw-back. The exchange being down propagates (the task retries); any other
    refusal is the operator's to see, who is no longer waiting on the request: alerted, once per order and reason."""
    try:
        return mm_order_withdraw_back(order_id=order_id, treasury_account_id=treasury_account_id)
    except ExchangeUnavailable:
        raise
    except ApplicationError as exc:
        services.alert_raise(
            "withdraw_back_refused",
            f"order {order_id}: withdraw-back refused: {exc.message}",
            dedup=f"withdraw-back:o{order_id}:{exc.code}",
            detail={"order": order_id, "treasury_account": treasury_account_id, "code": exc.code},
        )
        return None


def mm_order_withdraw_back(*, order_id: int, treasury_account_id: int) -> MMOrder:
    """Bring a stopped order's funds back to custody with the operator's treasury key (trading keys cannot
    withdraw): every asset the order holds on the exchange by its own ledger entries (the funding asset, and
    what its fills bought), each as its own withdrawal (ADR 0014). The treasury key must belong to the very
    exchange account the order traded on: both keys must be given the same deposit address.

    Safe to call again and concurrently: under the order's row lock each asset gets one withdrawal in flight,
    recorded before the exchange is asked; assets already sent are not asked again, and one whose answer was
    lost is looked up in the exchange's history first. An asset the exchange refuses raises
    `WithdrawalRefused` after the others were sent and booked; the order stays `stopping` until every asset is
    sent, then tracking settles each on its own."""
    from execution.jobs import order_holdings

    order = MMOrder.objects.select_related("exchange_account").get(pk=order_id)
    if order.state == mm.State.SETTLED:
        return order
    treasury = _withdraw_back_refusal(order, treasury_account_id)
    trading = order.exchange_account
    _note_stranded(order, order_holdings(order))
    probe = order.funding_asset
    with exchange_call(trading.exchange, "the deposit addresses of both keys"):
        same = (
            treasury.exchange == trading.exchange
            and _client_for(treasury).fetch_deposit_address(probe)["address"]
            == _client_for(trading).fetch_deposit_address(probe)["address"]
        )
    if not same:
        raise OrderRejected("the treasury key belongs to another exchange account than the order's")
    custody = custody_wallet_address().lower()
    with transaction.atomic():
        locked = MMOrder.objects.select_for_update().get(pk=order_id)
        if locked.state == mm.State.STOPPING and not locked.job_id:
            in_flight = set(
                ExchangeWithdrawal.objects.filter(order=locked, status__in=list(wd.IN_FLIGHT)).values_list(
                    "asset", flat=True
                )
            )
            for asset, units in sorted(homeward(order_holdings(locked)).items()):
                if asset not in in_flight:
                    ExchangeWithdrawal.objects.create(
                        order=locked,
                        treasury_account=treasury,
                        # Random, so it is never one an exchange already saw (an earlier attempt, another database).
                        client_id=f"mmo{order_id}w{secrets.token_hex(8)}",
                        asset=asset,
                        amount=units,
                        to_address=custody,
                    )
    return _drive_withdrawals(order_id, strict=True)


def mm_order_track_withdrawal(*, order_id: int) -> MMOrder:
    """Beat: advance each withdrawal of the order on its own (a request whose answer was lost is found or sent
    again; a sent one is confirmed or failed), then the order. A failure or an unreachable exchange for one asset
    never holds up another's."""
    return _drive_withdrawals(order_id, strict=False)


def _drive_withdrawals(order_id: int, *, strict: bool) -> MMOrder:
    refused: list[str] = []
    unavailable: list[str] = []
    other: list[ApplicationError] = []
    pending = (
        ExchangeWithdrawal.objects.filter(order_id=order_id, status__in=list(wd.IN_FLIGHT))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for withdrawal_id in list(pending):
        # One asset's trouble is that asset's: the others are still asked, tracked and booked.
        try:
            _advance_withdrawal(withdrawal_id)
        except WithdrawalRefused as exc:
            refused.append(exc.message)
        except ExchangeUnavailable as exc:
            unavailable.append(exc.message)
        except ApplicationError as exc:  # a revoked treasury key, say: typed, and the others go on
            log.warning("withdrawal_stuck", order_id=order_id, withdrawal=withdrawal_id, code=exc.code)
            other.append(exc)
    order = _advance_order(order_id)
    if strict and refused:
        raise WithdrawalRefused("; ".join(refused), extra={"order": order_id, "state": order.state})
    if strict and other:
        raise other[0]
    if strict and unavailable:
        raise ExchangeUnavailable("; ".join(unavailable), extra={"order": order_id, "state": order.state})
    return order


def _advance_withdrawal(withdrawal_id: int) -> ExchangeWithdrawal:
    row = ExchangeWithdrawal.objects.select_related("order", "treasury_account").get(pk=withdrawal_id)
    with context.bound(order_id=row.order_id):
        if row.status == wd.State.REQUESTING:
            return _request(row)
        if row.status == wd.State.SENT:
            return _track(row)
    return row


def _locked(row: ExchangeWithdrawal) -> ExchangeWithdrawal:
    # The order first, then its withdrawal: every writer of the return leg takes the locks in this order.
    MMOrder.objects.select_for_update().get(pk=row.order_id)
    return ExchangeWithdrawal.objects.select_for_update().select_related("order", "treasury_account").get(pk=row.pk)


def _request(row: ExchangeWithdrawal) -> ExchangeWithdrawal:
    """requesting → sent (or failed when refused), asking the exchange at most once per proven-lost request."""
    exchange = row.treasury_account.exchange
    param = WITHDRAW_CLIENT_ID_PARAM.get(exchange)
    client = _client_for(row.treasury_account)
    with transaction.atomic():
        row = _locked(row)
        if row.status != wd.State.REQUESTING:
            return row
        if row.sends:
            found = _find_request(client, row, param)
            if found is not None:
                return _apply(row, wd.Event.ACCEPTED, exchange_id=found)
            assert row.sent_at is not None
            action = wd.requesting_action(
                sends=row.sends,
                seconds_since_send=(timezone.now() - row.sent_at).total_seconds(),
                call_open=row.call_open,
                in_flight_seconds=settings.OUTBOUND_HTTP_TIMEOUT_SECONDS + WITHDRAWAL_CLOCK_SKEW_SECONDS,
                deduplicated=param is not None,
                listing_seconds=WITHDRAWAL_LISTING_SECONDS,
            )
            if action is wd.Action.WAIT:
                return row
        row.sends += 1
        row.sent_at = timezone.now()
        row.call_open = True
        row.save(update_fields=["sends", "sent_at", "call_open", "updated_at"])
    # Committed: from here a crash, a timeout or a lost answer leaves a row that is looked up before any resend.
    _, decimals = custody_asset(row.asset)
    amount = from_units(int(row.amount), decimals)
    try:
        with exchange_call(exchange, "the withdrawal"):
            result = client.withdraw(
                row.asset,
                format(amount, "f"),  # a decimal string: ccxt formats it to the currency precision, no float
                Web3.to_checksum_address(row.to_address),
                {param: row.client_id} if param else {},
            )
    except ccxt.ExchangeError as exc:  # an answer, and it is no: the exchange does not hold this request
        reason = f"the exchange refused to withdraw {amount} {row.asset} ({type(exc).__name__})"
        with transaction.atomic():
            row = _locked(row)
            if row.status == wd.State.REQUESTING:
                row = _apply(row, wd.Event.REFUSED, failure=reason)
        _alert_withdrawal(row, reason)
        raise WithdrawalRefused(reason, extra={"asset": row.asset, "withdrawal": row.client_id}) from None
    finally:
        ExchangeWithdrawal.objects.filter(pk=row.pk, sends=row.sends).update(call_open=False)
    exchange_id = str(result.get("id") or "")
    with transaction.atomic():
        row = _locked(row)
        if row.status == wd.State.REQUESTING and exchange_id:
            row = _apply(row, wd.Event.ACCEPTED, exchange_id=exchange_id)
    return row  # without an id in the answer it stays requesting: the next pass finds it in the history


def _find_request(client: Any, row: ExchangeWithdrawal, param: str | None) -> str | None:
    """The exchange's id of this request if its history lists it: by our client id where the exchange keeps one,
    else the oldest withdrawal no other row claimed, to our address, of our amount (gross or net of the fee),
    made between our first request and the listing window after our last."""
    assert row.sent_at is not None
    skew_ms = WITHDRAWAL_CLOCK_SKEW_SECONDS * 1000
    since_ms = int(row.created_at.timestamp() * 1000) - skew_ms
    with exchange_call(row.treasury_account.exchange, "its withdrawal history"):
        listed = client.fetch_withdrawals(row.asset, since_ms, None, {param: row.client_id} if param else {})
    if param is not None:
        return next((str(r["id"]) for r in listed if (r.get("info") or {}).get(param) == row.client_id), None)
    until_ms = int(row.sent_at.timestamp() * 1000) + int(WITHDRAWAL_LISTING_SECONDS * 1000) + skew_ms
    claimed = set(
        ExchangeWithdrawal.objects.filter(treasury_account__exchange=row.treasury_account.exchange)
        .exclude(pk=row.pk)
        .exclude(exchange_id="")
        .values_list("exchange_id", flat=True)
    )
    for r in sorted(listed, key=lambda r: int(r.get("timestamp") or 0)):
        if str(r.get("id")) in claimed or str(r.get("address") or "").lower() != row.to_address.lower():
            continue
        if not since_ms <= int(r.get("timestamp") or 0) <= until_ms:
            continue
        amount, fee = _units(r.get("amount"), row.asset), _units((r.get("fee") or {}).get("cost"), row.asset)
        if int(row.amount) in (amount, amount + fee):
            return str(r["id"])
    return None


def _track(row: ExchangeWithdrawal) -> ExchangeWithdrawal:
    """sent → confirmed (once done on the exchange and confirmed on chain) or failed (booked back onto it)."""
    outcome = _withdrawal_outcome(row)
    if outcome.event is None:
        return row
    with transaction.atomic():
        row = _locked(row)
        if row.status != wd.State.SENT:
            return row
        row = _apply(row, outcome.event, tx_hash=outcome.tx_hash, fee=outcome.fee, failure=outcome.reason)
    if outcome.event is wd.Event.FAILED:
        _alert_withdrawal(row, outcome.reason)
    return row


def _apply(
    row: ExchangeWithdrawal,
    event: wd.Event,
    *,
    exchange_id: str = "",
    tx_hash: str = "",
    fee: int = 0,
    failure: str = "",
) -> ExchangeWithdrawal:
    """One transition of one withdrawal with its ledger entries, in the caller's transaction (rows locked)."""
    new_state = wd.next_state(wd.State(row.status), event)
    for tx in wd.withdrawal_moves(
        event,
        order_id=row.order_id,
        withdrawal_id=row.pk,
        exchange_account_id=row.order.exchange_account_id,
        asset=row.asset,
        amount=int(row.amount),
        fee=fee,
    ):
        services.ledger_record(tx=tx)
    row.status = new_state.value
    row.exchange_id = exchange_id or row.exchange_id
    row.tx_hash = tx_hash or row.tx_hash
    row.fee = fee or row.fee
    row.failure = failure[:300] or row.failure
    row.save(update_fields=["status", "exchange_id", "tx_hash", "fee", "failure", "updated_at"])
    log.info("withdrawal_transition", withdrawal=row.client_id, asset=row.asset, step=event.value, to=row.status)
    return row


def _alert_withdrawal(row: ExchangeWithdrawal, reason: str) -> None:
    services.alert_raise(
        "withdrawal_failed",
        f"order {row.order_id}: withdrawal of {row.asset} failed ({reason}); its funds stay on the exchange",
        dedup=f"withdrawal:{row.client_id}:failed",
        detail={"order": row.order_id, "asset": row.asset, "withdrawal": row.client_id, "reason": reason},
    )


def _advance_order(order_id: int) -> MMOrder:
    """The order's step on the return leg once its assets allow one (`withdrawal.order_event`), keyed per attempt."""
    from execution.jobs import order_holdings

    with transaction.atomic():
        order = MMOrder.objects.select_for_update().get(pk=order_id)
        if order.job_id:
            return order
        rows = list(ExchangeWithdrawal.objects.filter(order=order).order_by("pk"))
        left = homeward(order_holdings(order))
        event = wd.order_event(
            order_state=mm.State(order.state), assets=[wd.State(r.status) for r in rows], holdings_left=bool(left)
        )
        if event is None:
            return order
        attempt = selectors.mm_order_attempt(order_id=order_id)
        confirmed = [r for r in rows if r.status == wd.State.CONFIRMED]
        detail: dict[str, Any]
        if event is mm.Event.ORDERS_SETTLED:
            step, detail = "orders-settled", {"withdrawals": [r.client_id for r in rows if r.status == wd.State.SENT]}
        elif event is mm.Event.WITHDRAWAL_ARRIVED:
            step = "withdrawal-arrived"
            detail = {"tx_hashes": [r.tx_hash for r in confirmed], "fees": {r.asset: int(r.fee) for r in confirmed}}
        else:
            step = "withdraw-failed"
            detail = {"reason": f"withdrawals failed; still on the exchange: {sorted(left)}", "left": left}
        return services.mm_order_transition(
            order_id=order_id, event=event, key=mm.step_key(order_id, step, attempt), detail=detail
        )


def _withdrawal_outcome(withdrawal: ExchangeWithdrawal) -> WithdrawalOutcome:
    """Pending (no event) until the exchange reports the withdrawal done with its transaction hash and the chain
    confirms that transaction `CHAIN_CONFIRMATIONS` deep; failed when the exchange failed or cancelled it."""
    pending = WithdrawalOutcome(event=None)
    client = _client_for(withdrawal.treasury_account)
    param = WITHDRAW_CLIENT_ID_PARAM.get(withdrawal.treasury_account.exchange)
    since_ms = int(withdrawal.created_at.timestamp() * 1000) - WITHDRAWAL_CLOCK_SKEW_SECONDS * 1000
    try:
        rows = client.fetch_withdrawals(
            withdrawal.asset, since_ms, None, {param: withdrawal.client_id} if param else {}
        )
    except TRANSIENT:
        return pending
    row = next((r for r in rows if str(r.get("id")) == withdrawal.exchange_id), None)
    if row is None or row.get("status") == "pending":
        return pending
    if row.get("status") in ("failed", "canceled"):
        info = str((row.get("info") or {}).get("info") or row.get("status"))
        return WithdrawalOutcome(event=wd.Event.FAILED, reason=f"the exchange reports it {row['status']}: {info}")
    tx_hash = str(row.get("txid") or "").lower()
    if row.get("status") != "ok" or not tx_hash:
        return pending
    w3 = get_web3()
    try:
        receipt = w3.eth.get_transaction_receipt(HexStr(tx_hash))
    except TransactionNotFound:
        return pending
    if receipt["status"] != 1 or w3.eth.block_number - receipt["blockNumber"] + 1 < settings.CHAIN_CONFIRMATIONS:
        return pending
    _, decimals = custody_asset(withdrawal.asset)
    fee = units_up((row.get("fee") or {}).get("cost") or 0, decimals)  # a fee we pay: never under-booked
    return WithdrawalOutcome(event=wd.Event.ARRIVED, tx_hash=tx_hash, fee=fee)
