"""Fixtures shared by every test package."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator

import pytest

from mrmarket.observability.logging import make_formatter

pytest_plugins = ["tests.fixtures.chain", "tests.chaos.driver_plugin"]


class JsonLines(logging.Handler):
    """Collects log records rendered by the production JSON formatter, parsed back into dicts."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(make_formatter("json"))
        self.lines: list[dict] = []
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        line = json.loads(self.format(record))
        with self._lock:
            self.lines.append(line)

    def events(self, name: str) -> list[dict]:
        with self._lock:
            return [line for line in self.lines if line.get("event") == name]


@pytest.fixture
def json_logs() -> Iterator[JsonLines]:
    handler = JsonLines()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


@pytest.fixture
def redis_clean():
    """Empties this test run's heartbeats so each test starts without any."""
    from mrmarket.redis import get_redis, key

    get_redis().delete(key("heartbeats"))
    yield
    get_redis().delete(key("heartbeats"))
