"""Job specs: schema `mrmarket.jobspec/v1`, what Django asks an executor to run. Its digest (canonical JSON,
SHA-256) is carried by every report of the job (`job_spec_digest`), so a report proves which spec it ran.

`parse_job_spec` is the one check of a complete spec — the envelope's schema, the risk limits, and the named
strategy's parameters (`wire.strategies`) — run by Django when an MM order is created (nothing moves on a spec
the executor would refuse) and by the executor before it accepts a job.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from wire import schema as s
from wire.canonical import digest
from wire.errors import SchemaError, StrategyParamError
from wire.reports import MAX_ORDER_EVENTS, SYMBOL_RE
from wire.strategies import parse_strategy_params

JOBSPEC_SCHEMA = "mrmarket.jobspec/v1"
# Orders a job may place in one report window (its rate limit times the interval): each order makes a few events
# (placed, then filled, cancelled or expired), so a job within this stays inside a report's event cap.
MAX_ORDERS_PER_WINDOW = MAX_ORDER_EVENTS // 4

RISK = s.obj(
    {
        "max_open_orders": s.integer(minimum=1),
        "max_orders_per_second": s.integer(minimum=1),
        "max_exposure_quote": s.decimal(positive=True),
        "max_loss_quote": s.decimal(positive=True),
        "max_drawdown_quote": s.decimal(positive=True),
        "max_consecutive_rejects": s.integer(minimum=1),
        "stale_book_seconds": s.integer(minimum=1),
        "dead_man_seconds": s.integer(minimum=1),
    }
)
JOBSPEC = s.obj(
    {
        "schema": s.one_of(JOBSPEC_SCHEMA),
        "job_id": s.string(pattern=s.ID_RE),
        "exchange": s.string(pattern=re.compile(r"[a-z0-9_]{1,32}")),
        "symbol": s.string(pattern=SYMBOL_RE),
        "strategy": s.obj(
            {"name": s.string(pattern=re.compile(r"[a-z0-9_]{1,32}")), "params": s.mapping(s.string(), s.anything())}
        ),
        "risk": RISK,
        "report_interval_seconds": s.integer(minimum=10),
        "sample_seconds": s.integer(minimum=1),
    }
)


def validate_job_spec(spec: Any) -> None:
    JOBSPEC(spec, "spec")
    if spec["report_interval_seconds"] % spec["sample_seconds"]:
        raise SchemaError("must divide report_interval_seconds", path="spec.sample_seconds")
    if spec["risk"]["max_orders_per_second"] * spec["report_interval_seconds"] > MAX_ORDERS_PER_WINDOW:
        raise SchemaError(
            f"times risk.max_orders_per_second allows more than {MAX_ORDERS_PER_WINDOW} orders in one report",
            path="spec.report_interval_seconds",
        )


def job_spec_digest(spec: dict[str, Any]) -> str:
    validate_job_spec(spec)
    return digest(spec)


@dataclass(frozen=True)
class JobSpec:
    """A complete job spec, checked: the document as sent, its digest, and its strategy's parsed parameters."""

    doc: dict[str, Any]
    digest: str
    strategy: str
    params: Any  # the strategy's own parameter type (BaselineParams for the baseline)


def parse_job_spec(spec: Any) -> JobSpec:
    """Schema (envelope and risk) and the strategy's parameters; a SchemaError/TooLarge, UnknownStrategy or
    StrategyParamError (its path naming the parameter inside the spec) otherwise."""
    spec_digest = job_spec_digest(spec)
    name = spec["strategy"]["name"]
    try:
        params = parse_strategy_params(name, spec["strategy"]["params"])
    except StrategyParamError as exc:
        raise StrategyParamError(f"strategy.params.{exc.param}", exc.reason) from None
    return JobSpec(doc=spec, digest=spec_digest, strategy=name, params=params)


def client_order_prefix(job_id: str) -> str:
    """`mm` + 10 hex characters of SHA-256(job id): the prefix of the client order id of every order the job
    places (12 characters, the same on every run of the job). The executor names its orders so; the controller
    recognises a lost job's orders on the exchange by it."""
    return "mm" + hashlib.sha256(job_id.encode()).hexdigest()[:10]
