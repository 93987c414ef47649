"""Accepting a job spec: the wire schema, the strategy and its parameters, and the market — every check done
before a job exists, each refusal typed (code) and naming what is wrong."""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from typing import Any

from executor.strategy.base import Strategy
from executor.strategy.registry import STRATEGIES
from wire.errors import StrategyParamError, UnknownStrategy, WireError
from wire.jobs import parse_job_spec


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
    """`markets`: the symbols the exchange lists (from its market list); an unlisted symbol is refused. The spec
    itself is parsed by the wire contract's `parse_job_spec`, the very check Django ran when the order was made."""
    try:
        parsed = parse_job_spec(spec)
    except (UnknownStrategy, StrategyParamError) as exc:
        raise JobSpecError(exc.code, str(exc)) from None
    except WireError as exc:
        raise JobSpecError("invalid_job_spec", str(exc)) from None
    if spec["symbol"] not in markets:
        raise JobSpecError("unknown_market", f"{spec['exchange']} does not list {spec['symbol']}")
    factory = STRATEGIES.get(parsed.strategy)
    if factory is None:
        raise JobSpecError(UnknownStrategy.code, f"strategy {parsed.strategy!r} has no implementation here")
    return AcceptedJob(spec=spec, digest=parsed.digest, strategy=factory(parsed.params))
