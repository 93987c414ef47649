"""The admin site (staff only), with the system status page; and `ReadOnlyAdminMixin`, the one way an admin
page of any app refuses to add, change or delete rows itself."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from django.contrib import admin
from django.contrib.admin.options import BaseModelAdmin, InlineModelAdmin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path

from mrmarket import heartbeats, selectors

Permission = Literal["add", "change", "delete"]


class ReadOnlyAdminMixin(BaseModelAdmin[Any]):
    """An admin page (a model's or an inline) that refuses add, change and delete whatever the user's permissions:
    its rows are written by services (an admin action calls one), never by the admin's own forms.

    An admin that keeps one of the three names it in `allowed` (the change permission its actions require, say);
    that one stays subject to the user's own permission, as Django decides it. Put the mixin first in the bases.
    """

    allowed: ClassVar[frozenset[Permission]] = frozenset()

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if "add" not in self.allowed:
            return False
        # An inline's add permission is asked with the parent object, a model admin's without.
        parent_obj = [obj] if isinstance(self, InlineModelAdmin) else []
        return super().has_add_permission(request, *parent_obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return "change" in self.allowed and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return "delete" in self.allowed and super().has_delete_permission(request, obj)


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
