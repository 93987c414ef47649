"""Reconciliation: the ledger against the exchanges and the chain. What the ledger says an exchange account or the
custody wallet holds must be what the exchange or the chain says; a difference raises one open alert per fact and
pauses every running order of that account, because trading on numbers we cannot explain is how money is lost.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import ccxt
from django.conf import settings
from django.db.models import Q
from eth_account import Account
from web3 import Web3

from contracts import load_artifact
from execution import accounts, selectors, services
from execution.alerts import Finding, Severity, alert_rule_apply
from execution.domain import mm_order as mm
from execution.domain import withdrawal as wd
from execution.domain.ledger import CUSTODY, exchange_scope, in_transit
from execution.domain.units import units_down
from execution.errors import ExecutionError, InvalidOrderTransition
from execution.funds import asset_decimals
from execution.models import ExchangeAccount, ExchangeWithdrawal, LedgerPosting, MMOrder
from mrmarket.chain import get_web3
from mrmarket.exchanges.client import exchange_call
from mrmarket.exchanges.errors import ExchangeError
from mrmarket.observability.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Mismatch:
    scope: str  # "exchange:a<id>" or "custody"
    asset: str
    ledger: int  # base units
    actual: int

    @property
    def message(self) -> str:
        return f"{self.scope} {self.asset}: the ledger says {self.ledger}, the outside world says {self.actual}"


def _to_units(amount: object, asset: str) -> int:
    return units_down(amount, asset_decimals(asset))  # what an account holds: never more than is there (ADR 0013)


def reconcile_exchange_accounts() -> list[Mismatch]:
    """Every exchange account behind the active keys. An operator's trading and treasury keys are two rows here
    but one account on the exchange, with one balance, which the ledger books under the key the order trades
    with: reconciling each key on its own compares the treasury key's empty ledger with the account's whole
    balance, a false alert that pauses a healthy order."""
    mismatches: list[Mismatch] = []
    for members, balance in _venues():
        mismatches += _reconcile_venue(members, balance)
    return mismatches


def reconcile_exchange_account(*, account_id: int) -> list[Mismatch]:
    """The exchange account behind one key, with every other active key that opens the same account."""
    for members, balance in _venues():
        if any(k.pk == account_id for k in members):
            return _reconcile_venue(members, balance)
    return []


def _venues() -> list[tuple[list[ExchangeAccount], dict[str, Any]]]:
    """Active keys grouped by the account they open on their exchange, with that account's balances."""
    venues: dict[tuple[str, str], list[ExchangeAccount]] = defaultdict(list)
    balances: dict[tuple[str, str], dict[str, Any]] = {}
    unanswered: set[str] = set()
    for key in ExchangeAccount.objects.filter(status=ExchangeAccount.Status.ACTIVE).order_by("pk"):
        try:
            client = accounts.exchange_account_client(account=key)
            with exchange_call(key.exchange, "its balances"):
                balance = client.fetch_balance()
                venue = (key.exchange, _venue_identity(key, client, balance))
        except (ExchangeError, ExecutionError) as exc:  # exchange down, credentials refused (alerted): typed
            # The key's account is unknown, so no account of that exchange is compared this pass (a sibling key
            # compared without it would show a false mismatch); the other exchanges are.
            log.warning("reconciliation_skipped", exchange=key.exchange, account_id=key.pk, code=exc.code)
            unanswered.add(key.exchange)
            continue
        venues[venue].append(key)
        balances.setdefault(venue, balance)
    return [(members, balances[venue]) for venue, members in venues.items() if venue[0] not in unanswered]


def _venue_identity(key: ExchangeAccount, client: Any, balance: dict[str, Any]) -> str:
    """Which account on the exchange a key opens: the account id the exchange reports with the balances
    (Binance's `uid`), else the deposit address it gives for a custody asset (what two keys of one account share,
    as the withdrawal check uses), else the key itself."""
    info = balance.get("info")
    uid = info.get("uid") if isinstance(info, dict) else None
    if uid not in (None, ""):
        return f"uid:{uid}"
    for asset in sorted(settings.CUSTODY_ASSETS):
        try:
            address = client.fetch_deposit_address(asset).get("address")
        except ccxt.NotSupported:
            break
        except ccxt.BadRequest:
            continue  # the exchange does not list this asset
        if address:
            return f"deposit:{str(address).lower()}"
    return f"key:{key.pk}"


def _reconcile_venue(members: list[ExchangeAccount], balance: dict[str, Any]) -> list[Mismatch]:
    if MMOrder.objects.filter(exchange_account__in=members).exclude(job_id="").exists():
        # While a job trades, its signed reports are the account's record; they are booked as they arrive and
        # the account is reconciled again once the job is released (docs/runbook.md).
        return []
    expected: dict[str, int] = defaultdict(int)
    surplus_ok: dict[str, int] = defaultdict(int)  # the exchange may hold this much more than the ledger says
    shortfall_ok: dict[str, int] = defaultdict(int)  # …or this much less
    for key in members:
        for ledger_account, amount in selectors.ledger_balances(prefix=f"{exchange_scope(key.pk)}:").items():
            expected[ledger_account.rsplit(":", 1)[1]] += amount
        for asset, units in _rounding_dust(key).items():
            surplus_ok[asset] += units
        _add_in_flight(key, surplus_ok, shortfall_ok)
    actual = {asset: _to_units(v, asset) for asset, v in (balance.get("total") or {}).items() if v}
    # The scope names the key the account's orders trade with (whose ledger accounts these are), so that an
    # alert reads the same whichever key answered first.
    trading = [k for k in members if k.role != ExchangeAccount.Role.TREASURY] or members
    scope = exchange_scope(trading[0].pk)
    mismatches = [
        Mismatch(scope, asset, expected.get(asset, 0), actual.get(asset, 0))
        for asset in sorted(set(expected) | set(actual))
        if not -shortfall_ok.get(asset, 0) <= actual.get(asset, 0) - expected.get(asset, 0) <= surplus_ok.get(asset, 0)
    ]
    # The alerts of this account are exactly its mismatches now: one that no longer differs clears (the orders it
    # paused stay paused: resuming is the operator's decision).
    _apply_alerts(scope, mismatches, owner_id=trading[0].owner_id)
    if mismatches:
        for key in members:
            _pause_running_orders(key)
    return mismatches


def _add_in_flight(key: ExchangeAccount, surplus_ok: dict[str, int], shortfall_ok: dict[str, int]) -> None:
    """Funds between the ledger's steps: a deposit the exchange credited before the order's confirmation booked
    it (still in transit on the ledger), a failed withdrawal refunded before it is booked back, and a
    withdrawal the exchange debited before the order's funds are booked out. Each is one step of an order in
    flight; tolerated only up to that order's own amount, and gone once the step is booked."""
    inbound = (mm.State.WITHDRAWING_TO_EXCHANGE, mm.State.DEPOSIT_CONFIRMING, mm.State.WITHDRAWING_BACK)
    for order_id in MMOrder.objects.filter(exchange_account=key, state__in=inbound).values_list("pk", flat=True):
        for ledger_account, amount in selectors.ledger_balances(prefix=f"{in_transit(order_id)}:").items():
            surplus_ok[ledger_account.rsplit(":", 1)[1]] += max(amount, 0)
    # Only a request the exchange may have taken before its answer reached us: a sent row is already booked
    # out of the ledger, and a confirmed or failed one is booked either way.
    for asset, amount in ExchangeWithdrawal.objects.filter(
        order__exchange_account=key, order__state=mm.State.STOPPING, status=wd.State.REQUESTING, sends__gt=0
    ).values_list("asset", "amount"):
        shortfall_ok[asset] += int(amount)


def _rounding_dust(account: ExchangeAccount) -> dict[str, int]:
    """Fills and fees booked rounded (the exchange keeps finer balances than a token's base unit) leave up to
    one base unit each on the exchange that the ledger does not claim: tolerated, never the other way."""
    dust: dict[str, int] = defaultdict(int)
    rows = LedgerPosting.objects.filter(
        transaction__memo="rounded", account__startswith=f"{exchange_scope(account.pk)}:"
    ).values_list("asset", flat=True)
    for asset in rows:
        dust[asset] += 1
    return dust


def reconcile_custody() -> list[Mismatch]:
    if not settings.CUSTODY_ASSETS or not settings.CUSTODY_PRIVATE_KEY:
        return []
    w3 = get_web3()
    custody = Account.from_key(settings.CUSTODY_PRIVATE_KEY).address
    abi = load_artifact("DevToken").abi  # the standard ERC-20 balanceOf
    mismatches = []
    for asset, spec in sorted(settings.CUSTODY_ASSETS.items()):
        onchain = w3.eth.contract(address=Web3.to_checksum_address(str(spec["token"])), abi=abi)
        actual = int(onchain.functions.balanceOf(custody).call())
        # The wallet still holds what is reserved for orders whose transfers are not booked as sent yet.
        ledger = sum(
            amount
            for account, amount in selectors.ledger_balances(prefix=f"{CUSTODY}:").items()
            if account.endswith(f":{asset}")
        )
        if actual != ledger:
            mismatches.append(Mismatch(CUSTODY, asset, ledger, actual))
    _apply_alerts(CUSTODY, mismatches, owner_id=None)
    return mismatches


RECONCILIATION_MISMATCH = "reconciliation_mismatch"


def _apply_alerts(scope: str, mismatches: list[Mismatch], *, owner_id: int | None) -> None:
    """One open alert per mismatched asset of a scope, for the operator whose key it is (none for custody); the
    scope's other open mismatch alerts are resolved, their difference gone."""
    findings = [
        Finding(
            kind=RECONCILIATION_MISMATCH,
            dedup=f"recon:{m.scope}:{m.asset}",
            message=m.message,
            detail={"scope": m.scope, "asset": m.asset, "ledger": str(m.ledger), "actual": str(m.actual)},
            severity=Severity.CRITICAL,
            owner_id=owner_id,
        )
        for m in mismatches
    ]
    alert_rule_apply(
        kinds=[RECONCILIATION_MISMATCH], findings=findings, scope=Q(dedup_key__startswith=f"recon:{scope}:")
    )


def _pause_running_orders(account: ExchangeAccount) -> None:
    for order_id in MMOrder.objects.filter(exchange_account=account, state=mm.State.RUNNING).values_list(
        "pk", flat=True
    ):
        try:
            services.mm_order_transition(
                order_id=order_id,
                event=mm.Event.PAUSE,
                key=f"o{order_id}-pause-reconciliation",
                detail={"reason": "reconciliation mismatch"},
            )
        except InvalidOrderTransition:
            continue  # moved on meanwhile
