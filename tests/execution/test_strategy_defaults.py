"""One source of strategy defaults: the job spec Django builds for an order that names nothing carries exactly
the parameters the executor's baseline strategy assumes when a spec leaves them out."""

from __future__ import annotations

from dataclasses import asdict
from decimal import Decimal

import pytest

from execution import jobspec
from executor.strategy import baseline
from executor.strategy import errors as strategy_errors
from executor.strategy.baseline import BaselineStrategy
from executor.strategy.registry import build_strategy
from wire import errors as wire_errors
from wire import strategies

pytestmark = pytest.mark.django_db

# The baseline's defaults as the executor documents them (docs/executor.md), by hand.
PINNED_DEFAULTS = {
    "bid_spread": Decimal("0.002"),
    "ask_spread": Decimal("0.002"),
    "levels": 1,
    "level_spread": Decimal("0.001"),
    "level_amount": Decimal("0"),
    "refresh_tolerance": Decimal("0.0005"),
    "max_order_age_seconds": 1800,
    "minimum_spread": Decimal("0"),
    "inventory_target_base_pct": Decimal("0.5"),
    "inventory_skew": Decimal("0"),
}


def test_django_fills_specs_from_the_very_defaults_the_executor_parses_with() -> None:
    assert jobspec.strategy_kind(jobspec.DEFAULT_STRATEGY).defaults is strategies.BASELINE_DEFAULTS
    # The executor's parameter type, parser and errors are wire's own: nothing to drift apart.
    assert baseline.BaselineParams is strategies.BaselineParams
    assert strategy_errors.StrategyParamError is wire_errors.StrategyParamError
    assert strategies.STRATEGIES["baseline"].parse == strategies.BaselineParams.parse


def test_a_spec_with_nothing_chosen_runs_the_executors_defaults(settings) -> None:
    settings.CUSTODY_ASSETS = {"USDT": {"token": "0x" + "ab" * 20, "decimals": 6}}
    resolved = jobspec.resolve_strategy(
        {}, symbol="MMT/USDT", funding_asset="USDT", funding_amount=1_000 * 10**6, mid=Decimal("2")
    )
    parsed = jobspec.job_spec_of(resolved, job_id="mmo1-x", exchange="binance", symbol="MMT/USDT")
    spec, sent = parsed.to_wire(), parsed.strategy.params
    assert isinstance(sent, strategies.BaselineParams)
    # What the executor assumes for a spec naming only the size:
    assumed = build_strategy("baseline", {"order_amount": spec["strategy"]["params"]["order_amount"]})
    assert isinstance(assumed, BaselineStrategy)
    assert asdict(sent) == asdict(assumed.params)
    for name, default in PINNED_DEFAULTS.items():  # the values, written out: a changed default fails here
        assert getattr(sent, name) == default, name
    assert set(PINNED_DEFAULTS) == set(strategies.BASELINE_DEFAULTS)
    # Sized from the funding: a quarter of the funded value per order of the one-level ladder.
    assert spec["strategy"]["params"]["order_amount"] == "125.0"
