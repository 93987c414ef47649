"""The system as separate processes, for the two-of-everything run: each Django process through its own
management command (`serve`, `worker`, `beat`, as the demo and the deployment start them), each executor as
`python -m executor`, in a session of its own so that SIGKILL takes it and its children at once.

Workers start through `python -m tests.reliability.processes worker ...`: the real `worker` command with the trust
gate replaced by the stand-in of tests/execution/gate_stand_in.py (these executors run no TD), its vouched keys
kept in Redis so that what one worker vouched for at provisioning the other accepts at report ingestion."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from devnet.ports import wait_for_port

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


@dataclass
class Process:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    port: int | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _out: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> Process:
        self._out = self.log.open("ab")
        self.popen = subprocess.Popen(
            self.argv, cwd=ROOT, env=self.env, stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True
        )
        return self

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_ready(self, timeout: float = 60.0) -> None:
        if self.port is None:
            return
        deadline = time.monotonic() + timeout
        while not wait_for_port(self.port, timeout=0.5):
            if not self.alive or time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not start: {self.tail()}")

    def kill(self) -> None:
        """SIGKILL to the process and every child of its session: no handler runs, nothing is flushed."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)
        if self._out is not None:
            self._out.close()

    def stop(self) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
        if self._out is not None:
            self._out.close()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def web(name: str, port: int, env: dict[str, str], logs: Path) -> Process:
    argv = [PY, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(port)]
    return Process(name, argv, env, logs / f"{name}.log", port=port)


def worker(name: str, env: dict[str, str], logs: Path) -> Process:
    argv = [PY, "-m", "tests.reliability.processes", "worker", "--hostname", f"{name}@%h", "--concurrency", "2"]
    return Process(name, argv, env, logs / f"{name}.log")


def beat(env: dict[str, str], logs: Path) -> Process:
    return Process("beat", [PY, "manage.py", "beat"], env, logs / "beat.log")


def executor(name: str, port: int, env: dict[str, str], logs: Path) -> Process:
    argv = [PY, "-m", "executor", "--host", "127.0.0.1", "--port", str(port)]
    return Process(name, argv, env, logs / f"{name}.log", port=port)


def executor_healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/v1/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def stop_all(processes: Iterator[Process] | list[Process]) -> None:
    for process in processes:
        process.stop()


# --- inside a worker process -------------------------------------------------------------------------------------


class RedisVouched:
    """The stand-in's `vouched` map (signing key → executor URL), shared by every worker through Redis."""

    def __init__(self) -> None:
        from mrmarket.redis import get_redis, key

        self._redis, self._key = get_redis(), key("gate-stand-in", "vouched")

    def __setitem__(self, signing_key: str, url: str) -> None:
        self._redis.hset(self._key, signing_key, url)

    def get(self, signing_key: str) -> str | None:
        value: Any = self._redis.hget(self._key, signing_key)
        return value.decode() if isinstance(value, bytes) else value


def _run_worker(argv: list[str]) -> None:
    import django

    django.setup()
    from django.core.management import call_command

    from execution import provisioning, reports
    from tests.execution.gate_stand_in import GateStandIn

    stand_in = GateStandIn()
    stand_in.vouched = RedisVouched()  # type: ignore[assignment]
    provisioning.attested_identity = stand_in.identity
    reports.signing_key_attested = stand_in.signing_key_attested
    call_command("worker", *argv)


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        _run_worker(sys.argv[2:])
    else:
        raise SystemExit("usage: python -m tests.reliability.processes worker [--hostname H] [--concurrency N]")
