"""Pluggable market-making strategies: the contract (`base`) and the strategies that implement it."""
