"""The admin site (staff only), with the system status page (seed 0.2)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path

from mrmarket import heartbeats, selectors


class MrMarketAdminSite(admin.AdminSite):
    site_header = "Mr.Market administration"
    site_title = "Mr.Market"
    index_title = "Operations"

    def get_urls(self) -> list[URLResolver | URLPattern]:
        extra = [path("system-status/", self.admin_view(self.system_status_view), name="system-status")]
        return extra + super().get_urls()

    def system_status_view(self, request: HttpRequest) -> HttpResponse:
        # admin_view() already restricts this to active staff.
        checks = selectors.system_status()
        context: dict[str, Any] = {
            **self.each_context(request),
            "title": "System status",
            "checks": checks,
            "all_ok": all(c.ok for c in checks),
            "heartbeats": heartbeats.all_heartbeats(),
        }
        return TemplateResponse(request, "admin/system_status.html", context)
