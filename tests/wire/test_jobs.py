"""The job spec type: it parses to typed parts and writes back the very document it was parsed from, so the
digest every report and every sealed credential carries is the digest of what Django sent."""

from __future__ import annotations

import copy
import dataclasses
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wire.canonical import canonical_bytes, digest
from wire.errors import SchemaError
from wire.jobs import JobSpec, RiskLimits
from wire.strategies import BaselineParams

SPEC: dict[str, Any] = {
    "schema": "mrmarket.jobspec/v1",
    "job_id": "mmo7-0a1b2c3d",
    "exchange": "binance",
    "symbol": "MMT/USDT",
    "strategy": {
        "name": "baseline",
        "params": {"order_amount": "125.0", "bid_spread": "0.0020", "levels": 2, "max_base": None},
    },
    "risk": {
        "max_open_orders": 20,
        "max_orders_per_second": 5,
        "max_exposure_quote": "2000.000000",
        "max_loss_quote": "50.00",
        "max_drawdown_quote": "80.00",
        "max_consecutive_rejects": 10,
        "stale_book_seconds": 10,
        "dead_man_seconds": 30,
    },
    "report_interval_seconds": 60,
    "sample_seconds": 10,
}
# The digest of SPEC as the spec's digest was taken before the spec was a type (SHA-256 of the document's
# canonical JSON), written out: a change in what the type writes back fails here.
SPEC_DIGEST = "a60061741d281ef3b34d9007f2e90d07cc574311320493efb4e217a3a1dc24f7"


def test_a_spec_parses_to_typed_parts() -> None:
    spec = JobSpec.parse(copy.deepcopy(SPEC))
    assert (spec.job_id, spec.exchange, spec.symbol) == ("mmo7-0a1b2c3d", "binance", "MMT/USDT")
    assert (spec.report_interval_seconds, spec.sample_seconds) == (60, 10)
    assert spec.strategy.name == "baseline"
    assert isinstance(spec.strategy.params, BaselineParams)
    assert spec.strategy.params.order_amount == Decimal("125.0")
    assert spec.strategy.params.level_spread == Decimal("0.001")  # a default, parsed in …
    assert "level_spread" not in spec.strategy.written  # … but not written into the spec
    assert spec.risk == RiskLimits(
        max_open_orders=20,
        max_orders_per_second=5,
        max_exposure_quote=Decimal("2000"),
        max_loss_quote=Decimal("50"),
        max_drawdown_quote=Decimal("80"),
        max_consecutive_rejects=10,
        stale_book_seconds=10,
        dead_man_seconds=30,
    )
    assert isinstance(spec.risk.max_loss_quote, Decimal)
    assert isinstance(spec.risk.dead_man_seconds, int)


def test_the_spec_writes_back_the_document_it_was_parsed_from() -> None:
    spec = JobSpec.parse(copy.deepcopy(SPEC))
    assert spec.to_wire() == SPEC
    assert spec.canonical() == canonical_bytes(SPEC)
    assert spec.digest() == digest(SPEC) == SPEC_DIGEST
    assert JobSpec.parse(spec.to_wire()) == spec


def test_a_parsed_spec_is_frozen_and_independent_of_its_document() -> None:
    raw = copy.deepcopy(SPEC)
    spec = JobSpec.parse(raw)
    raw["strategy"]["params"]["order_amount"] = "1"
    assert spec.to_wire()["strategy"]["params"]["order_amount"] == "125.0"
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.job_id = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.strategy.written["order_amount"] = "1"  # type: ignore[index]


def test_risk_limits_parse_alone_with_the_paths_of_a_spec() -> None:
    with pytest.raises(SchemaError, match=r"spec\.risk\.max_loss_quote: must be > 0"):
        RiskLimits.parse({**SPEC["risk"], "max_loss_quote": "0"})
    assert RiskLimits.parse(SPEC["risk"]).to_wire() == SPEC["risk"]


wire_decimals = st.from_regex(r"(0|[1-9][0-9]{0,30})(\.[0-9]{1,20})?", fullmatch=True).filter(
    lambda text: Decimal(text) > 0
)


@given(wire_decimals, wire_decimals, wire_decimals, st.integers(1, 10**6))
def test_any_wire_decimal_round_trips_to_the_same_digest(exposure: str, loss: str, drawdown: str, orders: int) -> None:
    raw = copy.deepcopy(SPEC)
    raw["risk"].update(max_exposure_quote=exposure, max_loss_quote=loss, max_drawdown_quote=drawdown)
    raw["risk"]["max_open_orders"] = orders
    spec = JobSpec.parse(raw)
    assert spec.to_wire() == raw
    assert spec.digest() == digest(raw)
