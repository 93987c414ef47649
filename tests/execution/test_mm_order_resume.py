"""Resuming a paused MM order, against a real executor and the simulator: the operator's resume through the API
has the executor resume the kill-switched job and the order run again (the kill-switch alert clears), a resume on
the executor itself is adopted by the sync, and every refusal is typed and changes nothing. Two resumes at once
make one transition (PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from attestation.models import ExecutorRecord
from execution import alert_rules, jobs, services
from execution.domain import mm_order as mm
from execution.errors import ExecutorUnavailable, InvalidOrderTransition, JobNotHalted, OrderNotResumable
from execution.executor_client import ExecutorClient
from execution.models import Alert, MMOrder
from executor.engine.runner import JobRunner
from mrmarket.roles import Role
from tests.execution.executor_thread import manager_of
from tests.execution.running_job import stop_and_check, wait
from tests.execution.test_job_lost import lose, release
from tests.execution.test_loop_concurrency import together
from tests.factories import user_with
from tests.plugins.require import require_postgresql

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(120), pytest.mark.usefixtures("gate_stand_in")]


def api_of(order: MMOrder) -> APIClient:
    """The order's owner, as the operator the API lets in."""
    order.owner.groups.add(Group.objects.get_or_create(name=Role.OPERATOR.value)[0])
    client = APIClient()
    client.force_authenticate(order.owner)
    return client


def resume_url(order: MMOrder) -> str:
    return f"/api/v1/execution/mm-orders/{order.pk}/resume"


def halt(order: MMOrder, executor: tuple[str, dict[str, Any]]) -> JobRunner:
    """Trip the job's kill switch on the executor, its own way: the rejects counter at its limit, which the
    next tick finds (`JobRunner._kill_switch`), halting the job and cancelling everything it has resting. A resume
    resets the counter, so the job does not trip again on this."""
    runner = manager_of(executor[1]).get(order.job_id)
    wait(lambda: len(runner.tracker.resting()) > 0)

    def tripped() -> bool:
        if runner.state != "halted":  # an accepted order in between resets the counter: set it again
            runner.risk.consecutive_rejects = runner.risk.limits.max_consecutive_rejects
        return runner.state == "halted"

    wait(tripped, timeout=30)
    assert str(runner.reason).startswith("kill switch:")
    wait(lambda: not runner.tracker.live(), timeout=15)
    return runner


def open_kill_switch() -> list[Alert]:
    return list(Alert.objects.filter(kind="kill_switch", resolved_at__isnull=True))


def kill_switched(order: MMOrder, executor: tuple[str, dict[str, Any]]) -> tuple[MMOrder, JobRunner]:
    """A running order whose job the kill switch halted, paused by the sync with its alert open."""
    order = jobs.mm_order_start_job(order_id=order.pk)
    assert order.state == "running"
    runner = halt(order, executor)
    paused = jobs.mm_order_sync_job(order_id=order.pk)
    assert paused.state == "paused"
    assert [a.detail["job_id"] for a in open_kill_switch()] == [order.job_id]
    return paused, runner


def paused_with(order: MMOrder, pause_key: str, **fields: Any) -> MMOrder:
    """The order as if it had run and paused under `pause_key` (no executor involved)."""
    MMOrder.objects.filter(pk=order.pk).update(state=mm.State.RUNNING, **fields)
    return services.mm_order_transition(order_id=order.pk, event=mm.Event.PAUSE, key=pause_key, detail={})


def unchanged(order: MMOrder, transitions: int) -> None:
    after = MMOrder.objects.get(pk=order.pk)
    assert after.state == order.state
    assert after.transitions.count() == transitions


def no_executor(order: MMOrder) -> ExecutorClient:
    raise AssertionError("the executor must not be asked")


def test_resume_through_the_api_brings_a_kill_switched_job_back(
    order: MMOrder, executor: tuple[str, dict[str, Any]]
) -> None:
    paused, runner = kill_switched(order, executor)
    before = paused.transitions.count()
    client = api_of(paused)

    response = client.post(resume_url(paused))
    assert response.status_code == 200, response.json()
    assert response.json()["state"] == "running"
    assert response.json()["timeline"][-1]["event"] == "resume"
    assert response.json()["timeline"][-1]["detail"] == {"by": "operator", "job_id": paused.job_id}
    wait(lambda: runner.state == "running")  # the executor resumed the job …
    wait(lambda: len(runner.tracker.resting()) > 0)  # … and it quotes again
    with ExecutorClient(paused.executor_url) as executor_client:
        assert executor_client.status(paused.job_id)["state"] == "running"
    assert MMOrder.objects.get(pk=order.pk).transitions.count() == before + 1

    # The runbook's word: the kill-switch alert clears once the order runs again.
    assert alert_rules.rule_kill_switch().resolved == 1
    assert open_kill_switch() == []

    # A second resume (a retry, a double click) is refused, typed: no second transition.
    again = client.post(resume_url(paused))
    assert (again.status_code, again.json()["code"]) == (409, "invalid_order_transition")
    assert MMOrder.objects.get(pk=order.pk).transitions.count() == before + 1
    # The sync that follows sees the job running and the order running: nothing to do.
    assert jobs.mm_order_sync_job(order_id=order.pk).transitions.count() == before + 1
    stop_and_check(paused)


def test_a_resume_on_the_executor_is_adopted_by_the_sync(order: MMOrder, executor: tuple[str, dict[str, Any]]) -> None:
    paused, runner = kill_switched(order, executor)
    before = paused.transitions.count()
    with ExecutorClient(paused.executor_url) as client:
        assert client.resume(paused.job_id)["job_id"] == paused.job_id
    wait(lambda: runner.state == "running")

    adopted = jobs.mm_order_sync_job(order_id=order.pk)
    assert adopted.state == "running"
    resume = adopted.transitions.latest("id")
    assert (resume.event, resume.detail["by"]) == ("resume", "executor")
    assert jobs.mm_order_sync_job(order_id=order.pk).transitions.count() == before + 1  # once per pause
    assert alert_rules.rule_kill_switch().resolved == 1
    assert open_kill_switch() == []
    stop_and_check(adopted)


def test_a_job_halted_again_after_a_resume_pauses_the_order_again(
    order: MMOrder, executor: tuple[str, dict[str, Any]]
) -> None:
    paused, runner = kill_switched(order, executor)
    assert jobs.mm_order_resume_job(order_id=order.pk).state == "running"
    assert alert_rules.rule_kill_switch().resolved == 1
    wait(lambda: runner.state == "running")
    halt(paused, executor)
    assert jobs.mm_order_sync_job(order_id=order.pk).state == "paused"  # a new pause, a new alert
    assert len(open_kill_switch()) == 1
    assert jobs.mm_order_resume_job(order_id=order.pk).state == "running"  # and a new resume
    events = [t.event for t in MMOrder.objects.get(pk=order.pk).transitions.order_by("id")]
    assert events == ["start", "job_running", "pause", "resume", "pause", "resume"]
    stop_and_check(paused)


def test_an_order_paused_in_django_while_its_job_runs_is_refused_not_halted_and_stays_paused(
    order: MMOrder, executor: tuple[str, dict[str, Any]]
) -> None:
    order = jobs.mm_order_start_job(order_id=order.pk)
    paused = services.mm_order_transition(order_id=order.pk, event=mm.Event.PAUSE, key=f"o{order.pk}-pause")
    before = paused.transitions.count()
    response = api_of(paused).post(resume_url(paused))
    assert (response.status_code, response.json()["code"]) == (409, "job_not_halted")
    unchanged(paused, before)
    # Its job quotes on, but this pause was not a halt: the sync does not undo it.
    assert jobs.mm_order_sync_job(order_id=order.pk).state == "paused"
    unchanged(paused, before)
    release(order.pk)


def test_a_paused_order_whose_job_was_lost_resumes_on_a_new_job(
    order: MMOrder, executor: tuple[str, dict[str, Any]]
) -> None:
    order = jobs.mm_order_start_job(order_id=order.pk)
    services.mm_order_transition(order_id=order.pk, event=mm.Event.PAUSE, key=f"o{order.pk}-pause")
    lost = order.job_id
    lose(order, executor)
    assert jobs.mm_order_sync_job(order_id=order.pk).state == "paused"  # the sync leaves it to the operator

    resumed = jobs.mm_order_resume_job(order_id=order.pk)
    assert resumed.state == "running"
    assert resumed.transitions.latest("id").detail == {"by": "operator", "job_id": lost, "job_lost": True}
    replaced = jobs.mm_order_sync_job(order_id=order.pk)  # a running order's lost job is replaced
    assert (replaced.state, replaced.job_id != lost) == ("running", True)
    assert manager_of(executor[1]).get(replaced.job_id).state in ("starting", "running")
    release(order.pk)


def test_resume_refuses_an_order_that_is_not_paused(order: MMOrder) -> None:
    before = order.transitions.count()
    response = api_of(order).post(resume_url(order))
    assert (response.status_code, response.json()["code"]) == (409, "invalid_order_transition")
    unchanged(order, before)


def test_resume_refuses_another_operators_order(order: MMOrder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "client_for", no_executor)
    paused = paused_with(order, f"o{order.pk}-pause-halted-1", job_id="mmo-x", executor_url="http://127.0.0.1:9")
    other = APIClient()
    other.force_authenticate(user_with(Role.OPERATOR))
    assert other.post(resume_url(paused)).status_code == 404
    unchanged(paused, 1)


def test_resume_refuses_an_order_with_no_job(order: MMOrder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "client_for", no_executor)
    paused = paused_with(order, f"o{order.pk}-pause-halted-1", job_id="")
    response = api_of(paused).post(resume_url(paused))
    assert (response.status_code, response.json()["code"]) == (409, "not_resumable")
    unchanged(paused, 1)


@pytest.mark.parametrize("pause", ["pause-failed-0", "pause-stopped-7", "pause-revoked-0", "job-lost-j-spec-refused"])
def test_resume_refuses_a_pause_the_executor_cannot_undo(
    order: MMOrder, pause: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "client_for", no_executor)
    paused = paused_with(order, f"o{order.pk}-{pause}", job_id="mmo-x", executor_url="http://127.0.0.1:9")
    with pytest.raises(OrderNotResumable) as caught:
        jobs.mm_order_resume_job(order_id=order.pk)
    assert caught.value.code == "not_resumable"
    unchanged(paused, 1)


def test_resume_refuses_an_order_on_an_executor_that_lost_its_standing(
    order: MMOrder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "client_for", no_executor)
    url = "http://127.0.0.1:9"
    paused = paused_with(order, f"o{order.pk}-pause-halted-1", job_id="mmo-x", executor_url=url)
    ExecutorRecord.objects.create(url=url, state=ExecutorRecord.State.REVOKED)
    with pytest.raises(OrderNotResumable) as caught:
        jobs.mm_order_resume_job(order_id=order.pk)
    assert caught.value.code == "not_resumable"
    unchanged(paused, 1)


def test_resume_refuses_a_halted_job_that_ended_since(order: MMOrder, executor: tuple[str, dict[str, Any]]) -> None:
    paused, runner = kill_switched(order, executor)
    before = paused.transitions.count()
    with ExecutorClient(paused.executor_url) as client:
        client.stop(paused.job_id)  # on the executor, not through Django
    wait(lambda: runner.state == "stopped")
    response = api_of(paused).post(resume_url(paused))
    assert (response.status_code, response.json()["code"]) == (409, "not_resumable")
    unchanged(paused, before)
    release(order.pk)


def test_resume_with_the_executor_unavailable_changes_nothing(order: MMOrder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "client_for", lambda o: ExecutorClient(o.executor_url, sleep=lambda s: None))
    paused = paused_with(order, f"o{order.pk}-pause-halted-1", job_id="mmo-x", executor_url="http://127.0.0.1:9")
    with pytest.raises(ExecutorUnavailable):
        jobs.mm_order_resume_job(order_id=order.pk)
    unchanged(paused, 1)
    response = api_of(paused).post(resume_url(paused))
    assert (response.status_code, response.json()["code"]) == (503, "executor_unavailable")
    unchanged(paused, 1)


@pytest.mark.django_db(transaction=True)
def test_two_resumes_at_once_make_one_transition(order: MMOrder, executor: tuple[str, dict[str, Any]]) -> None:
    require_postgresql("SQLite serializes writers itself; races need PostgreSQL")
    paused, runner = kill_switched(order, executor)
    before = paused.transitions.count()
    results = together(2, lambda: jobs.mm_order_resume_job(order_id=order.pk).state)
    # Each resumed, or found the job resumed by the other (the executor's not_halted): never anything else.
    assert all(r == "running" or isinstance(r, (JobNotHalted, InvalidOrderTransition)) for r in results), results
    assert "running" in results
    resumed = MMOrder.objects.get(pk=order.pk)
    assert resumed.state == "running"
    assert resumed.transitions.count() == before + 1
    assert resumed.transitions.filter(event="resume").count() == 1
    wait(lambda: runner.state == "running")
    stop_and_check(resumed)
