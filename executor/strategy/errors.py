"""Errors in a job's strategy parameters: typed, naming the parameter; no job is created."""

from __future__ import annotations


class StrategyParamError(ValueError):
    code = "invalid_strategy_params"

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param


class UnknownStrategy(ValueError):
    code = "unknown_strategy"
