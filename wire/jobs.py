"""Job specs: schema `mrmarket.jobspec/v1`, what Django asks an executor to run, as one type (`JobSpec`). Its
digest (canonical JSON, SHA-256) is carried by every report of the job (`job_spec_digest`) and sealed into the
job's credentials, so a report proves which spec it ran.

`JobSpec.parse` is the one check of a complete spec — the envelope's schema, the risk limits (`RiskLimits`), and
the named strategy's parameters (`wire.strategies`) — run by Django when an MM order is created (nothing moves
on a spec the executor would refuse) and by the executor before it accepts a job, before any exchange call.
`JobSpec.to_wire` gives back the very document that was parsed, so its digest is the digest of what was sent.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from wire import schema as s
from wire.canonical import canonical_bytes
from wire.canonical import digest as canonical_digest
from wire.errors import SchemaError, StrategyParamError
from wire.reports import MAX_ORDER_EVENTS, SYMBOL_RE
from wire.strategies import StrategyParams, parse_strategy_params

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


@dataclass(frozen=True)
class RiskLimits:
    """A job's risk limits (`docs/executor.md`): the quote amounts exact, the rest counts and seconds."""

    max_open_orders: int
    max_orders_per_second: int
    max_exposure_quote: Decimal
    max_loss_quote: Decimal
    max_drawdown_quote: Decimal
    max_consecutive_rejects: int
    stale_book_seconds: int
    dead_man_seconds: int

    @classmethod
    def parse(cls, raw: Any, path: str = "spec.risk") -> RiskLimits:
        """The limits of a `risk` object; a SchemaError naming the field (under `path`) otherwise."""
        RISK(raw, path)
        return cls._of_checked(raw)

    @classmethod
    def _of_checked(cls, raw: Mapping[str, Any]) -> RiskLimits:
        return cls(
            max_open_orders=raw["max_open_orders"],
            max_orders_per_second=raw["max_orders_per_second"],
            max_exposure_quote=Decimal(raw["max_exposure_quote"]),
            max_loss_quote=Decimal(raw["max_loss_quote"]),
            max_drawdown_quote=Decimal(raw["max_drawdown_quote"]),
            max_consecutive_rejects=raw["max_consecutive_rejects"],
            stale_book_seconds=raw["stale_book_seconds"],
            dead_man_seconds=raw["dead_man_seconds"],
        )

    def to_wire(self) -> dict[str, Any]:
        # A wire decimal (no exponent, no leading zeros) is exact in a Decimal, and `format(…, "f")` writes the
        # same digits back (trailing zeros included): the document round-trips byte for byte.
        return {
            "max_open_orders": self.max_open_orders,
            "max_orders_per_second": self.max_orders_per_second,
            "max_exposure_quote": format(self.max_exposure_quote, "f"),
            "max_loss_quote": format(self.max_loss_quote, "f"),
            "max_drawdown_quote": format(self.max_drawdown_quote, "f"),
            "max_consecutive_rejects": self.max_consecutive_rejects,
            "stale_book_seconds": self.stale_book_seconds,
            "dead_man_seconds": self.dead_man_seconds,
        }


@dataclass(frozen=True)
class StrategySpec:
    """The strategy a job runs: its name, its parameters parsed (defaults filled in), and the parameters as the
    spec wrote them — what the digest binds; a default is not written into the spec by parsing it."""

    name: str
    params: StrategyParams  # the strategy's own parameter type (BaselineParams for the baseline)
    written: Mapping[str, Any]


@dataclass(frozen=True)
class JobSpec:
    """A complete job spec, checked: where the job runs, its strategy, its risk limits and its report cadence.

    A job is identified by its `digest()`, never by `==`: equality compares parsed values, so specs that write a
    limit as `50` and as `50.0` compare equal and still digest differently (the digest binds what was written)."""

    job_id: str
    exchange: str
    symbol: str
    strategy: StrategySpec
    risk: RiskLimits
    report_interval_seconds: int
    sample_seconds: int

    @classmethod
    def parse(cls, raw: Any) -> JobSpec:
        """Schema (envelope and risk), canonical form, and the strategy's parameters; a SchemaError/TooLarge,
        CanonicalFormError, UnknownStrategy or StrategyParamError (its path naming the parameter inside the
        spec) otherwise."""
        JOBSPEC(raw, "spec")
        if raw["report_interval_seconds"] % raw["sample_seconds"]:
            raise SchemaError("must divide report_interval_seconds", path="spec.sample_seconds")
        if raw["risk"]["max_orders_per_second"] * raw["report_interval_seconds"] > MAX_ORDERS_PER_WINDOW:
            raise SchemaError(
                f"times risk.max_orders_per_second allows more than {MAX_ORDERS_PER_WINDOW} orders in one report",
                path="spec.report_interval_seconds",
            )
        canonical_bytes(raw)  # a spec that has no digest (a float, a huge integer) is refused before its strategy
        name, written = raw["strategy"]["name"], raw["strategy"]["params"]
        try:
            params = parse_strategy_params(name, written)
        except StrategyParamError as exc:
            raise StrategyParamError(f"strategy.params.{exc.param}", exc.reason) from None
        return cls(
            job_id=raw["job_id"],
            exchange=raw["exchange"],
            symbol=raw["symbol"],
            strategy=StrategySpec(name=name, params=params, written=MappingProxyType(dict(written))),
            risk=RiskLimits._of_checked(raw["risk"]),
            report_interval_seconds=raw["report_interval_seconds"],
            sample_seconds=raw["sample_seconds"],
        )

    def to_wire(self) -> dict[str, Any]:
        """The spec as a JSON document: exactly the one it was parsed from."""
        return {
            "schema": JOBSPEC_SCHEMA,
            "job_id": self.job_id,
            "exchange": self.exchange,
            "symbol": self.symbol,
            "strategy": {"name": self.strategy.name, "params": dict(self.strategy.written)},
            "risk": self.risk.to_wire(),
            "report_interval_seconds": self.report_interval_seconds,
            "sample_seconds": self.sample_seconds,
        }

    def canonical(self) -> bytes:
        """The canonical JSON (RFC 8785) of `to_wire()`: the bytes the digest is taken of."""
        return canonical_bytes(self.to_wire())

    def digest(self) -> str:
        """Lower-case hex SHA-256 of the canonical form: `wire.canonical.digest` of the document."""
        return canonical_digest(self.to_wire())


def client_order_prefix(job_id: str) -> str:
    """`mm` + 10 hex characters of SHA-256(job id): the prefix of the client order id of every order the job
    places (12 characters, the same on every run of the job). The executor names its orders so; the controller
    recognises a lost job's orders on the exchange by it."""
    return "mm" + hashlib.sha256(job_id.encode()).hexdigest()[:10]
