"""The Celery app (worker and beat). Reads CELERY_* settings; carries the correlation id in task headers."""

from __future__ import annotations

import os
import sys
from typing import Any

from celery import Celery, signals

from mrmarket.observability import context

# No profile named means production (which refuses to start without its variables), never dev.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mrmarket.settings.prod")
if os.path.basename(sys.argv[0]) == "celery" and "MRMARKET_PROCESS" not in os.environ:
    # Started as `celery -A mrmarket.celery_app worker|beat` rather than through manage.py.
    os.environ["MRMARKET_PROCESS"] = "beat" if "beat" in sys.argv[1:] else "worker"

app = Celery("mrmarket")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

REQUEST_ID_TASK_HEADER = "request_id"


@signals.setup_logging.connect
def _keep_our_logging(**_: Any) -> None:
    """Connecting this stops Celery from replacing the logging that the Django settings configured."""


@signals.before_task_publish.connect
def _propagate_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    # Runs in the publishing process (web, beat, or a task queueing another task).
    request_id = context.current_request_id()
    if headers is not None and request_id and REQUEST_ID_TASK_HEADER not in headers:
        headers[REQUEST_ID_TASK_HEADER] = request_id


@signals.task_prerun.connect
def _bind_task_context(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    context.clear()
    request_id = getattr(task.request, REQUEST_ID_TASK_HEADER, None) if task is not None else None
    context.bind(
        request_id=context.clean_request_id(request_id),
        task_id=task_id,
        task_name=getattr(task, "name", None),
    )


@signals.task_postrun.connect
def _clear_task_context(**_: Any) -> None:
    context.clear()


@signals.beat_init.connect
def _mark_beat_process(**_: Any) -> None:
    # Imported at the signal: this module loads with the package, before Django's settings are configured.
    from mrmarket import heartbeats  # noqa: PLC0415

    heartbeats.mark_beat_process()


@signals.before_task_publish.connect
def _beat_heartbeat(sender: str | None = None, **_: Any) -> None:
    from mrmarket import heartbeats  # noqa: PLC0415 — as above

    heartbeats.on_publish(sender)
