"""Thin Celery tasks of the project itself: heartbeats and on-demand status refresh."""

from __future__ import annotations

from celery import shared_task

from mrmarket import broadcast, heartbeats, selectors
from mrmarket.observability.logging import get_logger

log = get_logger(__name__)


@shared_task(name=heartbeats.HEARTBEAT_TASK, ignore_result=True)
def heartbeat() -> None:
    from celery import current_task

    beat = heartbeats.record_worker(current_task.request.hostname)
    broadcast.system_event("system.heartbeat", {"component": beat.component, "at": beat.at.isoformat()})


@shared_task(
    name="mrmarket.refresh_system_status",
    ignore_result=True,
    autoretry_for=(ConnectionError,),
    retry_backoff=True,
    max_retries=3,
)
def refresh_system_status() -> None:
    checks = selectors.system_status()
    failing = [c.name for c in checks if not c.ok]
    log.info("system_status_refreshed", failing=failing, components=len(checks))
    broadcast.system_event("system.status", {"components": [c.as_json() for c in checks]})
