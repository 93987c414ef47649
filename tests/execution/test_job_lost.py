"""A running order whose executor lost its job (an executor restarted: a TD keeps its keys and jobs in memory
only) is started again as a new job, routed and attested like the first; a paused one stays paused."""

from __future__ import annotations

from typing import Any

import pytest

from execution import jobs, services
from execution.domain import mm_order as mm
from execution.executor_client import ExecutorClient
from execution.models import Alert, MMOrder
from executor.engine.runner import TERMINAL
from tests.execution.executor_thread import manager_of
from tests.execution.running_job import wait

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(120)]


def lose(order: MMOrder, executor: tuple[str, dict[str, Any]]) -> None:
    """What a restart does to the order's job: it is gone (its orders cancelled first, so nothing trades on)."""
    manager = manager_of(executor[1])
    with ExecutorClient(order.executor_url) as client:
        client.stop(order.job_id)
    wait(lambda: manager.jobs[order.job_id].state in TERMINAL)
    del manager.jobs[order.job_id]


def release(order_id: int) -> None:
    services.mm_order_transition(order_id=order_id, event=mm.Event.STOP, key=f"o{order_id}-stop")
    wait(lambda: jobs.mm_order_wind_down(order_id=order_id).job_id == "")


def test_a_running_order_whose_job_was_lost_runs_again_as_a_new_job(
    order: MMOrder, executor: tuple[str, dict[str, Any]]
) -> None:
    manager = manager_of(executor[1])
    order = jobs.mm_order_start_job(order_id=order.pk)
    assert order.state == "running"
    lost = order.job_id
    lose(order, executor)

    resumed = jobs.mm_order_sync_job(order_id=order.pk)
    assert resumed.state == "running"
    assert resumed.job_id != lost
    assert resumed.job_id.startswith(f"mmo{order.pk}-")
    assert resumed.job_id in manager.jobs
    timeline = list(resumed.transitions.values_list("event", "to_state"))
    assert timeline[-2:] == [("job_lost", "starting"), ("job_running", "running")]
    assert resumed.transitions.get(event="job_lost").detail["lost_job_id"] == lost
    again = jobs.mm_order_sync_job(order_id=order.pk)  # the next beat: no third job
    assert (again.state, again.job_id) == ("running", resumed.job_id)
    assert [j for j in manager.jobs if j.startswith(f"mmo{order.pk}-")] == [resumed.job_id]
    assert not Alert.objects.filter(kind__startswith="report_").exists()
    release(order.pk)


def test_a_paused_order_whose_job_was_lost_stays_paused_with_an_alert(
    order: MMOrder, executor: tuple[str, dict[str, Any]]
) -> None:
    order = jobs.mm_order_start_job(order_id=order.pk)
    services.mm_order_transition(order_id=order.pk, event=mm.Event.PAUSE, key=f"o{order.pk}-pause")
    lost = order.job_id
    lose(order, executor)

    after = jobs.mm_order_sync_job(order_id=order.pk)
    assert (after.state, after.job_id) == ("paused", lost)
    assert Alert.objects.get(kind="job_lost").detail == {"order": order.pk, "job_id": lost}
    release(order.pk)
