from __future__ import annotations

from django.apps import AppConfig

from mrmarket import campaign_directory


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        # Imported here: it imports models, which load only once the app registry is ready.
        from campaigns import health  # noqa: PLC0415
        from campaigns.directory import DIRECTORY  # noqa: PLC0415

        campaign_directory.register(DIRECTORY)
        health.register_checks()
