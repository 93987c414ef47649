"""`make demo`'s launcher: everything comes up green, and Ctrl-C leaves no process behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from devnet.ports import free_port
from tests.plugins.require import requires

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.chain]


def processes_with(marker: str) -> list[int]:
    """Pids whose environment carries `marker` (every process the launcher starts inherits its data dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def wait_until(predicate, *, timeout: float, step: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


@requires("Anvil (node_modules/.bin/anvil)", (ROOT / "node_modules" / ".bin" / "anvil").exists(), "npm ci")
def test_demo_comes_up_green_and_ctrl_c_leaves_nothing(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("web", "redis", "anvil", "executor", "exchange", "pccs", "easyenclave")}
    marker = f"MRMARKET_DATA_DIR={tmp_path}"
    env = {
        k: v
        for k, v in os.environ.items()
        # The demo runs on its own defaults: embedded Redis, SQLite, dev profile.
        if k not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL", "DATABASE_URL", "REDIS_KEY_PREFIX", "CELERY_DEFAULT_QUEUE"}
    }
    env["MRMARKET_DATA_DIR"] = str(tmp_path)
    argv = [sys.executable, "-m", "devnet.launch"]
    for name, port in ports.items():
        argv += [f"--{name}-port", str(port)]
    launcher = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    stdout = launcher.stdout
    assert stdout is not None
    reader = threading.Thread(target=lambda: output.extend(iter(stdout.readline, "")), daemon=True)
    reader.start()
    base = f"http://127.0.0.1:{ports['web']}"
    try:

        def ready() -> bool:
            if launcher.poll() is not None:
                pytest.fail("the launcher stopped early:\n" + "".join(output[-60:]))
            try:
                return httpx.get(f"{base}/readyz", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_until(ready, timeout=180), "".join(output[-80:])
        checks = httpx.get(f"{base}/readyz", timeout=5).json()["checks"]
        assert all(c["ok"] for c in checks.values()), checks
        assert "detail" not in checks["chain_rpc"]  # anonymous callers get states only
        # The demo campaign was deployed, funded, and mirrored by the indexer running on beat + worker.
        state = json.loads((tmp_path / "devnet-chain.json").read_text())

        def indexed() -> bool:
            listing = httpx.get(f"{base}/api/v1/campaigns/?chain_id=31337", timeout=5).json()
            return any(
                c["address"] == state["campaign"].lower() and c["funded"] and c["pair"] == "MMT/USDT" for c in listing
            )

        assert wait_until(indexed, timeout=60), "the demo campaign never reached the API"
        # The devnet exchange answers ccxt's market list with the campaign's market.
        info = httpx.get(f"http://127.0.0.1:{ports['exchange']}/api/v3/exchangeInfo", timeout=5).json()
        assert "MMTUSDT" in {s["symbol"] for s in info["symbols"]}

        # The launcher printed every URL and the demo login.
        text = "".join(output)
        for url in (f"{base}/admin/", f"http://127.0.0.1:{ports['executor']}/v1/health", f"127.0.0.1:{ports['anvil']}"):
            assert url in text
        creds = json.loads((tmp_path / "demo-admin.json").read_text())
        assert f"{creds['username']} / {creds['password']}" in text

        with httpx.Client(base_url=base, timeout=10) as browser:
            login_page = browser.get("/admin/login/")
            found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text)
            assert found is not None
            csrf = found.group(1)
            browser.post(
                "/admin/login/?next=/admin/system-status/",
                data={**creds, "csrfmiddlewaretoken": csrf, "next": "/admin/system-status/"},
                headers={"Referer": f"{base}/admin/login/"},
            )
            status = browser.get("/admin/system-status/")
            staff_checks = browser.get("/readyz").json()["checks"]
            assert staff_checks["chain_rpc"]["detail"] == "chain id 31337"

            # The demo ends with a market-making order running on the devnet exchange, visible in the admin.
            def mm_order_running() -> bool:
                listing = browser.get("/admin/execution/mmorder/?state__exact=running")
                return listing.status_code == 200 and "MMT/USDT" in listing.text

            assert wait_until(mm_order_running, timeout=150), "".join(output[-60:])
            # …on an executor that passed attestation through the dev quote authority (not hardware-attested).
            executors = browser.get("/api/v1/attestation/executors/").json()
            assert [e["hardware_attested"] for e in executors] == [False]
            registry = browser.get("/admin/attestation/executorrecord/")
            assert "NOT hardware-attested" in registry.text
        assert status.status_code == 200
        for component in ("workers", "beat", "database", "redis", "chain_rpc", "executors", "easyenclave"):
            row = re.search(rf'data-component="{component}">.*?class="state st-(\w+)"', status.text, re.S)
            assert row is not None, component
            assert row.group(1) == "ok", (component, row.group(1))
        assert "control plane verified (NOT hardware-attested (dev root)" in status.text
        assert 'data-component="alerts">' in status.text

        started = processes_with(marker)
        # redis, anvil, web, worker (+ its pool), beat, executor, exchange, tdx, pccs, easyenclave
        assert len(started) >= 10, started
    finally:
        launcher.send_signal(signal.SIGINT)  # what Ctrl-C sends
        try:
            launcher.wait(timeout=30)
        except subprocess.TimeoutExpired:
            launcher.kill()
            pytest.fail("the launcher did not stop within 30 s of Ctrl-C")
    leftover: list[int] = []

    def none_left() -> bool:
        leftover[:] = processes_with(marker)
        return not leftover

    assert wait_until(none_left, timeout=15), f"processes left behind: {leftover}"
