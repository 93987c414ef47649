"""Strategies by name. A job spec names one and gives its parameters; both are checked before a job exists.

The names and parameter schemas are the wire contract's (`wire.strategies`): a strategy is known to the
executor only when Django can parse its parameters too."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from executor.strategy.base import Strategy
from executor.strategy.baseline import BaselineStrategy
from executor.strategy.errors import UnknownStrategy
from wire.strategies import parse_strategy_params

STRATEGIES: dict[str, Callable[[Any], Strategy]] = {
    BaselineStrategy.name: BaselineStrategy,
}


def build_strategy(name: str, params: Mapping[str, Any]) -> Strategy:
    parsed = parse_strategy_params(name, params)
    factory = STRATEGIES.get(name)
    if factory is None:
        raise UnknownStrategy(f"strategy {name!r} has no implementation in this executor")
    return factory(parsed)
