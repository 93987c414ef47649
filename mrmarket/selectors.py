"""Reads that cut across apps: the system status shown on the admin page and in the API."""

from __future__ import annotations

from mrmarket import health

STATUS_COMPONENTS = (
    "queue",
    "workers",
    "beat",
    "database",
    "redis",
    "broker",
    "channel_layer",
    "chain_rpc",
    "executors",
    "exchanges",
    "alerts",
    "easyenclave",
)


def system_status() -> list[health.CheckResult]:
    return health.run_checks(STATUS_COMPONENTS)
