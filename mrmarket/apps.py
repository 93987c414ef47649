from __future__ import annotations

from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class CoreConfig(AppConfig):
    """Cross-cutting pieces that need an app: roles migration, management commands, heartbeat tasks."""

    name = "mrmarket"
    label = "core"
    verbose_name = "Mr.Market core"


class MrMarketAdminConfig(AdminConfig):
    default_site = "mrmarket.admin.MrMarketAdminSite"
