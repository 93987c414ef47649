"""Strategies by name. A job spec names one and gives its parameters; both are checked before a job exists."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from executor.strategy.base import Strategy
from executor.strategy.baseline import BaselineStrategy
from executor.strategy.errors import UnknownStrategy

STRATEGIES: dict[str, Callable[[Mapping[str, Any]], Strategy]] = {
    BaselineStrategy.name: BaselineStrategy.from_params,
}


def build_strategy(name: str, params: Mapping[str, Any]) -> Strategy:
    factory = STRATEGIES.get(name)
    if factory is None:
        raise UnknownStrategy(f"unknown strategy {name!r}; known: {', '.join(sorted(STRATEGIES))}")
    return factory(params)
