"""Accepting a job spec: the wire schema, the strategy and its parameters, and the market — every check done
before a job exists, each refusal typed (code) and naming what is wrong."""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from typing import Any

from executor.strategy.base import Strategy
from executor.strategy.errors import StrategyParamError, UnknownStrategy
from executor.strategy.registry import build_strategy
from wire.errors import WireError
from wire.jobs import job_spec_digest


class JobSpecError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class AcceptedJob:
    spec: dict[str, Any]
    digest: str
    strategy: Strategy


def accept_job_spec(spec: Any, *, markets: Container[str]) -> AcceptedJob:
    """`markets`: the symbols the exchange lists (from its market list); an unlisted symbol is refused."""
    try:
        digest = job_spec_digest(spec)
    except WireError as exc:
        raise JobSpecError("invalid_job_spec", str(exc)) from None
    if spec["symbol"] not in markets:
        raise JobSpecError("unknown_market", f"{spec['exchange']} does not list {spec['symbol']}")
    try:
        strategy = build_strategy(spec["strategy"]["name"], spec["strategy"]["params"])
    except UnknownStrategy as exc:
        raise JobSpecError(UnknownStrategy.code, str(exc)) from None
    except StrategyParamError as exc:
        raise JobSpecError(StrategyParamError.code, f"strategy.params.{exc}") from None
    return AcceptedJob(spec=spec, digest=digest, strategy=strategy)
