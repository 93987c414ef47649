"""The jobs API's gate and its refusals: only the configured controller's signed, fresh, unreplayed requests
addressed to this executor control jobs; bad job specs, credentials and cursors are refused with typed errors and
change nothing."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer

from executor.api.app import create_app
from executor.api.keys import MANAGER_KEY
from executor.config import Config, ConfigError
from executor.identity import Identity
from executor.jobs.manager import JobManager
from tests.executor.harness import CONTROLLER, Controller, job_spec
from wire.canonical import canonical_bytes
from wire.control import sign_request
from wire.keys import SigningKey, seal

MARKETS = frozenset({"MMT/USDT", "BTC/USDT"})


async def markets(exchange_id: str) -> frozenset[str]:
    if exchange_id != "binance":
        raise ValueError(f"{exchange_id!r} is not an exchange ccxt knows")
    return MARKETS


@pytest.fixture
async def app_client() -> AsyncIterator[tuple[TestClient, Identity, JobManager]]:
    identity = Identity.generate()
    config = Config(controller_key=CONTROLLER.public_hex)
    app = create_app(config, identity=identity)
    app[MANAGER_KEY]._markets_lookup = markets
    async with TestClient(TestServer(app)) as client:
        yield client, identity, app[MANAGER_KEY]


async def test_unsigned_requests_are_refused(app_client: tuple[TestClient, Identity, JobManager]) -> None:
    client, _, manager = app_client
    response = await client.post("/v1/jobs/start", data=canonical_bytes(job_spec()))
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "unauthorized"
    assert manager.jobs == {}


async def test_no_controller_is_pinned_on_first_use() -> None:
    """Without a configured controller key the executor obeys nobody: the first signer is not trusted."""
    intruder_key = SigningKey.from_seed(b"x" * 32)
    app = create_app(Config(controller_key=None))
    async with TestClient(TestServer(app)) as client:
        for key in (intruder_key, CONTROLLER):
            status, body = await Controller(client, key=key).start(job_spec("pin-1"))
            assert status == 401, body
            assert body["error"]["code"] == "unauthorized"
        assert app[MANAGER_KEY].jobs == {}
        health = await (await client.get("/v1/health")).json()
        assert health["controller_key"] is None
        assert "controller_key_pinned_by" not in health
    with pytest.raises(ConfigError, match="EXECUTOR_CONTROLLER_KEY"):
        Config.from_env({})  # a real process does not start without one


async def test_only_the_configured_controller_is_obeyed(app_client: tuple[TestClient, Identity, JobManager]) -> None:
    client, _, manager = app_client
    intruder = Controller(client, key=SigningKey.from_seed(b"x" * 32))
    status, body = await intruder.start(job_spec("pin-2"))  # signing first earns nothing
    assert status == 401
    assert "does not trust" in body["error"]["message"]
    assert manager.jobs == {}
    assert (await Controller(client).start(job_spec("pin-2")))[0] == 201
    status, body = await intruder.call("POST", "/v1/jobs/stop", {"job_id": "pin-2"})
    assert status == 401
    assert manager.get("pin-2").state == "pending_credentials"


async def test_a_request_signed_for_another_executor_is_refused(
    app_client: tuple[TestClient, Identity, JobManager],
) -> None:
    client, _, manager = app_client
    other = Identity.generate()  # executor A; this app is executor B
    body = canonical_bytes(job_spec("aud-1"))
    for_a = sign_request(
        CONTROLLER,
        method="POST",
        path_qs="/v1/jobs/start",
        body=body,
        audience=other.signing.public_hex,
        timestamp_ms=int(time.time() * 1000),
    )
    response = await client.post("/v1/jobs/start", data=body, headers=for_a)
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "wrong_audience"
    relabelled = dict(for_a, **{"X-Controller-Audience": (await Controller(client).ensure_audience())})
    response = await client.post("/v1/jobs/start", data=body, headers=relabelled)  # the signature covers it
    assert response.status == 401
    assert manager.jobs == {}


async def test_a_request_is_not_replayable_after_a_restart() -> None:
    """The audience is the boot's identity key, made in memory at start: a restarted executor has another, so
    a request captured before the restart (within the clock window, its nonce forgotten) is refused."""
    body = canonical_bytes(job_spec("boot-1"))
    config = Config(controller_key=CONTROLLER.public_hex)
    first = create_app(config)
    first[MANAGER_KEY]._markets_lookup = markets
    async with TestClient(TestServer(first)) as client:
        audience = await Controller(client).ensure_audience()
        headers = sign_request(
            CONTROLLER,
            method="POST",
            path_qs="/v1/jobs/start",
            body=body,
            audience=audience,
            timestamp_ms=int(time.time() * 1000),
        )
        assert (await client.post("/v1/jobs/start", data=body, headers=headers)).status == 201
    restarted = create_app(config)
    restarted[MANAGER_KEY]._markets_lookup = markets
    async with TestClient(TestServer(restarted)) as client:
        assert await Controller(client).ensure_audience() != audience
        response = await client.post("/v1/jobs/start", data=body, headers=headers)
        assert response.status == 401
        assert (await response.json())["error"]["code"] == "wrong_audience"
        assert restarted[MANAGER_KEY].jobs == {}


async def test_replayed_stale_and_tampered_requests_are_refused(
    app_client: tuple[TestClient, Identity, JobManager],
) -> None:
    client, identity, manager = app_client
    body = canonical_bytes(job_spec("replay-1"))
    me = identity.signing.public_hex
    headers = sign_request(
        CONTROLLER,
        method="POST",
        path_qs="/v1/jobs/start",
        body=body,
        audience=me,
        timestamp_ms=int(time.time() * 1000),
    )
    assert (await client.post("/v1/jobs/start", data=body, headers=headers)).status == 201
    replay = await client.post("/v1/jobs/start", data=body, headers=headers)
    assert replay.status == 401
    assert "replay" in (await replay.json())["error"]["message"]
    old = sign_request(
        CONTROLLER,
        method="POST",
        path_qs="/v1/jobs/start",
        body=body,
        audience=me,
        timestamp_ms=int(time.time() * 1000) - 120_000,
    )
    assert (await client.post("/v1/jobs/start", data=body, headers=old)).status == 401
    fresh = sign_request(
        CONTROLLER,
        method="POST",
        path_qs="/v1/jobs/start",
        body=body,
        audience=me,
        timestamp_ms=int(time.time() * 1000),
    )
    tampered = canonical_bytes(job_spec("replay-2"))
    response = await client.post("/v1/jobs/start", data=tampered, headers=fresh)
    assert response.status == 401
    other_nonce = dict(fresh, **{"X-Controller-Nonce": "ab" * 16})  # a nonce the signature does not cover
    assert (await client.post("/v1/jobs/start", data=body, headers=other_nonce)).status == 401
    no_nonce = {k: v for k, v in fresh.items() if k != "X-Controller-Nonce"}
    assert (await client.post("/v1/jobs/start", data=body, headers=no_nonce)).status == 401
    assert set(manager.jobs) == {"replay-1"}


async def test_two_identical_requests_signed_in_the_same_millisecond_are_both_accepted(
    app_client: tuple[TestClient, Identity, JobManager],
) -> None:
    """Two workers starting one order at once: same body, same millisecond — distinct nonces, both served."""
    client, identity, manager = app_client
    body = canonical_bytes(job_spec("twin-1"))
    now = int(time.time() * 1000)
    me = identity.signing.public_hex
    first, second = (
        sign_request(CONTROLLER, method="POST", path_qs="/v1/jobs/start", body=body, audience=me, timestamp_ms=now)
        for _ in "ab"
    )
    assert first["X-Controller-Signature"] != second["X-Controller-Signature"]
    assert (await client.post("/v1/jobs/start", data=body, headers=first)).status == 201
    assert (await client.post("/v1/jobs/start", data=body, headers=second)).status in (200, 201)
    assert list(manager.jobs).count("twin-1") == 1


@pytest.mark.parametrize(
    ("spec", "code"),
    [
        (job_spec("bad-1", symbol="DOGE/USDT"), "unknown_market"),
        (job_spec("bad-2", params={"order_amount": "0"}), "invalid_strategy_params"),
        (job_spec("bad-3", params={"order_amount": "-5"}), "invalid_strategy_params"),
        (job_spec("bad-4", params={"bid_spread": "0.9"}), "invalid_strategy_params"),
        (job_spec("bad-5", strategy={"name": "martingale", "params": {}}), "unknown_strategy"),
        (job_spec("bad-6", exchange="nosuchexchange"), "invalid_job_spec"),
        (job_spec("bad-7", report_interval_seconds=5), "invalid_job_spec"),
    ],
)
async def test_bad_job_specs_are_refused_and_create_nothing(
    app_client: tuple[TestClient, Identity, JobManager], spec: dict, code: str
) -> None:
    client, _, manager = app_client
    status, body = await Controller(client).start(spec)
    assert status == 422, body
    assert body["error"]["code"] == code
    assert manager.jobs == {}


async def test_floats_in_a_job_spec_are_refused(app_client: tuple[TestClient, Identity, JobManager]) -> None:
    client, _, manager = app_client
    raw = json.dumps({**job_spec("float-1"), "sample_seconds": 1.5}).encode()
    ctl = Controller(client)
    await ctl.ensure_audience()
    headers = ctl.headers("POST", "/v1/jobs/start", raw)
    response = await client.post("/v1/jobs/start", data=raw, headers=headers)
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "invalid_json"
    assert manager.jobs == {}


async def test_a_restart_with_another_spec_is_a_conflict(app_client: tuple[TestClient, Identity, JobManager]) -> None:
    client, _, manager = app_client
    ctl = Controller(client)
    assert (await ctl.start(job_spec("same-1")))[0] == 201
    status, body = await ctl.start(job_spec("same-1", params={"order_amount": "300"}))
    assert status == 409
    assert body["error"]["code"] == "job_conflict"
    assert manager.get("same-1").spec.to_wire()["strategy"]["params"]["order_amount"] == "200"


async def test_capacity_is_enforced(app_client: tuple[TestClient, Identity, JobManager]) -> None:
    client, _, manager = app_client
    manager.max_jobs = 1
    ctl = Controller(client)
    assert (await ctl.start(job_spec("cap-1")))[0] == 201
    status, body = await ctl.start(job_spec("cap-2"))
    assert status == 503
    assert body["error"]["code"] == "no_capacity"
    capacity = await (await client.get("/v1/capacity")).json()
    assert capacity["active_jobs"] == 1
    assert capacity["available"] == 0


async def test_bad_credentials_are_refused_and_the_job_waits(
    app_client: tuple[TestClient, Identity, JobManager],
) -> None:
    client, identity, manager = app_client
    ctl = Controller(client)
    assert (await ctl.start(job_spec("cred-1")))[0] == 201
    other = Identity.generate()
    payload = json.dumps({"job_id": "cred-1", "api_key": "k", "secret": "s"}).encode()
    running = (await ctl.status("cred-1"))["job_spec_digest"]
    other_spec = canonical_bytes(job_spec("cred-1", params={"order_amount": "300"}))

    def sealed(**fields: object) -> dict[str, str]:
        full = {"job_id": "cred-1", "api_key": "k", "secret": "s", "job_spec_digest": running}
        full["controller_key"] = CONTROLLER.public_hex
        opened = json.dumps({k: v for k, v in {**full, **fields}.items() if v is not None}).encode()
        return {"sealed_b64": base64.b64encode(seal(identity.sealing.public_hex, opened)).decode()}

    cases = [
        (sealed(job_spec_digest=hashlib.sha256(other_spec).hexdigest()), "credentials_for_another_spec"),
        (sealed(job_spec_digest=None), "credentials_for_another_spec"),
        (sealed(controller_key=SigningKey.from_seed(b"x" * 32).public_hex), "credentials_from_another_controller"),
        (sealed(controller_key=None), "credentials_from_another_controller"),
        ({"sealed_b64": "%%%"}, "invalid_request"),
        ({"sealed_b64": base64.b64encode(seal(other.sealing.public_hex, payload)).decode()}, "bad_seal"),
        (
            {
                "sealed_b64": base64.b64encode(
                    seal(
                        identity.sealing.public_hex,
                        json.dumps({"job_id": "other", "api_key": "k", "secret": "s"}).encode(),
                    )
                ).decode()
            },
            "credentials_for_another_job",
        ),
        (
            {"sealed_b64": base64.b64encode(seal(identity.sealing.public_hex, b'{"job_id": "cred-1"}')).decode()},
            "bad_credentials",
        ),
    ]
    for body, code in cases:
        status, answer = await ctl.call("POST", "/v1/jobs/cred-1/credentials", body)
        assert status == 422, answer
        assert answer["error"]["code"] == code
        assert manager.get("cred-1").state == "pending_credentials"
        assert manager.get("cred-1").gateway is None
    status, answer = await ctl.call("POST", "/v1/jobs/nope/credentials", {"sealed_b64": "AA=="})
    assert status == 404
    assert answer["error"]["code"] == "unknown_job"


async def test_stop_before_credentials_and_report_cursor_errors(
    app_client: tuple[TestClient, Identity, JobManager],
) -> None:
    client, _, _manager = app_client
    ctl = Controller(client)
    assert (await ctl.start(job_spec("early-1")))[0] == 201
    status, body = await ctl.call("GET", "/v1/jobs/early-1/report?after=abc")
    assert status == 422
    status, body = await ctl.call("GET", "/v1/jobs/early-1/report")
    assert status == 200
    assert body["reports"] == []
    status, body = await ctl.call("POST", "/v1/jobs/stop", {"job_id": "early-1"})
    assert status == 202
    assert body["state"] == "stopped"
    status, body = await ctl.call("POST", "/v1/jobs/early-1/resume")
    assert status == 409
    assert body["error"]["code"] == "not_halted"


async def test_a_refusal_of_the_job_manager_is_an_api_error_with_the_request_id(
    app_client: tuple[TestClient, Identity, JobManager],
) -> None:
    """Every route's JobError goes through one middleware: its status, code and message, and the request's id."""
    client, _, _manager = app_client
    ctl = Controller(client)
    await ctl.ensure_audience()
    for method, path, status, code in [
        ("GET", "/v1/jobs/none-1/status", 404, "unknown_job"),
        ("GET", "/v1/jobs/none-1/report", 404, "unknown_job"),
        ("POST", "/v1/jobs/none-1/resume", 404, "unknown_job"),
        ("DELETE", "/v1/jobs/none-1/credentials", 404, "unknown_job"),
    ]:
        headers = {**ctl.headers(method, path, b""), "X-Request-ID": f"rid-{code}-{method}"}
        response = await client.request(method, path, data=b"", headers=headers)
        assert response.status == status
        assert await response.json() == {
            "error": {"code": code, "message": "no job none-1 on this executor", "request_id": f"rid-{code}-{method}"}
        }
        assert response.headers["X-Request-ID"] == f"rid-{code}-{method}"


async def test_a_repeated_start_answers_200_as_the_spec_documents(
    app_client: tuple[TestClient, Identity, JobManager],
) -> None:
    """Found by tests/fuzz/test_api_executor.py: the retried start's 200 (idempotent by job id) was undocumented,
    so its JobStatus body was checked against the `default` Error schema."""
    client, _, _ = app_client
    controller = Controller(client)
    first, _ = await controller.start(job_spec("start-twice"))
    again, body = await controller.start(job_spec("start-twice"))
    assert (first, again) == (201, 200)
    spec = yaml.safe_load((Path(__file__).resolve().parents[2] / "docs" / "api" / "executor-v1.yaml").read_text())
    documented = spec["paths"]["/v1/jobs/start"]["post"]["responses"]
    for status in ("200", "201"):
        assert documented[status]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/JobStatus"}
    assert set(spec["components"]["schemas"]["JobStatus"]["required"]) <= set(body)
