"""Two workers on the same order at once (tasks must be safe when two run together): two starts make one
job with one credential delivery and one transition of each kind; two report pulls store each report once and
book each fill once. PostgreSQL only — SQLite serializes writers itself, so it cannot show a race."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections

from attestation.models import ExecutorRecord
from execution import jobs
from execution.models import ExecutionReport, LedgerTransaction, MMOrder
from tests.execution.executor_thread import manager_of
from tests.execution.running_job import executor_reports, stop_and_check, wait
from tests.plugins.require import require_postgresql

# The test executor runs no TD: its keys pass through the gate stand-in (conftest.py).
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
    pytest.mark.usefixtures("gate_stand_in"),
]


def together(n: int, work: Callable[[], Any]) -> list[Any]:
    """Run `work` in `n` threads released at once; the results, or the exceptions raised."""
    barrier = threading.Barrier(n)
    results: list[Any] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(work())
        except Exception as exc:  # collected, asserted by the caller
            results.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    require_postgresql("SQLite serializes writers itself; races need PostgreSQL")


def test_two_starts_at_once_make_one_job(order: MMOrder, executor: tuple[str, dict[str, Any]]) -> None:
    results = together(3, lambda: jobs.mm_order_start_job(order_id=order.pk).state)
    assert all(not isinstance(r, Exception) for r in results), results
    started = MMOrder.objects.get(pk=order.pk)
    assert started.state == "running"
    manager = manager_of(executor[1])
    assert list(manager.jobs).count(started.job_id) == 1
    assert [t.event for t in started.transitions.all()] == ["start", "job_running"]
    assert manager.get(started.job_id).gateway is not None  # credentials arrived (once: a second is refused)
    stop_and_check(started)


def test_two_report_pulls_at_once_store_and_book_each_once(order: MMOrder) -> None:
    order = jobs.mm_order_start_job(order_id=order.pk)
    ExecutorRecord.objects.get_or_create(url=order.executor_url)  # the registry row the attested gate would make
    wait(lambda: len(executor_reports(order)) >= 2, timeout=60)  # nothing pulled yet: no beat runs here
    results = together(3, lambda: jobs.mm_order_pull_reports(order_id=order.pk))
    assert all(not isinstance(r, Exception) for r in results), results
    stored = list(ExecutionReport.objects.filter(order=order).order_by("sequence"))
    assert len(stored) >= 2
    assert [r.sequence for r in stored] == list(range(len(stored)))
    assert sum(results) == len(stored)  # each report counted by exactly one of the pulls
    fills = sum(r.fills for r in stored)
    assert LedgerTransaction.objects.filter(key__startswith=f"o{order.pk}-fill-").count() == fills
    registry = ExecutorRecord.objects.get(url=order.executor_url)
    assert registry.reports_accepted == len(stored)  # reputation counts each report once, not once per worker
    stop_and_check(order)
