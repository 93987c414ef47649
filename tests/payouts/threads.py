"""Run works at the same instant in threads of their own (each with its own database connection): the race
tests of the oracle's transactions and closes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connections


def at_once(works: list[Callable[[], Any]]) -> list[Any]:
    """Each work in its own thread (own connection), released together; results or exceptions, in order."""
    barrier = threading.Barrier(len(works))
    results: list[Any] = [None] * len(works)

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = works[i]()
        except Exception as exc:  # collected, asserted by the caller
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(works))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results
