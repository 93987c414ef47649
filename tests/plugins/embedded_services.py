"""Starts the embedded Redis before Django's settings are read, when REDIS_URL is not set.

So `make test` runs unchanged on CI (REDIS_URL and DATABASE_URL point at real servers) and on a bare machine
(embedded Redis, SQLite). Loaded with `-p` from pyproject's addopts.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

_embedded: Any = None


@pytest.hookimpl(hookwrapper=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: Any, args: list[str]) -> Generator[None]:
    # A hookwrapper runs before every plain implementation, pytest-django's settings loading included.
    global _embedded
    if not os.environ.get("REDIS_URL"):
        from devnet.redis import EmbeddedRedis

        _embedded = EmbeddedRedis().start()
        os.environ["REDIS_URL"] = _embedded.url
    # Keep test queues and keys apart from a demo or another run sharing the same Redis server.
    os.environ.setdefault("REDIS_KEY_PREFIX", f"mrmarket-test-{os.getpid()}")
    os.environ.setdefault("CELERY_DEFAULT_QUEUE", f"mrmarket-test-{os.getpid()}")
    yield


def pytest_unconfigure(config: pytest.Config) -> None:
    global _embedded
    if _embedded is not None:
        _embedded.stop()
        _embedded = None
