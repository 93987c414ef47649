"""Jobs lose their executor's trust by event and by standing: when the attestation app revokes an executor (or it
fails a verification), execution's receiver queues `revoke_job` for each job there once that commits; and should
that event be lost, the job's next sync finds the executor's standing gone and revokes all the same. An executor
that is merely unreachable keeps its jobs."""

from __future__ import annotations

from typing import Any

import pytest

from attestation import services as attestation_services
from attestation.models import ExecutorRecord
from attestation.signals import executors_lost_trust
from execution import jobs, receivers
from execution.models import MMOrder
from execution.tasks import revoke_job
from tests.attestation.test_registry import order_on
from tests.execution.executor_thread import manager_of
from tests.execution.running_job import stop_and_check, wait

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(120)]


def test_the_event_queues_revoke_job_for_each_job_on_the_executor(django_capture_on_commit_callbacks: Any) -> None:
    ExecutorRecord.objects.create(url="http://exec-a", state=ExecutorRecord.State.VERIFIED)
    order = order_on("http://exec-a")
    order_on("http://exec-a", job_id="")  # no job (yet, or released): nothing to revoke
    order_on("http://exec-b", job_id="mmo2-y")  # another executor's job
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        attestation_services.executors_revoke(urls=["http://exec-a"], state="failed", reason="tcb_status_refused")
    assert [(c.func, c.args) for c in callbacks] == [(revoke_job.delay, (order.pk,))]
    assert ExecutorRecord.objects.get(url="http://exec-a").state == "failed"


def test_a_failing_receiver_does_not_undo_the_revocation(django_capture_on_commit_callbacks: Any) -> None:
    ExecutorRecord.objects.create(url="http://exec-a", state=ExecutorRecord.State.VERIFIED)
    order_on("http://exec-a")

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("a receiver that fails")

    executors_lost_trust.connect(broken, dispatch_uid="test.broken")
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            attestation_services.executors_revoke(urls=["http://exec-a"], state="revoked", reason="removed")
    finally:
        executors_lost_trust.disconnect(dispatch_uid="test.broken")
    assert ExecutorRecord.objects.get(url="http://exec-a").state == "revoked"
    assert len(callbacks) == 1  # and execution's receiver still queued its job's revocation


@pytest.mark.usefixtures("gate_stand_in")
@pytest.mark.parametrize("lost", ["receiver_disconnected", "callbacks_dropped"])
def test_a_lost_event_still_revokes_the_job_at_its_next_sync(
    order: MMOrder, executor: tuple[str, dict[str, Any]], django_capture_on_commit_callbacks: Any, lost: str
) -> None:
    order = jobs.mm_order_start_job(order_id=order.pk)
    assert order.state == "running"
    runner = manager_of(executor[1]).get(order.job_id)
    wait(lambda: runner.gateway is not None)
    ExecutorRecord.objects.get_or_create(url=order.executor_url)  # the registry row the attested gate would make

    if lost == "receiver_disconnected":
        assert executors_lost_trust.disconnect(dispatch_uid="execution.revoke_jobs")
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:  # never run: the event is lost
            attestation_services.executors_revoke(urls=[order.executor_url], state="failed", reason="debug_td")
    finally:
        if lost == "receiver_disconnected":
            executors_lost_trust.connect(receivers.jobs_revoke_on_lost_trust, dispatch_uid="execution.revoke_jobs")
    assert len(callbacks) == (0 if lost == "receiver_disconnected" else 1)
    assert runner.gateway is not None  # nothing told the job yet

    jobs.mm_order_sync_job(order_id=order.pk)  # the next beat's sync
    assert runner.state == "revoked"
    assert runner.gateway is None  # the exchange key is gone from the executor
    stopped = MMOrder.objects.get(pk=order.pk)
    assert (stopped.state, stopped.job_id) == ("stopping", "")


@pytest.mark.usefixtures("gate_stand_in")
def test_an_unreachable_executor_keeps_its_job_at_sync(order: MMOrder, executor: tuple[str, dict[str, Any]]) -> None:
    order = jobs.mm_order_start_job(order_id=order.pk)
    runner = manager_of(executor[1]).get(order.job_id)
    wait(lambda: runner.gateway is not None)
    ExecutorRecord.objects.create(url=order.executor_url, state=ExecutorRecord.State.UNREACHABLE)
    synced = jobs.mm_order_sync_job(order_id=order.pk)
    assert synced.state == "running"
    assert runner.gateway is not None
    stop_and_check(order)
