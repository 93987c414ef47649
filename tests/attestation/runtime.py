"""The runtime configuration a test executor serves with its evidence, and the REPORTDATA that binds it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings

from mrmarket.controller import controller_key
from wire.attestation import report_data, runtime_config, runtime_config_digest


def ours(**bent: Any) -> dict[str, Any]:
    """A runtime configuration Django accepts (its own controller key, its exchange URLs), with `bent` fields."""
    doc = runtime_config(
        controller_key=controller_key().public_hex,
        exchange_api_urls=dict(settings.EXCHANGE_API_URLS),
        quote_provider="easyenclave",
        dev=False,
    )
    return {**doc, **bent}


def bound(nonce: str, keys: dict[str, str], runtime: dict[str, Any] | None = None) -> bytes:
    """REPORTDATA for `nonce`, `keys` (signing_key, sealing_key) and `runtime` (default `ours()`)."""
    doc = ours() if runtime is None else runtime
    return report_data(nonce=nonce, runtime_config_digest=runtime_config_digest(doc), **keys)


def deposit_confirmed_order(settings: Any, ex: Any, executor_url: str) -> Any:
    """An order ready to start on the live exchange `ex`, routed to the executor at `executor_url`: its trading
    key enrolled, a book to size from, its deposit confirmed."""
    from devnet.exchange.keys import Permission
    from execution import accounts as execution_accounts
    from execution.domain import mm_order as mm
    from execution.models import MMOrder
    from mrmarket.exchanges.credentials import ExchangeCredentials
    from tests.factories import user_with

    settings.EXCHANGE_API_URLS = {"binance": ex.base_url}
    settings.EXECUTOR_URLS = [executor_url]
    settings.CUSTODY_ASSETS = {"USDT": {"token": "0x" + "ab" * 20, "decimals": 6}}
    key = ex.sim.create_account(permissions=frozenset({Permission.TRADE}))
    account = execution_accounts.exchange_account_enrol(
        owner_id=user_with().pk,
        exchange="binance",
        label="mm",
        role="trading",
        credentials=ExchangeCredentials(key.key, key.secret),
    )
    ex.sim.market.step(Decimal(1))  # a book to size from
    return MMOrder.objects.create(
        owner_id=account.owner_id,
        exchange_account=account,
        symbol="MMT/USDT",
        funding_asset="USDT",
        funding_amount=10**9,
        state=mm.State.DEPOSIT_CONFIRMED,
        strategy={"params": {"order_amount": "100"}},
    )
