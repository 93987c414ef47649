from __future__ import annotations

from django.apps import AppConfig


class PayoutsConfig(AppConfig):
    name = "payouts"
    verbose_name = "Payouts"

    def ready(self) -> None:
        from payouts import health  # noqa: PLC0415 - its checks read models, which load once the registry is ready

        health.register_checks()
