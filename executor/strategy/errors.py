"""Errors in a job's strategy parameters: typed, naming the parameter; no job is created. They are the wire
contract's own (`wire.strategies` holds every strategy's parameter schema), so Django refuses the same ones."""

from __future__ import annotations

from wire.errors import StrategyParamError, UnknownStrategy

__all__ = ["StrategyParamError", "UnknownStrategy"]
