"""Every log line of the process during a fuzz run, for the canary checks of both API fuzzers."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

from mrmarket.observability.logging import make_formatter


class Lines(logging.Handler):
    """Every record any logger emits, rendered by the production JSON formatter (tracebacks included)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(make_formatter("json"))
        self.lines: list[str] = []
        self.scanned = 0  # lines already searched for secrets
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        with self._lock:
            self.lines.append(line)

    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self.lines)


@contextlib.contextmanager
def capturing() -> Iterator[Lines]:
    """The root logger at DEBUG into a `Lines`, restored afterwards."""
    handler = Lines()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
