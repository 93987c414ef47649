"""Executor selection: round-robin with nothing known, never a revoked or failed executor, more free capacity
first, then reputation: fewer verification failures, better uptime, fewer refused reports, more accepted ones."""

from __future__ import annotations

import pytest

from attestation.models import ExecutorRecord
from attestation.selection import NoExecutorAvailable, select_executor

pytestmark = pytest.mark.django_db
URLS = ["http://a", "http://b", "http://c"]


def test_round_robin_when_nothing_is_known() -> None:
    picks = [select_executor(URLS) for _ in range(6)]
    assert set(picks) == set(URLS)
    assert all(picks.count(u) == 2 for u in URLS)


def test_revoked_and_failed_executors_are_never_chosen() -> None:
    ExecutorRecord.objects.create(url="http://a", state=ExecutorRecord.State.REVOKED)
    ExecutorRecord.objects.create(url="http://b", state=ExecutorRecord.State.FAILED)
    assert {select_executor(URLS) for _ in range(5)} == {"http://c"}
    ExecutorRecord.objects.create(url="http://c", state=ExecutorRecord.State.REVOKED)
    with pytest.raises(NoExecutorAvailable):
        select_executor(URLS)


def test_capacity_then_reputation() -> None:
    ExecutorRecord.objects.create(url="http://a", state="verified", capacity_available=1)
    ExecutorRecord.objects.create(url="http://b", state="verified", capacity_available=5, verification_failures=3)
    ExecutorRecord.objects.create(url="http://c", state="verified", capacity_available=5)
    assert {select_executor(URLS) for _ in range(4)} == {"http://c"}


def test_reputation_order_uptime_then_report_quality() -> None:
    ExecutorRecord.objects.create(url="http://a", state="verified", capacity_available=5, checks_total=10, checks_ok=7)
    ExecutorRecord.objects.create(url="http://b", state="verified", capacity_available=5, checks_total=10, checks_ok=10)
    ExecutorRecord.objects.create(url="http://c", state="verified", capacity_available=5)  # never checked: 100 %
    assert {select_executor(URLS) for _ in range(6)} == {"http://b", "http://c"}
    ExecutorRecord.objects.filter(url="http://c").update(reports_refused=2)
    assert {select_executor(URLS) for _ in range(4)} == {"http://b"}
    ExecutorRecord.objects.filter(url="http://c").update(reports_refused=0, reports_accepted=9)
    assert {select_executor(URLS) for _ in range(4)} == {"http://c"}


def test_a_scheduled_check_counts_for_uptime_and_a_revoked_executor_stays_revoked() -> None:
    from attestation import services

    record = ExecutorRecord.objects.create(url="http://a", state="verified")
    services.executor_checked(executor_id=record.pk, ok=True, capacity=3)
    services.executor_checked(executor_id=record.pk, ok=False, unreachable=True)
    record.refresh_from_db()
    # Unreachable: out of selection, not failed (nothing says its build is bad; its jobs and reports stand).
    assert (record.checks_ok, record.checks_total, record.capacity_available, record.state) == (1, 2, 3, "unreachable")
    with pytest.raises(NoExecutorAvailable):
        select_executor(["http://a"])
    ExecutorRecord.objects.filter(pk=record.pk).update(state="revoked")
    services.executor_checked(executor_id=record.pk, ok=True, capacity=9)
    record.refresh_from_db()
    assert (record.state, record.capacity_available, record.checks_total) == ("revoked", 3, 2)
