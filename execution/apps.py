from __future__ import annotations

from django.apps import AppConfig

from attestation.signals import executors_lost_trust


class ExecutionConfig(AppConfig):
    name = "execution"
    verbose_name = "Execution"

    def ready(self) -> None:
        # Imported here: both import models, which load only once the app registry is ready.
        from execution import health, receivers  # noqa: PLC0415

        health.register_checks()
        executors_lost_trust.connect(receivers.jobs_revoke_on_lost_trust, dispatch_uid="execution.revoke_jobs")
