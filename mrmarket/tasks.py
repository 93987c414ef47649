"""Thin Celery tasks of the project itself (heartbeats, on-demand status refresh), and `RetryingTask`, the one
retry policy every app's tasks use (`@shared_task(base=RetryingTask, ...)`)."""

from __future__ import annotations

from typing import Any, ClassVar

from billiard.einfo import ExceptionInfo
from celery import Task, current_task, shared_task

from mrmarket import broadcast, heartbeats, selectors
from mrmarket.errors import ApplicationError
from mrmarket.observability.logging import get_logger

log = get_logger(__name__)


class RetryingTask(Task):
    """A task whose outage of the outside world is retried with exponential backoff and jitter, and whose final
    failure is logged once, structured, without its arguments or the exception's text (either may quote a
    secret or a URL with a key in it).

    `autoretry_for` is what counts as an outage here: a connection that failed or timed out. An app whose
    services raise their own typed outage (an exchange's `ExchangeUnavailable`, for one) subclasses this with its
    own tuple. Retried tasks must be idempotent: a retry repeats the whole task.
    """

    autoretry_for: ClassVar[tuple[type[BaseException], ...]] = (ConnectionError, TimeoutError)
    retry_backoff = True  # 1 s, 2 s, 4 s … before each retry
    retry_backoff_max = 600
    retry_jitter = True  # each delay drawn at random below its bound, so retries of many tasks spread out
    max_retries = 5
    ignore_result = True

    def on_failure(
        self, exc: BaseException, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any], einfo: ExceptionInfo
    ) -> None:
        # Called once the task has failed for good: retries exhausted, or an error that is not retried.
        log.error(
            "task_failed",
            task_name=self.name,
            task_id=task_id,
            retries=self.request.retries,
            error_type=type(exc).__name__,
            code=exc.code if isinstance(exc, ApplicationError) else None,
        )


@shared_task(name=heartbeats.HEARTBEAT_TASK, ignore_result=True)
def heartbeat() -> None:
    beat = heartbeats.record_worker(current_task.request.hostname)
    broadcast.system_event("system.heartbeat", {"component": beat.component, "at": beat.at.isoformat()})


@shared_task(base=RetryingTask, name="mrmarket.refresh_system_status", autoretry_for=(ConnectionError,), max_retries=3)
def refresh_system_status() -> None:
    checks = selectors.system_status()
    failing = [c.name for c in checks if not c.ok]
    log.info("system_status_refreshed", failing=failing, components=len(checks))
    broadcast.system_event("system.status", {"components": [c.as_json() for c in checks]})
