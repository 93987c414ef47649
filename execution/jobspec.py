"""The job spec Django sends an executor for an MM order: the order's strategy choices over the defaults, sized
from the funding where the operator left sizes out."""

from __future__ import annotations

import secrets
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from execution.domain.units import from_units
from execution.funds import custody_asset
from execution.models import MMOrder
from wire.jobs import JOBSPEC_SCHEMA
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


def job_spec_of(resolved: dict[str, Any], *, job_id: str, exchange: str, symbol: str) -> dict[str, Any]:
    """The wire job spec of a resolved strategy (`resolve_strategy`)."""
    return {
        "schema": JOBSPEC_SCHEMA,
        "job_id": job_id,
        "exchange": exchange,
        "symbol": symbol,
        "strategy": {"name": resolved["name"], "params": resolved["params"]},
        "risk": resolved["risk"],
        "report_interval_seconds": resolved["report_interval_seconds"],
        "sample_seconds": resolved["sample_seconds"],
    }


def build_job_spec(order: MMOrder, *, mid: Decimal) -> dict[str, Any]:
    """The job spec for an order. An order made by `mm_order_create` carries its resolved strategy (parsed then
    by `wire.jobs.parse_job_spec`), which this leaves unchanged; `mid` only sizes what is still missing."""
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
    )


def order_mid(order: MMOrder) -> Decimal:
    return market_mid(order.exchange_account.exchange, order.symbol)


def market_mid(exchange: str, symbol: str) -> Decimal:
    from execution.exchanges import TRANSIENT, exchange_client

    try:
        book = exchange_client(exchange).fetch_order_book(symbol, 5)
    except TRANSIENT:
        from execution.errors import ExchangeUnavailable

        raise ExchangeUnavailable(f"{exchange} did not answer its order book") from None
    if not book["bids"] or not book["asks"]:
        from execution.errors import ExchangeUnavailable

        raise ExchangeUnavailable(f"{exchange} has no two-sided book for {symbol} to size the job from")
    return (Decimal(str(book["bids"][0][0])) + Decimal(str(book["asks"][0][0]))) / 2
