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


def test_starts_serves_and_stops_on_sigterm() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "executor", "--port", str(port)],
        cwd=ROOT,
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
    env = {**os.environ, "EXECUTOR_PORT": "abc"}
    result = subprocess.run(
        [sys.executable, "-m", "executor"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert result.stderr == "configuration error: EXECUTOR_PORT must be an integer, got 'abc'\n"
