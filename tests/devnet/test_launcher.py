"""`make demo`'s launcher: everything comes up green with no alert, Ctrl-C leaves no process behind, and a
second `make demo` on the same state resumes: ready again, no error, the same MM order running."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from devnet.ports import free_port
from tests.plugins.require import requires

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.chain, pytest.mark.timeout(900)]


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


class Demo:
    """One launcher run on a data directory and fixed ports, its output collected."""

    def __init__(self, data_dir: Path, ports: dict[str, int]) -> None:
        env = {
            k: v
            for k, v in os.environ.items()
            # The demo runs on its own defaults: embedded Redis, SQLite, dev profile.
            if k
            not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL", "DATABASE_URL", "REDIS_KEY_PREFIX", "CELERY_DEFAULT_QUEUE"}
        }
        env["MRMARKET_DATA_DIR"] = str(data_dir)
        env["RECONCILE_INTERVAL_SECONDS"] = "5"  # many passes while the test watches, not one a minute
        argv = [sys.executable, "-m", "devnet.launch"]
        for name, port in ports.items():
            argv += [f"--{name}-port", str(port)]
        self.asked = f"http://127.0.0.1:{ports['web']}"
        self.output: list[str] = []
        self.process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        stdout = self.process.stdout
        assert stdout is not None
        threading.Thread(target=lambda: self.output.extend(iter(stdout.readline, "")), daemon=True).start()

    @property
    def base(self) -> str:
        """The web URL the launcher printed (the port asked for, unless it was taken)."""
        found = re.search(r"\[demo\] web: +(http://127\.0\.0\.1:\d+)/", self.text)
        return found.group(1) if found else self.asked

    @property
    def text(self) -> str:
        return "".join(self.output)

    def tail(self, lines: int = 80) -> str:
        return "".join(self.output[-lines:])

    def wait_ready(self) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                pytest.fail("the launcher stopped early:\n" + self.tail())
            try:
                return httpx.get(f"{self.base}/readyz", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_until(ready, timeout=180), self.tail()

    def reconciliations(self) -> int:
        return len(re.findall(r"Task execution\.reconcile\[[^]]+\] succeeded", self.text))

    def ctrl_c(self, marker: str) -> None:
        self.process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            pytest.fail("the launcher did not stop within 30 s of Ctrl-C")
        leftover: list[int] = []

        def none_left() -> bool:
            leftover[:] = processes_with(marker)
            return not leftover

        assert wait_until(none_left, timeout=15), f"processes left behind: {leftover}"


def staff_browser(base: str, creds: dict[str, str]) -> httpx.Client:
    browser = httpx.Client(base_url=base, timeout=10)
    login_page = browser.get("/admin/login/")
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text)
    assert found is not None
    browser.post(
        "/admin/login/?next=/admin/",
        data={**creds, "csrfmiddlewaretoken": found.group(1), "next": "/admin/"},
        headers={"Referer": f"{base}/admin/login/"},
    )
    return browser


def status_rows(browser: httpx.Client) -> dict[str, str]:
    status = browser.get("/admin/system-status/")
    assert status.status_code == 200
    rows = re.findall(r'data-component="(\w+)">.*?class="state st-(\w+)"', status.text, re.S)
    return dict(rows)


def running_orders(browser: httpx.Client) -> list[dict[str, Any]]:
    orders: list[dict[str, Any]] = browser.get("/api/v1/execution/mm-orders").json()
    return [o for o in orders if o["state"] == "running" and o["symbol"] == "MMT/USDT"]


# What a second start must not print: the bootstrap crash a restart used to hit, and any unhandled error.
ERRORS = ("LedgerConflict", "Traceback", "raised unexpected")


@requires("Anvil (node_modules/.bin/anvil)", (ROOT / "node_modules" / ".bin" / "anvil").exists(), "npm ci")
def test_demo_comes_up_green_and_resumes_after_ctrl_c(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("web", "redis", "anvil", "executor", "exchange", "pccs", "easyenclave")}
    marker = f"MRMARKET_DATA_DIR={tmp_path}"
    demo = Demo(tmp_path, ports)
    try:
        demo.wait_ready()
        base = demo.base
        assert base == f"http://127.0.0.1:{ports['web']}", "the free port asked for was not used"
        checks = httpx.get(f"{base}/readyz", timeout=5).json()["checks"]
        assert all(c["ok"] for c in checks.values()), checks
        assert "detail" not in checks["chain_rpc"]  # anonymous callers get states only
        # The first URL the launcher prints answers: what runs, and links to the admin, executors and the API.
        home = httpx.get(f"{base}/", timeout=10)
        assert home.status_code == 200
        for href in ('href="/admin/"', 'href="/executors/"', 'href="/api/v1/schema"'):
            assert href in home.text
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
        for url in (f"{base}/", f"{base}/admin/", f"http://127.0.0.1:{ports['executor']}/v1/health"):
            assert url in demo.text
        assert f"127.0.0.1:{ports['anvil']}" in demo.text
        creds = json.loads((tmp_path / "demo-admin.json").read_text())
        assert f"{creds['username']} / {creds['password']}" in demo.text

        with contextlib.closing(staff_browser(base, creds)) as browser:
            staff_checks = browser.get("/readyz").json()["checks"]
            assert staff_checks["chain_rpc"]["detail"] == "chain id 31337"

            # The demo ends with a market-making order running on the devnet exchange, visible in the admin.
            def mm_order_running() -> bool:
                listing = browser.get("/admin/execution/mmorder/?state__exact=running")
                return listing.status_code == 200 and "MMT/USDT" in listing.text

            assert wait_until(mm_order_running, timeout=150), demo.tail(60)
            (order,) = running_orders(browser)
            # …on an executor that passed attestation through the dev quote authority (not hardware-attested).
            executors = browser.get("/api/v1/attestation/executors/").json()
            assert [e["hardware_attested"] for e in executors] == [False]
            registry = browser.get("/admin/attestation/executorrecord/")
            assert "NOT hardware-attested" in registry.text
            # The public proof page lists it, marked dev root, with its evidence, which the offline verifier accepts
            # (and refuses once a byte of it is changed).
            proof = httpx.get(f"{base}/proof/", timeout=10).text
            assert "not hardware-attested (dev root)" in proof
            (evidence_url,) = re.findall(r'data-evidence-url="([^"]+)"', proof)
            evidence = tmp_path / "evidence.json"
            evidence.write_bytes(httpx.get(base + evidence_url, timeout=10).content)
            (tmp_path / "allowlist.json").write_bytes(
                httpx.get(f"{base}/api/v1/attestation/allowlist", timeout=10).content
            )
            verify = [sys.executable, "-m", "attestation.offline", "verify", str(evidence)]
            pinned = ["--allowlist", str(tmp_path / "allowlist.json"), "--root-ca", str(tmp_path / "tdx-root.der")]
            checked = subprocess.run([*verify, *pinned], cwd=ROOT, capture_output=True, text=True, timeout=60)
            assert checked.returncode == 0, checked.stdout + checked.stderr
            bent = bytearray(evidence.read_bytes())
            bent[bent.index(b'"quote_b64":"') + 300] ^= 0x01
            evidence.write_bytes(bytes(bent))
            refused = subprocess.run([*verify, *pinned], cwd=ROOT, capture_output=True, text=True, timeout=60)
            assert refused.returncode in (1, 2), refused.stdout
            # A fresh demo raises no alert: reconciliation ran over every account (the operator's trading and
            # treasury keys of one exchange account, custody) and found the ledger in agreement.
            seen = demo.reconciliations()
            assert wait_until(lambda: demo.reconciliations() >= seen + 2, timeout=60), demo.tail(60)
            rows = status_rows(browser)
            for component in ("workers", "beat", "database", "redis", "chain_rpc", "executors", "easyenclave"):
                assert rows.get(component) == "ok", (component, rows.get(component))
            assert rows.get("alerts") == "ok", browser.get("/api/v1/system/status").text
            status = browser.get("/admin/system-status/").text
            assert "control plane verified (NOT hardware-attested (dev root)" in status

        started = processes_with(marker)
        # redis, anvil, web, worker (+ its pool), beat, executor, exchange, tdx, pccs, easyenclave
        assert len(started) >= 10, started
    finally:
        demo.ctrl_c(marker)

    # `make demo` again on the same checkout: it resumes where it stopped.
    again = Demo(tmp_path, ports)
    try:
        again.wait_ready()
        # The same ports as before when free (a stopped run's connections do not make them taken).
        assert again.base == base, again.tail()
        with contextlib.closing(staff_browser(base, creds)) as browser:

            def resumed() -> list[dict[str, Any]]:
                return [o for o in running_orders(browser) if o["id"] == order["id"]]

            assert wait_until(lambda: bool(resumed()), timeout=150), again.tail(60)
            (now,) = resumed()
            assert running_orders(browser) == [now], "a second demo order was created instead of resuming"
            # Still the job it ran, or (the restarted executor knowing none of it) a new one for the same order.
            events = [t["event"] for t in now["timeline"]]
            assert now["job_id"] == order["job_id"] or events[-2:] == ["job_lost", "job_running"], events
            seen = again.reconciliations()
            assert wait_until(lambda: again.reconciliations() >= seen + 2, timeout=60), again.tail(60)
            assert status_rows(browser).get("alerts") == "ok", browser.get("/api/v1/system/status").text
        for error in ERRORS:
            assert error not in again.text, again.tail(120)
        assert "resumes (running)" in again.text
    finally:
        again.ctrl_c(marker)
