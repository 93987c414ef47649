"""Test harness: the exchange simulator with a live market, an executor app, and a controller that signs."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from aiohttp.test_utils import TestClient

from devnet.exchange.config import SimConfig, default_markets
from devnet.exchange.fixtures import RunningExchange, run_exchange
from devnet.exchange.keys import Permission
from wire.canonical import canonical_bytes
from wire.control import sign_request
from wire.keys import SigningKey, seal

CONTROLLER = SigningKey.from_seed(b"c" * 32)


def job_spec(job_id: str = "job-e2e", **overrides: Any) -> dict[str, Any]:
    params = {
        "bid_spread": "0.001",
        "ask_spread": "0.001",
        "order_amount": "200",
        "levels": 2,
        "level_spread": "0.001",
        "refresh_tolerance": "0.002",
        "max_base": "6000",
        "min_base": "1000",
    }
    params.update(overrides.pop("params", {}))
    risk = {
        "max_open_orders": 10,
        "max_orders_per_second": 20,
        "max_exposure_quote": "100000",
        "max_loss_quote": "1000",
        "max_drawdown_quote": "1000",
        "max_consecutive_rejects": 5,
        "stale_book_seconds": 5,
        "dead_man_seconds": 3,
    }
    risk.update(overrides.pop("risk", {}))
    spec = {
        "schema": "mrmarket.jobspec/v1",
        "job_id": job_id,
        "exchange": "binance",
        "symbol": "MMT/USDT",
        "strategy": {"name": "baseline", "params": params},
        "risk": risk,
        "report_interval_seconds": 10,
        "sample_seconds": 1,
    }
    spec.update(overrides)
    return spec


def busy_markets() -> list[Any]:
    """The default markets with MMT/USDT's takers busy enough to fill a job within seconds."""
    out = []
    for market in default_markets():
        if market.spec.base == "MMT":
            market = replace(
                market, agents=replace(market.agents, taker_intensity=Decimal(6), volatility=Decimal("0.02"))
            )
        out.append(market)
    return out


@contextmanager
def live_exchange(*, run_market: bool = True) -> Iterator[RunningExchange]:
    with run_exchange(SimConfig(markets=busy_markets(), run_market=run_market, tick_seconds=Decimal("0.2"))) as ex:
        yield ex


def trading_key(ex: RunningExchange, *, base: str = "4000", quote: str = "2000") -> Any:
    return ex.sim.create_account(
        permissions=frozenset({Permission.READ, Permission.TRADE}),
        balances={"MMT": Decimal(base), "USDT": Decimal(quote)},
    )


@dataclass
class Controller:
    """Signs as the controller for the executor behind `client`: its audience is the executor's identity key,
    learnt from `/v1/health` on the first call unless given."""

    client: TestClient
    key: SigningKey = CONTROLLER
    audience: str | None = None

    async def ensure_audience(self) -> str:
        if self.audience is None:
            self.audience = (await (await self.client.get("/v1/health")).json())["signing_key"]
        return self.audience

    def headers(self, method: str, path: str, body: bytes) -> dict[str, str]:
        assert self.audience is not None, "await ensure_audience() first"
        return sign_request(
            self.key,
            method=method,
            path_qs=path,
            body=body,
            audience=self.audience,
            timestamp_ms=int(time.time() * 1000),
        )

    async def call(self, method: str, path: str, payload: Any = None) -> tuple[int, Any]:
        await self.ensure_audience()
        body = canonical_bytes(payload) if payload is not None else b""
        headers = {**self.headers(method, path, body), "Content-Type": "application/json"}
        response = await self.client.request(method, path, data=body, headers=headers)
        return response.status, await response.json()

    async def start(self, spec: dict[str, Any]) -> tuple[int, Any]:
        return await self.call("POST", "/v1/jobs/start", spec)

    async def provision(
        self, job_id: str, sealing_key: str, key: Any, *, spec_digest: str | None = None, controller: str | None = None
    ) -> tuple[int, Any]:
        """Seal `key` as Django does: for this job, the digest of the spec it runs, and this controller."""
        if spec_digest is None:
            spec_digest = (await self.status(job_id))["job_spec_digest"]
        payload = {
            "job_id": job_id,
            "api_key": key.key,
            "secret": key.secret,
            "job_spec_digest": spec_digest,
            "controller_key": controller or self.key.public_hex,
        }
        sealed = base64.b64encode(seal(sealing_key, json.dumps(payload).encode())).decode()
        return await self.call("POST", f"/v1/jobs/{job_id}/credentials", {"sealed_b64": sealed})

    async def status(self, job_id: str) -> Any:
        status, body = await self.call("GET", f"/v1/jobs/{job_id}/status")
        assert status == 200, body
        return body
