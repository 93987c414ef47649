"""The payouts app's health checks (registered from PayoutsConfig.ready()); they only read."""

from __future__ import annotations

from datetime import UTC, datetime

from mrmarket import health, heartbeats

RECORDER_HEARTBEAT_PREFIX = "recorder:"  # the component names `payouts.recorder.Recorder` writes


def check_recorder() -> tuple[health.State, str]:
    """Every market-data recorder shard seen recently is alive (its heartbeat fresh)."""
    now = datetime.now(tz=UTC)
    shards = [b for b in heartbeats.all_heartbeats() if b.component.startswith(RECORDER_HEARTBEAT_PREFIX)]
    if not shards:
        return "fail", "no recorder heartbeat yet"
    stale = [b for b in shards if not b.is_fresh(now)]
    if stale:
        names = ", ".join(f"{b.component} {b.age(now).total_seconds():.0f}s ago" for b in stale)
        return "fail", f"recorder shard(s) silent: {names}"
    youngest = min(b.age(now).total_seconds() for b in shards)
    return "ok", f"{len(shards)} shard(s) alive, last heartbeat {youngest:.0f}s ago"


def register_checks() -> None:
    health.register("recorder", check_recorder)
