"""The health registry: each app registers its own checks, and no check writes to the database."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection

from attestation.easyenclave import ControlPlaneVerdict, EasyEnclaveClient
from devnet.ports import free_port
from execution.models import Alert
from mrmarket import health
from mrmarket.selectors import STATUS_COMPONENTS

pytestmark = pytest.mark.django_db

WRITES = ("INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE")


def test_each_app_registers_its_own_checks() -> None:
    assert set(STATUS_COMPONENTS) | set(health.READYZ_CHECKS) <= set(health.CHECKS)
    owners = {name: check.__module__ for name, check in health.CHECKS.items() if name in STATUS_COMPONENTS}
    assert owners == {
        "queue": "mrmarket.health",
        "workers": "mrmarket.health",
        "beat": "mrmarket.health",
        "database": "mrmarket.health",
        "redis": "mrmarket.health",
        "broker": "mrmarket.health",
        "channel_layer": "mrmarket.health",
        "chain_rpc": "mrmarket.health",
        "executors": "attestation.health",
        "exchanges": "execution.health",
        "alerts": "execution.health",
        "easyenclave": "attestation.health",
    }


def test_a_name_cannot_be_taken_twice() -> None:
    with pytest.raises(ValueError, match="'database' is already registered"):
        health.register("database", lambda: ("ok", "another"))


def test_no_registered_check_writes_to_the_database(settings, redis_clean: None) -> None:
    # Configure every check so that it does its real work (and its failure paths), not a "not configured".
    settings.CHAIN_RPC_URL = f"http://127.0.0.1:{free_port()}"
    settings.EXCHANGE_API_URLS = {"binance": f"http://127.0.0.1:{free_port()}"}
    settings.EXECUTOR_URLS = [f"http://127.0.0.1:{free_port()}"]
    settings.EASYENCLAVE_URL = f"http://127.0.0.1:{free_port()}"
    settings.EASYENCLAVE_ALLOW_HTTP = True
    settings.HEALTHCHECK_TIMEOUT_SECONDS = 1
    Alert.objects.create(kind="test", message="an open alert", dedup_key="test:1")
    statements: list[str] = []

    def refuse_writes(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        statements.append(sql)
        if sql.lstrip().upper().startswith(WRITES):
            raise AssertionError(f"a health check wrote to the database: {sql[:200]}")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(refuse_writes):
        # In this thread, so that every statement passes through the wrapper; run_check turns an exception
        # (the wrapper's too) into a failed result, so the statements are checked after the fact as well.
        results = [health.run_check(name) for name in health.CHECKS]
    writes = [sql for sql in statements if sql.lstrip().upper().startswith(WRITES)]
    assert writes == []
    assert not [r for r in results if "AssertionError" in r.detail]
    assert any("alert" in sql for sql in statements)  # the wrapper saw the checks' reads


def test_easyenclave_reports_the_last_verification_without_verifying(settings) -> None:
    settings.EASYENCLAVE_URL = f"http://127.0.0.1:{free_port()}"
    settings.EASYENCLAVE_ALLOW_HTTP = True
    settings.EASYENCLAVE_VERIFY_SECONDS = 300
    client = EasyEnclaveClient()
    cache.delete(client._verdict_key())
    (result,) = health.run_checks(["easyenclave"])
    assert (result.state, result.detail) == (
        "fail",
        "control plane not verified in the last 300s (discovery verifies it)",
    )
    verdict = ControlPlaneVerdict(client.base_url, time.time(), "ab" * 48, "UpToDate", False, "02" + "11" * 32)
    cache.set(client._verdict_key(), verdict, timeout=60)
    try:
        (result,) = health.run_checks(["easyenclave"])
    finally:
        cache.delete(client._verdict_key())
    assert result.state == "ok"
    assert (
        result.detail
        == "control plane verified (NOT hardware-attested (dev root), MRTD abababababababab…, TCB UpToDate)"
    )
