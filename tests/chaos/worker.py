"""A real Celery worker for the restart tests, in a process of its own: the project's app and tasks, the devnet's
settings from `CRASH_SETTINGS` (a JSON object), and the database connection kept the way production keeps it
(`CONN_MAX_AGE` 60 s with health checks, `mrmarket.config.parse_database_url`), so a restarted PostgreSQL meets
the stale connection a production worker would hold.

    python -m tests.chaos.worker
"""

from __future__ import annotations

import json
import os

import django


def main() -> None:
    os.environ.setdefault("MRMARKET_PROCESS", "worker")
    django.setup()
    from django.conf import settings
    from django.db import connections

    for name, value in json.loads(os.environ.get("CRASH_SETTINGS", "{}")).items():
        setattr(settings, name, value)
    connections["default"].settings_dict.update(CONN_MAX_AGE=60, CONN_HEALTH_CHECKS=True)
    from mrmarket.celery_app import app

    app.worker_main(
        ["worker", "--pool", "solo", "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
         "--without-heartbeat", "--queues", settings.CELERY_TASK_DEFAULT_QUEUE]
    )  # fmt: skip


if __name__ == "__main__":
    main()
