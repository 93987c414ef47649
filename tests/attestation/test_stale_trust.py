"""Trust that must not outlive its grounds: a revocation that lands while a check runs wins over the check; an
executor that fails its re-attestation loses its jobs' credentials and the standing of its reports, like one whose
build left the allowlist; an executor that merely does not answer is only left out of selection."""

from __future__ import annotations

import base64
import threading
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from attestation import gate, selectors, services
from attestation.errors import EvidenceRefused
from attestation.models import AttestationRecord, ExecutorRecord, MeasurementEntry
from devnet.tdx.authority import DevQuoteAuthority
from execution.errors import ReportRejected
from execution.reports import ingest_reports
from tests.attestation.runtime import deposit_confirmed_order
from tests.attestation.test_gate import MRTD, FakeExecutor, trust_dev_authority
from tests.attestation.test_registry import order_on
from tests.factories import user_with
from tests.plugins.require import require_postgresql


@pytest.fixture(scope="module")
def authority() -> DevQuoteAuthority:
    return DevQuoteAuthority.ephemeral()


@pytest.fixture
def dev_trust(settings, tmp_path: Path, authority: DevQuoteAuthority) -> DevQuoteAuthority:
    return trust_dev_authority(settings, tmp_path, authority)


def remove_during_the_check(monkeypatch: pytest.MonkeyPatch, entry: MeasurementEntry) -> threading.Event:
    """Make the allowlist removal of `entry` commit, from another connection, right after the gate found the entry
    and before it writes its verdict: the window a real removal could fall into."""
    removed = threading.Event()
    actor = user_with().pk
    found = gate.measurement_allowed

    def measurement_allowed(**kw: Any) -> MeasurementEntry | None:
        match = found(**kw)

        def remove() -> None:
            try:
                services.allowlist_remove(actor_id=actor, entry_id=entry.pk)
                removed.set()
            finally:
                connection.close()

        thread = threading.Thread(target=remove)
        thread.start()
        thread.join(10)
        return match

    monkeypatch.setattr(gate, "measurement_allowed", measurement_allowed)
    return removed


@pytest.mark.django_db(transaction=True)
def test_a_revocation_landing_during_a_check_leaves_the_executor_revoked(
    dev_trust: DevQuoteAuthority, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_postgresql("row locks and concurrent revocation need PostgreSQL")
    executor = FakeExecutor(dev_trust)
    gate.attested_identity(executor)  # verified under the entry
    entry = MeasurementEntry.objects.get()
    removed = remove_during_the_check(monkeypatch, entry)
    with pytest.raises(gate.AttestationFailed) as caught:
        gate.attested_identity(executor)  # the re-check that the removal overtakes
    assert removed.is_set()
    assert caught.value.code == "executor_revoked"
    record = ExecutorRecord.objects.get(url=executor.base_url)
    assert record.state == "revoked"
    assert AttestationRecord.objects.filter(ok=True).count() == 1  # only the first check's
    assert selectors.signing_key_attested(executor.identity.signing.public_hex) is None


@pytest.mark.django_db(transaction=True)
def test_a_removal_during_a_first_check_leaves_the_executor_untrusted(
    dev_trust: DevQuoteAuthority, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never verified before, so the removal finds nothing to revoke: the check itself must see the entry gone."""
    require_postgresql("row locks and concurrent revocation need PostgreSQL")
    executor = FakeExecutor(dev_trust)
    removed = remove_during_the_check(monkeypatch, MeasurementEntry.objects.get())
    with pytest.raises(gate.AttestationFailed) as caught:
        gate.attested_identity(executor)
    assert removed.is_set()
    assert caught.value.code == "unknown_measurement"
    assert "removed during the check" in caught.value.message
    assert ExecutorRecord.objects.get(url=executor.base_url).state == "failed"
    assert not AttestationRecord.objects.filter(ok=True).exists()


@pytest.mark.django_db(transaction=True)
def test_a_removal_while_the_verdict_is_written_waits_for_it_and_then_revokes(
    dev_trust: DevQuoteAuthority, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other order: the check holds the entry's lock when the removal comes; the removal waits, then sees the
    new accepted record and revokes the executor."""
    import time

    from django.db import connections

    require_postgresql("row locks and concurrent revocation need PostgreSQL")
    executor = FakeExecutor(dev_trust)
    entry = MeasurementEntry.objects.get()
    actor = user_with().pk
    accept = gate._accept
    remover: list[threading.Thread] = []

    def remove() -> None:
        try:
            services.allowlist_remove(actor_id=actor, entry_id=entry.pk)
        finally:
            connection.close()

    def blocked_on_a_lock() -> bool:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # within one transaction the view is a snapshot
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            return bool(cursor.fetchone()[0])

    def accept_while_removal_waits(*args: Any) -> AttestationRecord:
        record = accept(*args)
        thread = threading.Thread(target=remove)
        thread.start()
        remover.append(thread)
        deadline = time.monotonic() + 10
        while not blocked_on_a_lock():  # the removal is queued behind our lock on the entry
            assert thread.is_alive(), "the removal did not wait for the check"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        return record

    monkeypatch.setattr(gate, "_accept", accept_while_removal_waits)
    gate.attested_identity(executor)  # passes: the entry was live when the verdict was written
    remover[0].join(10)
    assert not remover[0].is_alive()
    assert ExecutorRecord.objects.get(url=executor.base_url).state == "revoked"
    assert selectors.signing_key_attested(executor.identity.signing.public_hex) is None


@pytest.mark.django_db
def test_a_failed_reattestation_revokes_its_jobs_and_its_reports_are_refused(
    dev_trust: DevQuoteAuthority, settings, django_capture_on_commit_callbacks: Any
) -> None:
    executor = FakeExecutor(dev_trust)
    identity = gate.attested_identity(executor)
    order = order_on(executor.base_url)
    order.executor_signing_key = identity.signing_key
    order.save(update_fields=["executor_signing_key"])
    bystander = order_on("http://another-executor", job_id="mmo2-y")
    assert selectors.signing_key_attested(identity.signing_key) is not None

    executor.quote_kw = {"mrtd": MRTD, "tcb": "OutOfDate"}  # the platform's TCB fell behind
    with (
        django_capture_on_commit_callbacks(execute=False) as callbacks,
        pytest.raises(gate.AttestationFailed, match="tcb_status_refused"),
    ):
        gate.attested_identity(executor)
    assert ExecutorRecord.objects.get(url=executor.base_url).state == "failed"
    # The revocation path: exactly the job on the failed executor is told to wipe its credentials and stop.
    assert [c.args for c in callbacks] == [(order.pk,)]
    assert bystander.pk != order.pk
    assert selectors.signing_key_attested(identity.signing_key) is None
    with pytest.raises(ReportRejected) as caught:
        ingest_reports(order, [{"anything": 1}])
    assert caught.value.extra["reason_code"] == "unattested_signing_key"


@pytest.mark.django_db
def test_an_inconclusive_check_leaves_the_jobs_alone(
    dev_trust: DevQuoteAuthority, settings, django_capture_on_commit_callbacks: Any
) -> None:
    """Our collateral source down says nothing against the executor: out of selection, jobs and reports stand."""
    executor = FakeExecutor(dev_trust)
    identity = gate.attested_identity(executor)
    order_on(executor.base_url)
    settings.ATTESTATION_COLLATERAL_FILE = "/nonexistent/collateral.json"
    with (
        django_capture_on_commit_callbacks(execute=False) as callbacks,
        pytest.raises(gate.AttestationFailed, match="collateral_unavailable"),
    ):
        gate.attested_identity(executor)
    assert callbacks == []
    assert ExecutorRecord.objects.get(url=executor.base_url).state == "unreachable"
    assert selectors.signing_key_attested(identity.signing_key) is not None


class GarbageQuote(FakeExecutor):
    """A trusted executor that answers its re-attestation with bytes that are no quote."""

    def attestation(self, nonce: str) -> dict[str, Any]:
        return {**super().attestation(nonce), "quote_b64": base64.b64encode(b"not a quote at all").decode()}


@pytest.mark.django_db
def test_garbage_evidence_is_the_executors_failure_not_an_inconclusive_check(
    dev_trust: DevQuoteAuthority, settings, django_capture_on_commit_callbacks: Any
) -> None:
    """Only our side's trouble is inconclusive: evidence that makes collateral impossible to fetch revokes."""
    executor = FakeExecutor(dev_trust)
    identity = gate.attested_identity(executor)
    order = order_on(executor.base_url)
    liar = GarbageQuote(dev_trust)
    liar.identity = executor.identity
    with (
        django_capture_on_commit_callbacks(execute=False) as callbacks,
        pytest.raises(gate.AttestationFailed, match="malformed_quote"),
    ):
        gate.attested_identity(liar)
    assert ExecutorRecord.objects.get(url=executor.base_url).state == "failed"
    assert [c.args for c in callbacks] == [(order.pk,)]  # its job is told to wipe credentials and stop
    assert selectors.signing_key_attested(identity.signing_key) is None


class Declines(FakeExecutor):
    """A trusted executor that answers its re-attestation with a refusal."""

    def attestation(self, nonce: str) -> dict[str, Any]:
        raise EvidenceRefused("forbidden", extra={"executor_code": "forbidden"})


@pytest.mark.django_db
def test_an_executor_that_declines_to_attest_again_is_revoked_not_left_trusted(
    dev_trust: DevQuoteAuthority, settings, django_capture_on_commit_callbacks: Any
) -> None:
    executor = FakeExecutor(dev_trust)
    identity = gate.attested_identity(executor)
    order = order_on(executor.base_url)
    with (
        django_capture_on_commit_callbacks(execute=False) as callbacks,
        pytest.raises(gate.AttestationFailed, match="attestation_refused"),
    ):
        gate.attested_identity(Declines(dev_trust))
    assert ExecutorRecord.objects.get(url=executor.base_url).state == "failed"
    assert [c.args for c in callbacks] == [(order.pk,)]
    assert selectors.signing_key_attested(identity.signing_key) is None


@pytest.mark.django_db
def test_a_revoked_executor_stays_revoked_when_a_late_check_fails(dev_trust: DevQuoteAuthority) -> None:
    executor = FakeExecutor(dev_trust)
    record, _ = ExecutorRecord.objects.get_or_create(url=executor.base_url)
    stale = ExecutorRecord.objects.get(pk=record.pk)  # what a check that began before the revocation holds
    ExecutorRecord.objects.filter(pk=record.pk).update(state="revoked")
    executor.quote_kw = {"mrtd": MRTD, "debug": True}
    nonce = services.nonce_issue(purpose=gate.NONCE_PURPOSE).value
    with pytest.raises(gate.AttestationFailed):
        gate.verify_executor_evidence(stale, executor.attestation(nonce), nonce=nonce)
    assert ExecutorRecord.objects.get(pk=record.pk).state == "revoked"


@pytest.mark.django_db
@pytest.mark.timeout(120)
def test_a_failed_scheduled_reattestation_wipes_the_running_jobs_credentials(
    dev_trust: DevQuoteAuthority, settings, django_capture_on_commit_callbacks: Any
) -> None:
    """End to end on a real executor: the beat's re-attestation fails (TCB out of date), the job on it is told to
    wipe its key and stop, and the order winds down and releases the job although the executor's last reports
    are no longer accepted."""

    from attestation import tasks
    from execution import jobs
    from execution.models import MMOrder
    from tests.execution.executor_thread import manager_of, running_executor
    from tests.execution.running_job import wait
    from tests.executor.harness import live_exchange

    class Provider:
        name = "dev-authority"
        tcb = "UpToDate"

        async def quote(self, data: bytes) -> bytes:
            return dev_trust.quote(data, mrtd=MRTD, tcb=self.tcb)

    provider = Provider()
    holder: dict[str, Any] = {}
    with (
        live_exchange(run_market=False) as ex,
        running_executor(ex.base_url, holder=holder, provider=provider) as url,
    ):
        order = deposit_confirmed_order(settings, ex, url)
        order = jobs.mm_order_start_job(order_id=order.pk)
        assert order.state == "running"
        runner = manager_of(holder).get(order.job_id)
        wait(lambda: runner.gateway is not None)

        provider.tcb = "OutOfDate"  # the platform fell behind Intel's TCB recovery
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            tasks.reattest_executor(ExecutorRecord.objects.get(url=url).pk)
        assert ExecutorRecord.objects.get(url=url).state == "failed"
        assert [c.args for c in callbacks] == [(order.pk,)]
        jobs.mm_order_revoke_job(order_id=order.pk)  # what that task runs
        assert runner.state == "revoked"
        assert runner.gateway is None  # the exchange key is gone from the executor
        stopped = MMOrder.objects.get(pk=order.pk)
        assert (stopped.state, stopped.job_id) == ("stopping", "")
