"""A job spec is parsed before the executor asks the exchange anything: a bad spec is refused, typed, without a
single exchange call (not even the market list), and a good one is what makes the first call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest
from aiohttp.test_utils import TestClient, TestServer

from executor.api.app import create_app
from executor.api.keys import MANAGER_KEY
from executor.config import Config
from executor.engine.runner import RunnerSettings
from executor.identity import Identity
from executor.jobs import manager as manager_module
from executor.jobs.manager import JobError, JobManager
from tests.executor.harness import CONTROLLER, Controller, job_spec


class RecordingGateway:
    """Stands in for the exchange gateway: records every gateway made and every call asked of it."""

    calls: ClassVar[list[str]] = []

    def __init__(self, exchange_id: str, **_: Any) -> None:
        type(self).calls.append(f"connect {exchange_id}")

    async def markets(self) -> frozenset[str]:
        type(self).calls.append("markets")
        return frozenset({"MMT/USDT"})

    async def close(self) -> None:
        return None


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setattr(RecordingGateway, "calls", [])
    monkeypatch.setattr(manager_module, "Gateway", RecordingGateway)
    return RecordingGateway.calls


def bad_specs() -> list[tuple[dict[str, Any], str]]:
    return [
        (job_spec("bad-1", params={"levls": 2}), "invalid_strategy_params"),
        (job_spec("bad-2", params={"order_amount": "0"}), "invalid_strategy_params"),
        (job_spec("bad-3", strategy={"name": "grid", "params": {}}), "unknown_strategy"),
        (job_spec("bad-4", risk={"max_loss_quote": "0"}), "invalid_job_spec"),
        (job_spec("bad-5", sample_seconds=3), "invalid_job_spec"),
        # An exchange no gateway knows: still the spec's own fault is named, no lookup tried.
        (job_spec("bad-6", exchange="nosuchexchange", params={"bid_spread": "0.9"}), "invalid_strategy_params"),
    ]


@pytest.mark.parametrize(("spec", "code"), bad_specs())
async def test_a_bad_spec_is_refused_before_any_exchange_call(
    recording: list[str], spec: dict[str, Any], code: str
) -> None:
    manager = JobManager(identity=Identity.generate(), settings=RunnerSettings(), max_jobs=4)
    with pytest.raises(JobError) as err:
        await manager.start(spec)
    assert (err.value.code, err.value.status) == (code, 422)
    assert recording == []
    assert manager.jobs == {}


async def test_a_good_spec_is_what_asks_the_exchange_for_its_markets(recording: list[str]) -> None:
    manager = JobManager(identity=Identity.generate(), settings=RunnerSettings(), max_jobs=4)
    runner, created = await manager.start(job_spec("good-1"))
    assert created
    assert recording == ["connect binance", "markets"]
    assert runner.spec.job_id == "good-1"
    assert runner.limits is runner.spec.risk


@pytest.fixture
async def controller(recording: list[str]) -> AsyncIterator[Controller]:
    app = create_app(Config(controller_key=CONTROLLER.public_hex), identity=Identity.generate())
    async with TestClient(TestServer(app)) as client:
        yield Controller(client)
        assert app[MANAGER_KEY].jobs == {}


async def test_the_api_refuses_a_bad_spec_without_an_exchange_call(
    controller: Controller, recording: list[str]
) -> None:
    status, body = await controller.start(job_spec("bad-api", params={"levels": 0}))
    assert status == 422, body
    assert body["error"]["code"] == "invalid_strategy_params"
    assert "strategy.params.levels" in body["error"]["message"]
    assert recording == []
