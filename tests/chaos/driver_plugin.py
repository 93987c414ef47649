"""The crash driver's parent process, one per test session (a plugin of tests/conftest.py, so that every crash
module shares it: it imports Django and the flows once, then forks a worker per run). Nothing here imports Django
at import time: plugins load before Django's settings are."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class DriverRun:
    returncode: int
    steps: list[dict[str, Any]]
    done: bool
    output: str

    @property
    def killed(self) -> bool:
        return self.returncode == -9


class Driver:
    """`tests/chaos/crash_driver.py`, imported once, forking one worker per `run` against this session's test
    database (committed: the crash tests are transactional)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.chaos.crash_driver"], cwd=ROOT, env=child_env({}),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.dir = Path(tempfile.mkdtemp(prefix="chaos-driver-"))
        self.runs = 0

    def run(
        self, flow_name: str, kill_at: int, when: str, *, settings: dict[str, Any], args: dict[str, Any]
    ) -> DriverRun:
        self.runs += 1
        out = self.dir / f"run-{self.runs}.log"
        request = {"flow": flow_name, "kill_at": kill_at, "when": when, "settings": settings, "args": args,
                   "out": str(out)}  # fmt: skip
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        assert answer, "the crash driver's parent died"
        text = out.read_text()
        lines = [json.loads(line) for line in text.splitlines() if line.startswith('{"')]
        steps = [line for line in lines if "n" in line and "machine" in line]
        return DriverRun(json.loads(answer)["returncode"], steps, any(line.get("done") for line in lines), text[-4000:])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture(scope="session")
def crash_driver(django_db_setup: None, django_db_blocker: Any) -> Iterator[Driver]:
    with django_db_blocker.unblock():
        running = Driver()
    try:
        yield running
    finally:
        running.close()


def child_env(settings: dict[str, Any], **overrides: str) -> dict[str, str]:
    """The environment of a driver or worker process: this test's database (committed: the test is transactional),
    Redis, queue and key prefix, and the devnet's settings."""
    from django.db import connection

    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "mrmarket.settings.test",
        "PYTHONPATH": str(ROOT),
        "CRASH_SETTINGS": json.dumps(settings),
        "EXECUTOR_URLS": "",
        "EASYENCLAVE_URL": "",
        **overrides,
    }
