"""/healthz, /readyz (one entry per dependency) and the checks behind them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from devnet.ports import free_port
from mrmarket import health, heartbeats
from mrmarket.roles import Role
from tests.factories import user_with

pytestmark = pytest.mark.django_db


def test_healthz_is_liveness_only(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_readyz_lists_every_dependency_with_time(client: Client, redis_clean: None, settings) -> None:
    settings.READYZ_REQUIRED = ["database", "redis", "broker", "channel_layer"]
    client.force_login(user_with(Role.STAFF))
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert set(body["checks"]) == {
        "database",
        "redis",
        "broker",
        "channel_layer",
        "chain_rpc",
        "workers",
        "beat",
    }
    for name in ("database", "redis", "broker", "channel_layer"):
        assert body["checks"][name]["ok"] is True, (name, body["checks"][name])
        assert body["checks"][name]["required"] is True
    for entry in body["checks"].values():
        checked = datetime.fromisoformat(entry["checked_at"])
        assert datetime.now(tz=UTC) - checked < timedelta(seconds=30)
        assert entry["detail"]
    # No worker has sent a heartbeat: reported, but not required here.
    assert body["checks"]["workers"]["ok"] is False


def test_readyz_is_503_when_a_required_dependency_fails(client: Client, redis_clean: None, settings) -> None:
    settings.READYZ_REQUIRED = ["database", "workers"]
    client.force_login(user_with(Role.STAFF))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "fail"
    assert response.json()["checks"]["workers"]["detail"] == "no worker heartbeat yet"


def test_public_readyz_says_state_per_check_and_no_detail(client: Client, redis_clean: None, settings) -> None:
    settings.READYZ_REQUIRED = ["database", "workers"]
    settings.CHAIN_RPC_URL = f"http://127.0.0.1:{free_port()}/v3/LEAKY-API-KEY-0123456789"
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["workers"] == {"state": "fail", "ok": False, "required": True}
    assert checks["chain_rpc"] == {"state": "fail", "ok": False, "required": False}
    assert all(set(entry) == {"state", "ok", "required"} for entry in checks.values())
    assert "LEAKY" not in response.content.decode()
    assert "127.0.0.1" not in response.content.decode()


def test_a_check_error_never_quotes_a_url_path_query_or_password() -> None:
    class Failed(Exception):
        pass

    exc = Failed("Client error '401 Unauthorized' for url 'https://u:pw@rpc.example:8545/v3/KEY123?apikey=Q9'")
    text = health.error_text(exc)
    assert text == "Failed: Client error '401 Unauthorized' for url 'https://rpc.example:8545/…'"


def test_staff_readyz_detail_has_no_url_secret(client: Client, redis_clean: None, settings) -> None:
    settings.CHAIN_RPC_URL = f"http://127.0.0.1:{free_port()}/v3/LEAKY-API-KEY-0123456789"
    client.force_login(user_with(Role.STAFF))
    body = client.get("/readyz").json()
    assert body["checks"]["chain_rpc"]["detail"]
    assert "LEAKY" not in str(body)


def test_readyz_runs_its_checks_once_per_cache_window(client: Client, settings, monkeypatch) -> None:
    settings.READYZ_CACHE_SECONDS = 60
    settings.READYZ_REQUIRED = ["database"]
    monkeypatch.setattr(health, "_readyz_cache", None)
    runs: list[int] = []
    real = health.run_checks

    def counting(names: object = health.READYZ_CHECKS) -> list[health.CheckResult]:
        runs.append(1)
        return real(["database"])

    monkeypatch.setattr(health, "run_checks", counting)
    for _ in range(5):
        assert client.get("/readyz").status_code == 200
    assert len(runs) == 1
    settings.READYZ_REQUIRED = ["database", "redis"]  # another configuration is another answer
    client.get("/readyz")
    assert len(runs) == 2


def test_workers_and_beat_follow_their_heartbeats(redis_clean: None, settings) -> None:
    settings.HEARTBEAT_INTERVAL_SECONDS = 10
    heartbeats.record("worker:w1", at=datetime.now(tz=UTC) - timedelta(seconds=5))
    heartbeats.record("beat", at=datetime.now(tz=UTC) - timedelta(seconds=95))
    workers, beat = health.run_checks(["workers", "beat"])
    assert workers.state == "ok"
    assert beat.state == "fail"
    assert "last heartbeat 95s ago" in beat.detail


def test_required_but_unconfigured_chain_fails(settings) -> None:
    settings.CHAIN_RPC_URL = ""
    settings.READYZ_REQUIRED = ["chain_rpc"]
    (result,) = health.run_checks(["chain_rpc"])
    assert result.state == "not_configured"
    assert result.ok is False
    settings.READYZ_REQUIRED = []
    (result,) = health.run_checks(["chain_rpc"])
    assert result.ok is True


def test_unreachable_chain_rpc_fails_with_reason(settings) -> None:
    settings.CHAIN_RPC_URL = f"http://127.0.0.1:{free_port()}"
    (result,) = health.run_checks(["chain_rpc"])
    assert result.state == "fail"
    assert result.detail.startswith("ConnectError")


@pytest.mark.chain
def test_chain_rpc_reports_the_chain_id(settings, anvil) -> None:
    settings.CHAIN_RPC_URL = anvil.url
    (result,) = health.run_checks(["chain_rpc"])
    assert (result.state, result.detail) == ("ok", "chain id 31337")


def test_unreachable_redis_fails_redis_check_only(settings) -> None:
    from mrmarket.redis import _client

    _client.cache_clear()
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    try:
        redis_result, db_result = health.run_checks(["redis", "database"])
    finally:
        _client.cache_clear()
    assert redis_result.state == "fail"
    assert "ConnectionError" in redis_result.detail
    assert db_result.state == "ok"


def test_unknown_check_name_is_refused() -> None:
    with pytest.raises(KeyError, match="unknown health checks: nope"):
        health.run_checks(["nope"])


def test_metrics_expose_dependency_gauges(client: Client, settings) -> None:
    settings.METRICS_TOKEN = ""
    client.get("/readyz")
    body = client.get("/metrics").content.decode()
    assert 'mrmarket_dependency_up{check="database"} 1.0' in body
    assert "django_http_requests_total_by_method_total" in body


def test_metrics_token_when_configured(client: Client, settings) -> None:
    settings.METRICS_TOKEN = "s3cret-metrics"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics").status_code == 200
