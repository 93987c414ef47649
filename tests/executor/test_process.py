"""`python -m executor` as a process: starts, answers, stops cleanly on SIGTERM; bad config is one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from devnet.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
CONTROLLER_KEY = "ab" * 32


def test_starts_serves_and_stops_on_sigterm() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "executor", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "EXECUTOR_CONTROLLER_KEY": CONTROLLER_KEY},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the executor did not answer"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert lines[0]["event"] == "executor_starting"
    assert lines[0]["port"] == port
    assert lines[-1]["event"] == "executor_stopped"
    assert "Traceback" not in err


def test_bad_port_is_one_line_naming_the_variable() -> None:
    env = {**os.environ, "EXECUTOR_PORT": "abc", "EXECUTOR_CONTROLLER_KEY": CONTROLLER_KEY}
    result = subprocess.run(
        [sys.executable, "-m", "executor"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert result.stderr == "configuration error: EXECUTOR_PORT must be an integer, got 'abc'\n"


def test_a_plain_http_exchange_outside_dev_mode_refuses_to_start() -> None:
    """A host re-rooting exchange traffic through a plain http endpoint of its own: the executor does not start."""
    urls = json.dumps({"binance": "http://10.0.0.1:8080"})
    env = {**os.environ, "EXECUTOR_CONTROLLER_KEY": CONTROLLER_KEY, "EXECUTOR_EXCHANGE_API_URLS": urls}
    env.pop("EXECUTOR_DEV", None)
    result = subprocess.run(
        [sys.executable, "-m", "executor"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert result.stderr.startswith("configuration error: EXECUTOR_EXCHANGE_API_URLS['binance']")
    assert "https only" in result.stderr


def test_without_a_controller_key_the_executor_refuses_to_start() -> None:
    env = {k: v for k, v in os.environ.items() if k != "EXECUTOR_CONTROLLER_KEY"}
    result = subprocess.run(
        [sys.executable, "-m", "executor"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "EXECUTOR_CONTROLLER_KEY" in result.stderr
