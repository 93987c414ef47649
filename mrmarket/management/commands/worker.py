"""Run a Celery worker after the preflight checks."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from mrmarket import preflight
from mrmarket.celery_app import app


class Command(BaseCommand):
    help = "Run a Celery worker on the configured broker."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--concurrency", type=int, default=2)
        parser.add_argument("--hostname", default=None)

    def handle(self, *args: Any, concurrency: int, hostname: str | None, **options: Any) -> None:
        preflight.run()
        argv = ["worker", "--loglevel", "INFO", "--concurrency", str(concurrency), "--without-gossip"]
        if hostname:
            argv += ["--hostname", hostname]
        app.worker_main(argv)
