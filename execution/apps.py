from __future__ import annotations

from django.apps import AppConfig


class ExecutionConfig(AppConfig):
    name = "execution"
    verbose_name = "Execution"

    def ready(self) -> None:
        from execution import health  # here: it imports models, which load only once the app registry is ready

        health.register_checks()
