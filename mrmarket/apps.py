from __future__ import annotations

from urllib.parse import urlsplit

from django.apps import AppConfig
from django.conf import settings
from django.contrib.admin.apps import AdminConfig

from wire.redaction import register_secret


class CoreConfig(AppConfig):
    """Cross-cutting pieces that need an app: roles migration, management commands, heartbeat tasks."""

    name = "mrmarket"
    label = "core"
    verbose_name = "Mr.Market core"

    def ready(self) -> None:
        # After the admin's autodiscovery (its app comes first): replace the third-party auth admins. Imported here:
        # the admin modules import models, which load only once the app registry is ready.
        from django.contrib import admin  # noqa: PLC0415

        from mrmarket import auth_admin  # noqa: PLC0415

        auth_admin.install(admin.site)
        _register_configured_secrets()


def _register_configured_secrets() -> None:
    """The secrets this process was configured with are masked in everything it writes out (wire.redaction)."""
    values: list[str | bytes | None] = [
        settings.SECRET_KEY,
        getattr(settings, "CUSTODY_PRIVATE_KEY", ""),
        getattr(settings, "RECORDING_ORACLE_PRIVATE_KEY", ""),
        getattr(settings, "REPUTATION_ORACLE_PRIVATE_KEY", ""),
        *getattr(settings, "RECORDING_ORACLE_RETIRED_KEYS", []),
        *getattr(settings, "REPUTATION_ORACLE_RETIRED_KEYS", []),
        getattr(settings, "CONTROLLER_SIGNING_KEY", ""),
        getattr(settings, "CREDENTIALS_SIGNING_KEY", ""),
        getattr(settings, "METRICS_TOKEN", ""),
        getattr(settings, "ALERT_WEBHOOK_SECRET", ""),
        getattr(settings, "ALERT_WEBHOOK_URL", ""),  # a chat hook's URL is its credential
        *getattr(settings, "CREDENTIALS_MASTER_KEYS", {}).values(),
        *(db.get("PASSWORD") for db in settings.DATABASES.values()),
    ]
    for url in (settings.REDIS_URL, settings.CELERY_BROKER_URL):
        try:
            values.append(urlsplit(url).password)
        except ValueError:
            continue
    register_secret(*values)


class MrMarketAdminConfig(AdminConfig):
    default_site = "mrmarket.admin.MrMarketAdminSite"
