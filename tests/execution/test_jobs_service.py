"""The job half of the loop against a real executor and the simulator (no chain): start is idempotent and
resumes after a crash, an unreachable executor changes nothing, reports are verified before anything is
stored (a broken signature, a forged key, a gap: refused, alerted, nothing stored), stop releases the job only
once the executor confirms nothing rests, and credentials reach the executor only sealed."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from attestation.interface import ExecutorIdentity
from attestation.models import AttestationRecord, ExecutorRecord
from execution import accounts, jobs, reports, services
from execution.domain import mm_order as mm
from execution.errors import ExecutorUnavailable, InvalidOrderTransition, ReportRejected
from execution.executor_client import ExecutorClient
from execution.models import Alert, ExecutionReport, LedgerTransaction, MMOrder
from tests.execution.executor_thread import manager_of
from tests.execution.running_job import executor_reports, stop_and_check, wait
from wire.keys import SigningKey
from wire.reports import SignedReport

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(120)]
# The test executor runs no TD: the tests that start its jobs let its keys through the gate stand-in
# (conftest.py); the one that shows the real gate refusing it does not.
stand_in = pytest.mark.usefixtures("gate_stand_in")


@stand_in
def test_start_is_idempotent_and_resumes_after_a_crash(
    order: MMOrder, executor: tuple[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = manager_of(executor[1])
    # A worker that died right after the START transition: state starting, spec saved, executor never called.
    with monkeypatch.context() as patch:
        patch.setattr(jobs, "provisioning_identity", _killed)
        with pytest.raises(RuntimeError):
            jobs.mm_order_start_job(order_id=order.pk)
    order.refresh_from_db()
    assert order.state == "starting"
    assert order.job_id.startswith(f"mmo{order.pk}-")
    assert order.job_id not in manager.jobs
    first = jobs.mm_order_start_job(order_id=order.pk)  # the next beat resumes from the database
    again = jobs.mm_order_start_job(order_id=order.pk)  # and a retry is no second job
    assert first.state == again.state == "running"
    assert list(manager.jobs).count(order.job_id) == 1
    assert [t.event for t in MMOrder.objects.get(pk=order.pk).transitions.all()] == ["start", "job_running"]
    stop_and_check(order)


def _killed(client: ExecutorClient) -> ExecutorIdentity:
    raise RuntimeError("worker killed")


@stand_in
def test_an_unreachable_executor_changes_nothing(order: MMOrder, settings, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.EXECUTOR_URLS = ["http://127.0.0.1:9"]  # nothing listens there
    monkeypatch.setattr(jobs, "client_for", lambda o: _no_sleep_client(o.executor_url))
    with pytest.raises(ExecutorUnavailable):
        jobs.mm_order_start_job(order_id=order.pk)
    order.refresh_from_db()
    assert order.state == "starting"  # the start was recorded; the job call will be retried
    assert not order.executor_signing_key


def _no_sleep_client(url: str) -> ExecutorClient:
    return ExecutorClient(url, sleep=lambda s: None)


@stand_in
def test_reports_are_verified_before_anything_is_stored(order: MMOrder) -> None:
    order = jobs.mm_order_start_job(order_id=order.pk)
    ExecutorRecord.objects.get_or_create(url=order.executor_url)  # the registry row the attested gate would make
    assert order.state == "running"
    # Three reports (windows of 10 s, the first one shorter): enough to leave one out in the middle.
    wait(lambda: len(executor_reports(order)) >= 3, timeout=45)
    envelopes = executor_reports(order)
    assert len(envelopes) >= 3

    refusals: list[str] = []

    def refused(bad: list[Any], code: str) -> None:
        refusals.append(code)
        stored = ExecutionReport.objects.count()
        ledger = LedgerTransaction.objects.count()
        with pytest.raises(ReportRejected) as caught:
            reports.ingest_reports(order, bad)
        assert caught.value.extra["reason_code"] == code
        assert ExecutionReport.objects.count() == stored
        assert LedgerTransaction.objects.count() == ledger
        assert Alert.objects.filter(kind="report_rejected", resolved_at__isnull=True).exists()

    broken = dict(envelopes[0], signature="00" * 64)
    refused([broken], "bad_signature")
    forged = SignedReport.from_json(envelopes[0])
    other = SigningKey.from_seed(b"f" * 32)
    doc = dict(forged.report, executor=dict(forged.report["executor"], signing_key=other.public_hex))
    from wire.reports import sign_report

    refused([sign_report(doc, other).as_json()], "bad_signature")
    rewritten = dict(forged.report, metrics=dict(forged.report["metrics"], uptime_ms=1))
    reports.ingest_reports(order, envelopes[:1])
    refused([dict(envelopes[0], report=rewritten)], "chain_broken")
    refused(envelopes[2:3], "chain_broken")  # a gap: sequence 2 right after 0
    assert reports.ingest_reports(order, envelopes) == len(envelopes) - 1
    assert reports.ingest_reports(order, envelopes) == 0  # once only
    registry = ExecutorRecord.objects.get(url=order.executor_url)
    assert (registry.reports_accepted, registry.reports_refused) == (len(envelopes), len(refusals))
    stop_and_check(order)


def test_stop_on_a_settled_order_is_refused_and_changes_nothing(order: MMOrder) -> None:
    MMOrder.objects.filter(pk=order.pk).update(state=mm.State.SETTLED)
    with pytest.raises(InvalidOrderTransition) as caught:
        services.mm_order_stop(order_id=order.pk)
    assert caught.value.code == "invalid_order_transition"
    assert MMOrder.objects.get(pk=order.pk).state == "settled"
    assert not MMOrder.objects.get(pk=order.pk).transitions.exists()


def test_production_refuses_unattested_executors(
    order: MMOrder, executor: tuple[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No stand-in, no setting to lower the bar: the one gate asks the executor for evidence, and this one (no TD)
    has none to give. Nothing but that request leaves Django; the start stays to be retried."""
    sent: list[str] = []

    def client_for(o: MMOrder) -> ExecutorClient:
        hooks = {"request": [lambda r: sent.append(f"{r.method} {r.url.path}")]}
        return ExecutorClient(o.executor_url, client=httpx.Client(timeout=10, event_hooks=hooks), sleep=lambda s: None)

    monkeypatch.setattr(jobs, "client_for", client_for)
    with pytest.raises(ExecutorUnavailable, match="/v1/attestation"):
        jobs.mm_order_start_job(order_id=order.pk)
    order.refresh_from_db()
    assert order.state == "starting"
    assert order.executor_signing_key == ""  # no key chosen, nothing sealed, nothing sent
    assert set(sent) == {"GET /v1/attestation"}  # evidence asked for (and retried); no start, no credentials
    assert order.job_id not in manager_of(executor[1]).jobs
    assert not AttestationRecord.objects.filter(ok=True).exists()


@stand_in
def test_revoking_the_key_wipes_it_on_the_executor_and_stops_the_order(
    order: MMOrder, executor: tuple[str, dict[str, Any]], django_capture_on_commit_callbacks: Any
) -> None:
    order = jobs.mm_order_start_job(order_id=order.pk)
    assert order.state == "running"
    runner = manager_of(executor[1]).get(order.job_id)
    wait(lambda: len(runner.tracker.resting()) > 0)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        accounts.exchange_account_revoke(account_id=order.exchange_account_id)
    assert len(callbacks) == 1  # the revoke task is queued for the order's job
    jobs.mm_order_revoke_job(order_id=order.pk)  # what that task runs
    assert runner.state == "revoked"
    assert runner.gateway is None  # the key is gone from the executor
    stopped = MMOrder.objects.get(pk=order.pk)
    assert stopped.state == "stopping"
    assert stopped.job_id == ""


def test_a_strategy_the_executor_would_refuse_fails_the_start_and_sends_nothing(
    order: MMOrder, executor: tuple[str, dict[str, Any]]
) -> None:
    # An order stored before a bound was tightened: its strategy no longer makes a spec the executor accepts.
    MMOrder.objects.filter(pk=order.pk).update(
        strategy={"params": {"order_amount": "200", "levels": 0}, "report_interval_seconds": 10, "sample_seconds": 1}
    )
    manager = manager_of(executor[1])
    jobs_before = set(manager.jobs)
    failed = jobs.mm_order_start_job(order_id=order.pk)
    assert failed.state == "failed"
    transitions = list(MMOrder.objects.get(pk=order.pk).transitions.order_by("pk"))
    assert [t.event for t in transitions] == ["start", "fail"]
    assert transitions[-1].detail["reason"].startswith("the job spec would be refused")
    assert set(manager.jobs) == jobs_before  # no job started anywhere
    assert not failed.executor_signing_key
    assert failed.job_spec is None
    again = jobs.mm_order_start_job(order_id=order.pk)  # a retry is no second step
    assert again.state == "failed"
    assert MMOrder.objects.get(pk=order.pk).transitions.count() == 2
