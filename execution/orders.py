"""Creating an MM order: everything that can be checked before any money moves (the account usable for
trading, the market listed, the asset one custody holds, the amount above the exchange's minimum, the strategy a
job spec the executor accepts, the campaign it serves one that pays for its market); nothing is created on bad
input."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from execution.domain.units import from_units
from execution.errors import CampaignBindingInvalid, OrderRejected, RewardAddressInvalid
from execution.funds import custody_asset
from execution.jobspec import validated_strategy
from execution.models import ExchangeAccount, MMOrder
from mrmarket import campaign_directory
from mrmarket.errors import NotFound
from mrmarket.exchanges.client import exchange_market
from wire.errors import StrategyParamError, UnknownStrategy, WireError

STRATEGY_KEYS = frozenset({"name", "params", "risk", "report_interval_seconds", "sample_seconds"})
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def _check_campaign(
    *, chain_id: int | None, address: str | None, reward_address: str | None, exchange: str, symbol: str
) -> tuple[int | None, str, str]:
    """The campaign the order serves and where its rewards go, as stored (lower-case), or (None, "", "") for an
    order that serves none. Both are given or neither: an order bound to a campaign without a reward address could
    not be paid, and a reward address without a campaign has nothing to be paid from. The campaign itself is
    checked through the core's campaign directory (campaigns sit above execution)."""
    if chain_id is None and not address and not reward_address:
        return None, "", ""
    if chain_id is None or not address:
        raise CampaignBindingInvalid("a campaign needs both its chain id and its address")
    if not reward_address:
        raise CampaignBindingInvalid(
            "an order serving a campaign needs a reward address", code="reward_address_missing"
        )
    if isinstance(chain_id, bool) or not isinstance(chain_id, int) or chain_id <= 0:
        raise CampaignBindingInvalid("the campaign's chain id must be a positive integer")
    if not _ADDRESS.fullmatch(address):
        raise CampaignBindingInvalid(
            "the campaign address must be 0x and 40 hex digits", code="campaign_address_invalid"
        )
    if not _ADDRESS.fullmatch(reward_address):
        raise RewardAddressInvalid("the reward address must be 0x and 40 hex digits")
    address, reward_address = address.lower(), reward_address.lower()
    campaign_directory.campaign_for_order(chain_id=chain_id, address=address, exchange=exchange, symbol=symbol)
    return chain_id, address, reward_address


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
    campaign_chain_id: int | None = None,
    campaign_address: str | None = None,
    reward_address: str | None = None,
) -> MMOrder:
    """A new MM order (state created). `campaign_chain_id` + `campaign_address` and `reward_address` bind it to
    the campaign it serves and the address its rewards are paid to: all three or none, fixed from here on."""
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
    chain_id, campaign, reward = _check_campaign(
        chain_id=campaign_chain_id,
        address=campaign_address,
        reward_address=reward_address,
        exchange=account.exchange,
        symbol=symbol,
    )
    return MMOrder.objects.create(
        owner_id=owner_id,
        exchange_account=account,
        symbol=symbol,
        funding_asset=funding_asset,
        funding_amount=funding_amount,
        strategy=chosen,
        campaign_chain_id=chain_id,
        campaign_address=campaign,
        reward_address=reward,
    )


def _minimum(market: dict[str, Any], asset: str) -> Decimal:
    # Enough for one order on each side: twice the exchange's minimum notional (quote) or amount (base).
    limits = market.get("limits") or {}
    if asset == market["quote"]:
        value = (limits.get("cost") or {}).get("min") or 0
    else:
        value = (limits.get("amount") or {}).get("min") or 0
    return 2 * Decimal(str(value))
