"""The campaigns app's health checks (registered from CampaignsConfig.ready()); they only read."""

from __future__ import annotations

from campaigns.depth_feed import HEARTBEAT_PREFIX
from mrmarket import health


def check_depth_feed() -> tuple[health.State, str]:
    """Every live-depth producer shard seen recently is alive (its heartbeat fresh)."""
    return health.shards_alive(HEARTBEAT_PREFIX, "live-depth producer")


def register_checks() -> None:
    health.register("depth_feed", check_depth_feed)
