"""Worker and beat liveness come from heartbeats: beat records one when it publishes, a worker when it runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest

from mrmarket import heartbeats, tasks


def test_beat_records_its_heartbeat_only_in_the_beat_process(redis_clean: None, monkeypatch) -> None:
    monkeypatch.setattr(heartbeats, "_in_beat_process", False)
    heartbeats.on_publish(heartbeats.HEARTBEAT_TASK)
    assert heartbeats.all_heartbeats() == []
    heartbeats.mark_beat_process()
    heartbeats.on_publish("some.other.task")
    assert heartbeats.all_heartbeats() == []
    heartbeats.on_publish(heartbeats.HEARTBEAT_TASK)
    assert [b.component for b in heartbeats.all_heartbeats()] == ["beat"]


def test_running_the_heartbeat_task_records_the_worker(redis_clean: None) -> None:
    with mock.patch("mrmarket.broadcast.system_event") as sent:
        tasks.heartbeat.apply(headers={"hostname": "w9"})
    (beat,) = heartbeats.all_heartbeats()
    assert beat.component.startswith("worker:")
    assert sent.call_args.args[0] == "system.heartbeat"


def test_stale_workers_are_forgotten(redis_clean: None) -> None:
    heartbeats.record("worker:gone", at=datetime.now(tz=UTC) - timedelta(days=2))
    heartbeats.record("worker:here")
    assert heartbeats.forget_stale(older_than=timedelta(days=1)) == 1
    assert [b.component for b in heartbeats.all_heartbeats()] == ["worker:here"]


@pytest.mark.parametrize(("age", "fresh"), [(0, True), (29, True), (31, False)])
def test_freshness_is_three_intervals(settings, age: int, fresh: bool) -> None:
    settings.HEARTBEAT_INTERVAL_SECONDS = 10
    now = datetime.now(tz=UTC)
    assert heartbeats.Heartbeat("beat", now - timedelta(seconds=age)).is_fresh(now) is fresh
