"""The job spec Django sends an executor for an MM order: the order's strategy choices over the defaults, sized
from the funding where the operator left sizes out, built and checked as a `wire.jobs.JobSpec` — the type the
executor parses too, so an order is refused at creation for any spec the executor would refuse."""

from __future__ import annotations

import secrets
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from execution.domain.units import from_units
from execution.funds import custody_asset
from execution.models import MMOrder
from mrmarket.exchanges.client import TRANSIENT, exchange_client
from mrmarket.exchanges.errors import ExchangeUnavailable
from wire.jobs import JOBSPEC_SCHEMA, JobSpec
from wire.strategies import strategy_kind

# Strategy parameter defaults are the wire contract's (`wire.strategies`), the ones the executor parses with;
# these are Django's own choices for what only Django decides: the risk limits not sized from the funding, the
# strategy when none is named, and the report cadence.
DEFAULT_STRATEGY = "baseline"
DEFAULT_RISK: dict[str, Any] = {
    "max_open_orders": 20,
    "max_orders_per_second": 5,
    "max_consecutive_rejects": 10,
    "stale_book_seconds": 10,
    "dead_man_seconds": 30,
}
DEFAULT_REPORT_INTERVAL_SECONDS = 60
DEFAULT_SAMPLE_SECONDS = 10


# --- job spec ------------------------------------------------------------------------------------------------


def resolve_strategy(
    chosen: dict[str, Any], *, symbol: str, funding_asset: str, funding_amount: int, mid: Decimal
) -> dict[str, Any]:
    """The order's strategy choices over the defaults, sizes from the funding where not given: every value the
    job spec carries besides where it runs. UnknownStrategy when the strategy has no parameter contract."""
    name = chosen.get("name", DEFAULT_STRATEGY)
    params = {**strategy_kind(name).defaults, **(chosen.get("params") or {})}
    quote = symbol.split("/")[1]
    _, decimals = custody_asset(funding_asset)
    funded = from_units(funding_amount, decimals)
    funded_quote = funded if funding_asset == quote else funded * mid
    if "order_amount" not in params:
        # Each of 2·levels orders gets a quarter of its share, so the ladder fits twice over on either side. A
        # levels value the strategy refuses sizes as one level; the parser then names the bad levels.
        levels = params.get("levels")
        ladder = levels if isinstance(levels, int) and not isinstance(levels, bool) and levels >= 1 else 1
        per_order = funded_quote / (4 * ladder) / mid
        params["order_amount"] = format(per_order.quantize(Decimal("0.1"), rounding=ROUND_FLOOR), "f")
    risk = {
        **DEFAULT_RISK,
        "max_exposure_quote": format(funded_quote * 2, "f"),
        "max_loss_quote": format((funded_quote * Decimal("0.05")).quantize(Decimal("0.01")), "f"),
        "max_drawdown_quote": format((funded_quote * Decimal("0.08")).quantize(Decimal("0.01")), "f"),
        **(chosen.get("risk") or {}),
    }
    return {
        "name": name,
        "params": params,
        "risk": risk,
        "report_interval_seconds": chosen.get("report_interval_seconds", DEFAULT_REPORT_INTERVAL_SECONDS),
        "sample_seconds": chosen.get("sample_seconds", DEFAULT_SAMPLE_SECONDS),
    }


def job_spec_of(resolved: dict[str, Any], *, job_id: str, exchange: str, symbol: str) -> JobSpec:
    """The job spec of a resolved strategy (`resolve_strategy`), parsed: a WireError (UnknownStrategy,
    StrategyParamError, SchemaError …) naming what the executor would refuse."""
    return JobSpec.parse(
        {
            "schema": JOBSPEC_SCHEMA,
            "job_id": job_id,
            "exchange": exchange,
            "symbol": symbol,
            "strategy": {"name": resolved["name"], "params": resolved["params"]},
            "risk": resolved["risk"],
            "report_interval_seconds": resolved["report_interval_seconds"],
            "sample_seconds": resolved["sample_seconds"],
        }
    )


def validated_strategy(
    chosen: dict[str, Any], *, exchange: str, symbol: str, funding_asset: str, funding_amount: int
) -> dict[str, Any]:
    """The strategy an MM order stores: `chosen` resolved over the defaults, sized from the funding at the
    market's mid now, once the job spec it makes has parsed. A WireError when the executor would refuse it;
    ExchangeUnavailable when the market has no price to size from."""
    resolved = resolve_strategy(
        chosen,
        symbol=symbol,
        funding_asset=funding_asset,
        funding_amount=funding_amount,
        mid=market_mid(exchange, symbol),
    )
    job_spec_of(resolved, job_id="mmo-new", exchange=exchange, symbol=symbol)
    return resolved


def build_job_spec(order: MMOrder, *, mid: Decimal) -> dict[str, Any]:
    """The job spec document for an order (what `MMOrder.job_spec` stores and the executor is sent). An order
    made by `mm_order_create` carries its resolved strategy (checked then by `validated_strategy`), which this
    leaves unchanged; `mid` only sizes what is still missing."""
    resolved = resolve_strategy(
        dict(order.strategy or {}),
        symbol=order.symbol,
        funding_asset=order.funding_asset,
        funding_amount=int(order.funding_amount),
        mid=mid,
    )
    return job_spec_of(
        resolved,
        job_id=f"mmo{order.pk}-{secrets.token_hex(4)}",  # unique even if executors outlive this database
        exchange=order.exchange_account.exchange,
        symbol=order.symbol,
    ).to_wire()


def order_mid(order: MMOrder) -> Decimal:
    return market_mid(order.exchange_account.exchange, order.symbol)


def market_mid(exchange: str, symbol: str) -> Decimal:
    try:
        book = exchange_client(exchange).fetch_order_book(symbol, 5)
    except TRANSIENT:
        raise ExchangeUnavailable(f"{exchange} did not answer its order book") from None
    if not book["bids"] or not book["asks"]:
        raise ExchangeUnavailable(f"{exchange} has no two-sided book for {symbol} to size the job from")
    return (Decimal(str(book["bids"][0][0])) + Decimal(str(book["asks"][0][0]))) / 2
