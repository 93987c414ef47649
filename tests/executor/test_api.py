"""The executor's HTTP spine: health, correlation ids, the error model, and the spec matching the routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from executor.api.app import create_app
from executor.config import Config

SPEC = Path(__file__).resolve().parents[2] / "docs" / "api" / "executor-v1.yaml"


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    app = create_app(Config(build_version="9.9.9"))

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret=hunter2 must not leak")

    app.router.add_get("/v1/_boom", boom)
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_health(client: TestClient) -> None:
    response = await client.get("/v1/health")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ok"
    assert body["version"] == "9.9.9"
    assert body["uptime_seconds"] >= 0
    datetime.fromisoformat(body["started_at"])


async def test_request_id_is_echoed_or_replaced(client: TestClient) -> None:
    ok = await client.get("/v1/health", headers={"X-Request-ID": "abc.123"})
    assert ok.headers["X-Request-ID"] == "abc.123"
    for bad in ("x" * 300, "two words", "semi;colon"):
        response = await client.get("/v1/health", headers={"X-Request-ID": bad})
        assert response.headers["X-Request-ID"] != bad
        assert len(response.headers["X-Request-ID"]) == 32


async def test_unknown_route_and_wrong_method_use_the_error_schema(client: TestClient) -> None:
    missing = await client.get("/v1/nope", headers={"X-Request-ID": "r1"})
    assert missing.status == 404
    assert await missing.json() == {"error": {"code": "not_found", "message": "Not Found", "request_id": "r1"}}
    wrong = await client.post("/v1/health")
    assert wrong.status == 405
    assert (await wrong.json())["error"]["code"] == "method_not_allowed"


async def test_unhandled_errors_leak_nothing(client: TestClient) -> None:
    response = await client.get("/v1/_boom")
    assert response.status == 500
    body = await response.json()
    assert body["error"]["code"] == "internal_error"
    assert "hunter2" not in await response.text()


def test_spec_paths_match_the_served_routes() -> None:
    app = create_app(Config())
    served = {
        (route.resource.canonical, route.method.lower())
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    spec = yaml.safe_load(SPEC.read_text())
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops if method != "parameters"}
    assert served == documented
