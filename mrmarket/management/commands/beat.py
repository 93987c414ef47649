"""Run Celery beat (the schedule in settings.CELERY_BEAT_SCHEDULE) after the preflight checks."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from mrmarket import preflight
from mrmarket.celery_app import app


class Command(BaseCommand):
    help = "Run Celery beat."

    def handle(self, *args: Any, **options: Any) -> None:
        preflight.run()
        settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
        app.start(["beat", "--loglevel", "INFO", "--schedule", settings.CELERY_BEAT_SCHEDULE_FILENAME])
