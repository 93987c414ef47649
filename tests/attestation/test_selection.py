"""Executor selection: round-robin with nothing known, never a revoked or failed executor, more free capacity
first, then fewer verification failures."""

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
