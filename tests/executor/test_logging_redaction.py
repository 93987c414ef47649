"""The executor's own logging (its process holds plaintext exchange secrets): once a secret is registered, no
line carries it, whether structlog's (nested field, traceback) or the standard library's (aiohttp, asyncio)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from executor.api.app import create_app
from executor.api.keys import MANAGER_KEY
from executor.config import Config
from executor.engine.runner import JobRunner
from executor.identity import Identity
from tests.executor.harness import CONTROLLER, Controller, job_spec
from wire import redaction
from wire.keys import seal
from wire.redaction import redact_text

ROOT = Path(__file__).resolve().parents[2]
CANARY = "canary-exchange-secret-5f0c9a7e"

SCRIPT = f"""
import logging
from executor.logging import configure, get_logger
from wire.redaction import register_secret

configure(level="INFO", version="test")
register_secret({CANARY!r})
log = get_logger("executor.engine.runner")
log.info("credentials_seen", payload={{"job": "j1", "creds": {{"api_key": "k", "secret": {CANARY!r}}}}})
log.info("retry", detail=[{{"why": "exchange said bad signature for {CANARY}"}}])
try:
    raise RuntimeError("signature made with {CANARY} refused")
except RuntimeError:
    log.exception("tick_failed")
    logging.getLogger("aiohttp.server").exception("Error handling request")
logging.getLogger("asyncio").error("Task exception: %s", {CANARY!r})
"""


def test_executor_logs_never_carry_a_registered_secret() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    out = result.stdout + result.stderr
    assert CANARY not in out
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    events = [json.loads(line) for line in lines if line.startswith("{")]
    by_name = {e["event"]: e for e in events}
    assert by_name["credentials_seen"]["payload"] == {
        "job": "j1",
        "creds": {"api_key": "[redacted]", "secret": "[redacted]"},
    }
    assert by_name["retry"]["detail"] == [{"why": "exchange said bad signature for [redacted]"}]
    assert "signature made with [redacted] refused" in by_name["tick_failed"]["exception"]
    # The standard library's lines (tracebacks included) are masked too.
    assert "Error handling request" in result.stdout
    assert result.stdout.count("signature made with [redacted] refused") >= 2
    assert "Task exception: [redacted]" in result.stdout


async def test_the_executor_masks_the_secrets_it_is_handed_until_it_wipes_them(monkeypatch: pytest.MonkeyPatch) -> None:
    secret, password = "handed-secret-9d1e77ab", "handed-passphrase-41c2"

    async def no_exchange(self: JobRunner) -> None:  # the job never trades in this test
        await self._stop.wait()

    monkeypatch.setattr(JobRunner, "_run", no_exchange)
    identity = Identity.generate()
    app = create_app(Config(controller_key=CONTROLLER.public_hex), identity=identity)
    app[MANAGER_KEY]._markets_lookup = _markets
    async with TestClient(TestServer(app)) as client:
        ctl = Controller(client)
        assert (await ctl.start(job_spec("redact-1")))[0] == 201
        assert redact_text(f"x {secret} y") == f"x {secret} y"
        bound = {
            "job_spec_digest": (await ctl.status("redact-1"))["job_spec_digest"],
            "controller_key": CONTROLLER.public_hex,
        }
        payload = json.dumps({"job_id": "redact-1", "api_key": "k", "secret": secret, "password": password, **bound})
        sealed = base64.b64encode(seal(identity.sealing.public_hex, payload.encode())).decode()
        status, _ = await ctl.call("POST", "/v1/jobs/redact-1/credentials", {"sealed_b64": sealed})
        assert status == 202
        assert redact_text(f"x {secret} y {password}") == "x [redacted] y [redacted]"
        status, _ = await ctl.call("DELETE", "/v1/jobs/redact-1/credentials")  # revoke: wipe the key
        assert status in (200, 202)
    # The wiped key is gone from the process, the redaction registry included.
    assert secret not in redaction._secrets
    assert password not in redaction._secrets


async def _markets(exchange_id: str) -> frozenset[str]:
    return frozenset({"MMT/USDT"})
