"""Job specs: a good spec is accepted with its digest and strategy; every bad one is refused, typed, before a
job exists."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from executor.jobs.spec import JobSpecError, accept_job_spec
from wire.canonical import digest
from wire.errors import WireError
from wire.jobs import JobSpec
from wire.strategies import BASELINE_DEFAULTS, BaselineParams

MARKETS = {"BTC/USDT", "ETH/USDT", "MMT/USDT"}


def spec(**overrides: object) -> dict:
    doc = {
        "schema": "mrmarket.jobspec/v1",
        "job_id": "job-42",
        "exchange": "binance",
        "symbol": "MMT/USDT",
        "strategy": {
            "name": "baseline",
            "params": {"bid_spread": "0.002", "ask_spread": "0.002", "order_amount": "100", "levels": 3},
        },
        "risk": {
            "max_open_orders": 20,
            "max_orders_per_second": 5,
            "max_exposure_quote": "5000",
            "max_loss_quote": "250",
            "max_drawdown_quote": "400",
            "max_consecutive_rejects": 5,
            "stale_book_seconds": 10,
            "dead_man_seconds": 60,
        },
        "report_interval_seconds": 60,
        "sample_seconds": 10,
    }
    doc.update(overrides)
    return doc


def test_a_good_spec_is_accepted_with_its_digest() -> None:
    accepted = accept_job_spec(spec(), markets=MARKETS)
    assert accepted.digest == digest(spec())
    assert accepted.strategy.name == "baseline"


def with_params(**params: object) -> dict:
    doc = spec()
    doc["strategy"] = copy.deepcopy(doc["strategy"])
    doc["strategy"]["params"].update(params)
    return doc


@pytest.mark.parametrize(
    ("doc", "code", "message"),
    [
        (spec(symbol="DOGE/USDT"), "unknown_market", "binance does not list DOGE/USDT"),
        (with_params(order_amount="0"), "invalid_strategy_params", "strategy.params.order_amount: must be within (0"),
        (with_params(order_amount="-1"), "invalid_strategy_params", "strategy.params.order_amount"),
        (with_params(bid_spread="0.9"), "invalid_strategy_params", "strategy.params.bid_spread: must be within"),
        (spec(strategy={"name": "grid", "params": {}}), "unknown_strategy", "unknown strategy 'grid'"),
        (spec(sample_seconds=7), "invalid_job_spec", "spec.sample_seconds: must divide report_interval_seconds"),
        (spec(report_interval_seconds=5), "invalid_job_spec", "spec.report_interval_seconds: must be ≥ 10"),
        (spec(symbol="mmt-usdt"), "invalid_job_spec", "spec.symbol: does not match"),
        (spec(schema="mrmarket.jobspec/v0"), "invalid_job_spec", "spec.schema: must be one of"),
        ({**spec(), "extra": 1}, "invalid_job_spec", "spec: unknown extra"),
    ],
)
def test_bad_specs_are_refused_with_a_typed_reason(doc: dict, code: str, message: str) -> None:
    with pytest.raises(JobSpecError) as err:
        accept_job_spec(doc, markets=MARKETS)
    assert err.value.code == code
    assert message in err.value.message


def test_risk_limits_must_be_positive() -> None:
    doc = spec()
    doc["risk"] = {**doc["risk"], "max_loss_quote": "0"}
    with pytest.raises(JobSpecError, match=r"spec\.risk\.max_loss_quote: must be > 0"):
        accept_job_spec(doc, markets=MARKETS)


def with_risk(**risk: object) -> dict:
    doc = spec()
    doc["risk"] = {**doc["risk"], **risk}
    return doc


@pytest.mark.parametrize(
    ("doc", "code", "message"),
    [
        (with_risk(max_open_order=5), "invalid_job_spec", "spec.risk: unknown max_open_order"),
        (with_params(levls=2), "invalid_strategy_params", "strategy.params.levls: is not a parameter"),
        (with_params(bid_spread="0." + "1" * 70), "invalid_strategy_params", "strategy.params.bid_spread"),
        ({**spec(), "report_interval_seconds": 1200}, "invalid_job_spec", "more than 5000 orders in one report"),
        (
            {**spec(), "strategy": {"name": "baseline", "params": {f"p{i}": 1 for i in range(65)}}},
            "invalid_job_spec",
            "spec.strategy.params: more than 64 entries",
        ),
    ],
)
def test_the_wire_parser_refuses_what_the_executor_refuses(doc: dict, code: str, message: str) -> None:
    """Django runs `JobSpec.parse` when an order is created; the executor refuses with the same reasons."""
    with pytest.raises(WireError) as wire_err:
        JobSpec.parse(doc)
    assert message in str(wire_err.value)
    with pytest.raises(JobSpecError) as err:
        accept_job_spec(doc, markets=MARKETS)
    assert err.value.code == code
    assert message in err.value.message


def test_a_good_spec_parses_to_its_strategy_parameters() -> None:
    parsed = JobSpec.parse(spec())
    assert parsed.digest() == digest(spec())
    params = parsed.strategy.params
    assert isinstance(params, BaselineParams)
    assert params.levels == 3
    assert params.refresh_tolerance == Decimal(BASELINE_DEFAULTS["refresh_tolerance"])


@pytest.mark.parametrize("written", [" 1", "1E-3", "1e3", "+1", "01", "1.", "NaN"])
def test_a_strategy_decimal_is_written_the_wires_one_way(written: str) -> None:
    from wire.errors import StrategyParamError

    with pytest.raises(StrategyParamError):
        BaselineParams.parse({"order_amount": written})
