"""The funds flow of an MM order, outbound leg: custody wallet → exchange deposit address → confirmed (ADR 0006).

- `mm_order_create` checks everything that can be checked before any money moves (account usable for trading,
  market listed, asset configured, amount above the exchange's minimum) and creates nothing on bad input.
- `mm_order_fund` reserves nothing implicitly: it applies `fund`, signs the ERC-20 transfer to the account's
  deposit address (asked of the exchange through ccxt), **stores the signed transaction**, and only then
  broadcasts it and applies `transfer_sent` with the ledger move custody → transit. A crash anywhere leaves
  either nothing signed (safe to redo) or a stored transaction that a retry rebroadcasts unchanged.
- `mm_order_track_deposit` (beat) applies `transfer_mined` once the receipt exists, and `deposit_confirmed`
  only when the exchange's deposit history shows **this** transaction hash credited for the amount **and** the
  chain shows `CHAIN_CONFIRMATIONS` blocks on it — never a balance threshold that other funds could satisfy.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt
from django.conf import settings
from django.db import transaction
from eth_account import Account
from eth_typing import ChecksumAddress, HexStr
from web3 import Web3
from web3.exceptions import TransactionNotFound
from web3.types import Nonce, TxParams

from contracts import load_artifact
from execution import selectors, services
from execution.domain import mm_order as mm
from execution.domain.ledger import transfer
from execution.errors import ExchangeUnavailable, ExecutionError, LedgerOverdraft
from execution.exchanges import TRANSIENT, exchange_call, exchange_client, exchange_market
from execution.models import CustodyNonce, CustodyTransfer, ExchangeAccount, ExchangeWithdrawal, MMOrder
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
    amount = Decimal(funding_amount) / (Decimal(10) ** decimals)
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


def mm_order_fund(*, order_id: int) -> MMOrder:
    """Move the order's funds toward the exchange. Safe to call again: it continues where it stopped."""
    w3 = get_web3()
    with context.bound(order_id=order_id):
        order = MMOrder.objects.get(pk=order_id)
        if order.state == mm.State.CREATED:
            order = services.mm_order_transition(order_id=order_id, event=mm.Event.FUND, key=f"o{order_id}-fund")
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
    # Nothing is signed unless the ledger shows the custody balance (reserved by other orders included).
    available = selectors.ledger_balance(account=f"custody:{order.funding_asset}")
    if available < order.funding_amount:
        raise LedgerOverdraft(
            f"custody holds {available} base units of {order.funding_asset}, the order needs {order.funding_amount}",
            extra={"account": f"custody:{order.funding_asset}", "short": order.funding_amount - available},
        )
    to = _deposit_address(order.exchange_account, order.funding_asset)
    token = w3.eth.contract(address=token_address, abi=ERC20_ABI)
    params: TxParams = {
        "from": custody.address,
        "nonce": Nonce(_allocate_nonce(w3, custody.address)),
        "chainId": w3.eth.chain_id,
        "gas": 100_000,
        "gasPrice": w3.eth.gas_price,
    }
    tx = token.functions.transfer(to, order.funding_amount).build_transaction(params)
    signed = custody.sign_transaction(tx)
    return CustodyTransfer.objects.create(
        order=order,
        chain_id=w3.eth.chain_id,
        token=token_address.lower(),
        from_address=custody.address.lower(),
        to_address=to.lower(),
        amount=order.funding_amount,
        nonce=tx["nonce"],
        tx_hash="0x" + signed.hash.hex(),
        raw_tx="0x" + signed.raw_transaction.hex(),
    )


def _broadcast(w3: Web3, sent: CustodyTransfer) -> MMOrder:
    if sent.status == CustodyTransfer.Status.SIGNED:
        try:
            w3.eth.send_raw_transaction(HexStr(sent.raw_tx))
        except Exception as exc:  # "already known" / "nonce too low": fine when the chain has this very tx
            if not _known(w3, sent.tx_hash):
                raise ExchangeUnavailable(f"the chain refused the custody transfer ({type(exc).__name__})") from None
        CustodyTransfer.objects.filter(pk=sent.pk, status=CustodyTransfer.Status.SIGNED).update(
            status=CustodyTransfer.Status.BROADCAST
        )
    move = transfer(
        f"o{sent.order_id}-deposit-sent",
        "withdraw_debit",
        asset=sent.order.funding_asset,
        amount=sent.amount,
        source="custody",
        target=f"transit:o{sent.order_id}",
    )
    return services.mm_order_transition(
        order_id=sent.order_id,
        event=mm.Event.TRANSFER_SENT,
        key=f"o{sent.order_id}-transfer-sent",
        ledger=[move],
        detail={"tx_hash": sent.tx_hash, "to": sent.to_address},
    )


def _known(w3: Web3, tx_hash: str) -> bool:
    try:
        w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
    except TransactionNotFound:
        return False
    return True


def mm_order_track_deposit(*, order_id: int) -> MMOrder:
    """Advance an order whose funds are on their way to the exchange; idempotent, safe to run concurrently."""
    w3 = get_web3()
    order = MMOrder.objects.get(pk=order_id)
    sent = CustodyTransfer.objects.filter(order=order, direction="to_exchange").first()
    if sent is None:
        return order
    if order.state == mm.State.FUNDING:
        return _broadcast(w3, sent)  # signed but the broadcast never happened (crash): send the same tx again
    if order.state == mm.State.WITHDRAWING_TO_EXCHANGE:
        try:
            receipt = w3.eth.get_transaction_receipt(sent.tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            w3.eth.send_raw_transaction(HexStr(sent.raw_tx))  # dropped from the mempool: the same tx again
            return order
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
        order = services.mm_order_transition(
            order_id=order_id,
            event=mm.Event.TRANSFER_MINED,
            key=f"o{order_id}-transfer-mined",
            detail={"block": receipt["blockNumber"]},
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
    expected = Decimal(sent.amount) / (Decimal(10) ** decimals)
    try:
        deposits = client.fetch_deposits(order.funding_asset)
    except TRANSIENT:
        return False  # try again on the next beat
    return any(
        str(d.get("txid", "")).lower() == sent.tx_hash
        and d.get("status") == "ok"
        and Decimal(str(d.get("amount"))) == expected
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
    custody = custody_wallet_address()
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
        amount = Decimal(withdrawal.amount) / (Decimal(10) ** decimals)
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
    fee = int(Decimal(str((row.get("fee") or {}).get("cost") or 0)) * (Decimal(10) ** decimals))
    return f"{tx_hash}|{fee}"
