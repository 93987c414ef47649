"""Creating an MM order: everything that can be checked before any money moves (the account usable for
trading, the market listed, the asset one custody holds, the amount above the exchange's minimum, the strategy a
job spec the executor accepts); nothing is created on bad input."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from execution.domain.units import from_units
from execution.errors import OrderRejected
from execution.funds import custody_asset
from execution.jobspec import validated_strategy
from execution.models import ExchangeAccount, MMOrder
from mrmarket.errors import NotFound
from mrmarket.exchanges.client import exchange_market
from wire.errors import StrategyParamError, UnknownStrategy, WireError

STRATEGY_KEYS = frozenset({"name", "params", "risk", "report_interval_seconds", "sample_seconds"})


def _check_strategy(
    strategy: dict[str, Any] | None, *, exchange: str, symbol: str, funding_asset: str, funding_amount: int
) -> dict[str, Any]:
    """The order's strategy, resolved (defaults and sizes filled in) and checked as the complete job spec it
    becomes, by the same parser the executor runs (`wire.jobs.JobSpec.parse`): a spec the executor would refuse
    is refused here, before the order exists and before any money moves. Returns what the order stores."""
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
