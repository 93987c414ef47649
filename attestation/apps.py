from __future__ import annotations

from django.apps import AppConfig


class AttestationConfig(AppConfig):
    name = "attestation"
    verbose_name = "Attestation"

    def ready(self) -> None:
        from attestation import health  # noqa: PLC0415 — it imports models, which load once the app registry is ready

        health.register_checks()
