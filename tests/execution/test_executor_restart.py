"""An executor restarted mid-run (a new process: new keys, no jobs) answers `unknown_job` for the order's job.
The order must not loop on it silently: it is paused with one open alert, the next beats change nothing and
raise nothing, and a stop releases the job so its funds can be withdrawn back."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from devnet.exchange.fixtures import RunningExchange
from execution import jobs, services, tasks
from execution.models import Alert, MMOrder
from tests.execution.executor_thread import running_executor

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(120)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_restarted_executor_pauses_the_order_with_an_alert_and_it_does_not_loop(
    settings, make_order: Callable[..., MMOrder], sim: RunningExchange
) -> None:
    port = free_port()
    with running_executor(sim.base_url, port=port) as url:
        settings.EXECUTOR_URLS = [url]
        order = make_order()
        order = jobs.mm_order_start_job(order_id=order.pk)
        assert order.state == "running"
        assert jobs.mm_order_sync_job(order_id=order.pk).state == "running"
        first_key = MMOrder.objects.get(pk=order.pk).executor_signing_key
    # The executor process is gone; a new one comes up at the same address, knowing nothing of the job.
    with running_executor(sim.base_url, port=port) as again:
        assert again == url
        order = jobs.mm_order_sync_job(order_id=order.pk)
        assert order.state == "paused"
        (alert,) = Alert.objects.filter(kind="job_lost", resolved_at__isnull=True)
        assert alert.detail == {"order": order.pk, "job_id": order.job_id, "executor": url}
        (pause,) = order.transitions.filter(event="pause")
        assert pause.detail["reason"] == "job_lost"

        # The next beats: handled, quiet, nothing new.
        for _ in range(2):
            tasks.sync_job(order.pk)
            assert jobs.mm_order_sync_job(order_id=order.pk).state == "paused"
        assert order.transitions.filter(event="pause").count() == 1
        assert Alert.objects.filter(kind="job_lost").count() == 1
        assert MMOrder.objects.get(pk=order.pk).executor_signing_key == first_key  # nothing sealed to the new one

        # Recovery: stop, and the wind-down releases the job the new executor does not know.
        services.mm_order_stop(order_id=order.pk)
        released = jobs.mm_order_wind_down(order_id=order.pk)
        assert (released.state, released.job_id) == ("stopping", "")
