"""Reconciliation: the ledger against the exchanges and the chain (seed 2.1; Mr.Market's own design pauses on
mismatch). What the ledger says an exchange account or the custody wallet holds must be what the exchange or
the chain says; a difference raises one open alert per fact and pauses every running order of that account,
because trading on numbers we cannot explain is how money is lost.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from eth_account import Account
from web3 import Web3

from contracts import load_artifact
from execution import selectors, services
from execution.domain import mm_order as mm
from execution.domain.units import units_down
from execution.errors import InvalidOrderTransition
from execution.exchanges import exchange_call, exchange_client
from execution.funds import asset_decimals
from execution.models import Alert, ExchangeAccount, MMOrder
from mrmarket.chain import get_web3
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


def reconcile_exchange_account(*, account_id: int) -> list[Mismatch]:
    account = ExchangeAccount.objects.get(pk=account_id)
    if MMOrder.objects.filter(exchange_account=account).exclude(job_id="").exists():
        # While a job trades, its signed reports are the account's record; they are booked as they arrive and
        # the account is reconciled again once the job is released (docs/runbook.md).
        return []
    client = exchange_client(account.exchange, credentials=services.exchange_account_credentials(account=account))
    with exchange_call(account.exchange, "its balances"):
        balance = client.fetch_balance()
    expected: dict[str, int] = defaultdict(int)
    for ledger_account, amount in selectors.ledger_balances(prefix=f"exchange:a{account.pk}:").items():
        expected[ledger_account.rsplit(":", 1)[1]] += amount
    actual = {asset: _to_units(v, asset) for asset, v in (balance.get("total") or {}).items() if v}
    dust = _rounding_dust(account)
    mismatches = [
        Mismatch(f"exchange:a{account.pk}", asset, expected.get(asset, 0), actual.get(asset, 0))
        for asset in sorted(set(expected) | set(actual))
        if not 0 <= actual.get(asset, 0) - expected.get(asset, 0) <= dust.get(asset, 0)
    ]
    for mismatch in mismatches:
        _raise_alert(mismatch)
    if mismatches:
        _pause_running_orders(account)
    return mismatches


def _rounding_dust(account: ExchangeAccount) -> dict[str, int]:
    """Fills and fees booked rounded (the exchange keeps finer balances than a token's base unit) leave up to
    one base unit each on the exchange that the ledger does not claim: tolerated, never the other way."""
    from execution.models import LedgerPosting

    dust: dict[str, int] = defaultdict(int)
    rows = LedgerPosting.objects.filter(
        transaction__memo="rounded", account__startswith=f"exchange:a{account.pk}:"
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
            for account, amount in selectors.ledger_balances(prefix="custody:").items()
            if account.endswith(f":{asset}")
        )
        if actual != ledger:
            mismatches.append(Mismatch("custody", asset, ledger, actual))
    for mismatch in mismatches:
        _raise_alert(mismatch)
    return mismatches


def _raise_alert(m: Mismatch) -> None:
    try:
        with transaction.atomic():
            Alert.objects.create(
                kind="reconciliation_mismatch",
                message=m.message,
                detail={"scope": m.scope, "asset": m.asset, "ledger": str(m.ledger), "actual": str(m.actual)},
                dedup_key=f"recon:{m.scope}:{m.asset}",
            )
    except IntegrityError:
        return  # already open for this fact
    log.error("reconciliation_mismatch", scope=m.scope, asset=m.asset, ledger=str(m.ledger), actual=str(m.actual))


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
