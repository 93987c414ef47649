"""The campaigns app's health checks (registered from CampaignsConfig.ready()); they only read."""

from __future__ import annotations

from datetime import UTC, datetime

from campaigns.depth_feed import HEARTBEAT_PREFIX
from mrmarket import health, heartbeats


def check_depth_feed() -> tuple[health.State, str]:
    """Every live-depth producer shard seen recently is alive (its heartbeat fresh)."""
    now = datetime.now(tz=UTC)
    shards = [b for b in heartbeats.all_heartbeats() if b.component.startswith(HEARTBEAT_PREFIX)]
    if not shards:
        return "fail", "no live-depth producer heartbeat yet"
    stale = [b for b in shards if not b.is_fresh(now)]
    if stale:
        names = ", ".join(f"{b.component} {b.age(now).total_seconds():.0f}s ago" for b in stale)
        return "fail", f"live-depth producer shard(s) silent: {names}"
    youngest = min(b.age(now).total_seconds() for b in shards)
    return "ok", f"{len(shards)} shard(s) alive, last heartbeat {youngest:.0f}s ago"


def register_checks() -> None:
    health.register("depth_feed", check_depth_feed)
