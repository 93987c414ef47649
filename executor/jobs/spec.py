"""Accepting a job spec, in two steps, each refusal typed (code) and naming what is wrong: `parse_spec` (the wire
contract's `JobSpec.parse` — schema, risk limits, strategy and its parameters — the very check Django ran when
the order was made; no I/O), then `accept_job` (the market is listed, the strategy is implemented here). The
manager parses before it asks the exchange anything: a bad spec costs no exchange call."""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from typing import Any

from executor.strategy.base import Strategy
from executor.strategy.registry import STRATEGIES
from wire.errors import StrategyParamError, UnknownStrategy, WireError
from wire.jobs import JobSpec


class JobSpecError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class AcceptedJob:
    spec: JobSpec
    strategy: Strategy

    @property
    def digest(self) -> str:
        return self.spec.digest()


def parse_spec(raw: Any) -> JobSpec:
    """The parsed spec; a JobSpecError with the executor's code (unknown_strategy, invalid_strategy_params or
    invalid_job_spec) otherwise."""
    try:
        return JobSpec.parse(raw)
    except (UnknownStrategy, StrategyParamError) as exc:
        raise JobSpecError(exc.code, str(exc)) from None
    except WireError as exc:
        raise JobSpecError("invalid_job_spec", str(exc)) from None


def accept_job(spec: JobSpec, *, markets: Container[str]) -> AcceptedJob:
    """`markets`: the symbols the exchange lists (from its market list); an unlisted symbol is refused."""
    if spec.symbol not in markets:
        raise JobSpecError("unknown_market", f"{spec.exchange} does not list {spec.symbol}")
    factory = STRATEGIES.get(spec.strategy.name)
    if factory is None:
        raise JobSpecError(UnknownStrategy.code, f"strategy {spec.strategy.name!r} has no implementation here")
    return AcceptedJob(spec=spec, strategy=factory(spec.strategy.params))


def accept_job_spec(raw: Any, *, markets: Container[str]) -> AcceptedJob:
    """Both steps at once, for a caller that already holds the market list."""
    return accept_job(parse_spec(raw), markets=markets)
