"""One withdrawal of the return leg on the exchange (ADR 0014): asked for at most once per proven-lost request
(`requesting → sent`, or `failed` when refused), then tracked until the exchange reports it done and the chain
confirms it (`confirmed`), or failed (booked back onto the exchange account). Each transition is applied with
its ledger moves (`withdrawal.withdrawal_moves`) under the order's row lock, then the withdrawal's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ccxt
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from eth_typing import HexStr
from web3 import Web3
from web3.exceptions import TransactionNotFound

from execution import accounts, services
from execution.domain import withdrawal as wd
from execution.domain.units import from_units, reported_units, units_up
from execution.errors import WithdrawalRefused
from execution.funds import custody_asset
from execution.models import ExchangeWithdrawal, MMOrder
from mrmarket.chain import get_web3
from mrmarket.exchanges.client import TRANSIENT, exchange_call
from mrmarket.observability import context
from mrmarket.observability.logging import get_logger

log = get_logger(__name__)

# Exchanges whose withdraw() takes a client id they deduplicate, by the parameter (and history field) naming it.
# Elsewhere a request whose answer was lost is found in the history by amount, address and time instead.
WITHDRAW_CLIENT_ID_PARAM: dict[str, str] = {"binance": "withdrawOrderId"}
# After this long, a request's absence from the history proves it never landed: Binance refuses a request older
# than its recvWindow (5 s by default, 60 s at most) and lists an accepted one at once.
WITHDRAWAL_LISTING_SECONDS = 90.0
# How far our clock and the exchange's may disagree when a request is matched by its time.
WITHDRAWAL_CLOCK_SKEW_SECONDS = 30


@dataclass(frozen=True)
class WithdrawalOutcome:
    """What the exchange and the chain say of an accepted withdrawal: `event` None while it is on its way."""

    event: wd.Event | None
    tx_hash: str = ""
    fee: int = 0
    reason: str = ""


def withdrawal_advance(*, withdrawal_id: int) -> ExchangeWithdrawal:
    """One step of one withdrawal: ask the exchange (requesting), or look at how a sent one is doing."""
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
    client = accounts.exchange_account_client(account=row.treasury_account)
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
            _alert_withdrawal(row, reason)  # with the failure it reports: a worker dying between them loses neither
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
        # Exact within the token's decimals, which is what exchanges report withdrawals in.
        _, decimals = custody_asset(row.asset)
        amount = reported_units(r.get("amount") or 0, decimals)
        fee = reported_units((r.get("fee") or {}).get("cost") or 0, decimals)
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
            # In the failure's own transaction: once it is committed, nothing else raises this alert (the row is
            # no longer tracked), and the order then fails on it, parked where its funds are.
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


def _withdrawal_outcome(withdrawal: ExchangeWithdrawal) -> WithdrawalOutcome:
    """Pending (no event) until the exchange reports the withdrawal done with its transaction hash and the chain
    confirms that transaction `CHAIN_CONFIRMATIONS` deep; failed when the exchange failed or cancelled it."""
    pending = WithdrawalOutcome(event=None)
    client = accounts.exchange_account_client(account=withdrawal.treasury_account)
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
