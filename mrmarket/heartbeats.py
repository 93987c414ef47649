"""Liveness of workers and beat, from heartbeats kept in Redis.

Beat publishes ``mrmarket.heartbeat`` every HEARTBEAT_INTERVAL_SECONDS: publishing it records beat's own
heartbeat (in the beat process); a worker running it records the worker's. A component is alive while its
last heartbeat is younger than three intervals.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings

from mrmarket.redis import get_redis, key

HEARTBEAT_TASK = "mrmarket.heartbeat"
_in_beat_process = False


@dataclass(frozen=True)
class Heartbeat:
    component: str  # "beat" or "worker:<hostname>"
    at: datetime

    def age(self, now: datetime) -> timedelta:
        return now - self.at

    def is_fresh(self, now: datetime) -> bool:
        return self.age(now) <= timedelta(seconds=3 * settings.HEARTBEAT_INTERVAL_SECONDS)


def _hash_key() -> str:
    return key("heartbeats")


def record(component: str, *, at: datetime | None = None) -> Heartbeat:
    beat = Heartbeat(component=component, at=at or datetime.now(tz=UTC))
    get_redis().hset(_hash_key(), component, beat.at.isoformat())
    return beat


def record_worker(hostname: str | None = None) -> Heartbeat:
    return record(f"worker:{hostname or socket.gethostname()}")


def mark_beat_process() -> None:
    global _in_beat_process
    _in_beat_process = True


def on_publish(task_name: str | None) -> None:
    if _in_beat_process and task_name == HEARTBEAT_TASK:
        record("beat")


def all_heartbeats() -> list[Heartbeat]:
    raw: dict[str, str] = get_redis().hgetall(_hash_key())  # type: ignore[assignment]  # sync client
    beats = [Heartbeat(component=k, at=datetime.fromisoformat(v)) for k, v in raw.items()]
    return sorted(beats, key=lambda b: b.component)


def forget_stale(*, older_than: timedelta) -> int:
    """Drop heartbeats of workers gone for good (renamed hosts), so the status page does not list them forever."""
    now = datetime.now(tz=UTC)
    stale = [b.component for b in all_heartbeats() if b.age(now) > older_than]
    if stale:
        get_redis().hdel(_hash_key(), *stale)
    return len(stale)
