"""The admin site (staff only), with the system status page; and `ReadOnlyAdminMixin`, the one way an admin
page of any app refuses to add, change or delete rows itself."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ClassVar, Literal

from django.contrib import admin
from django.contrib.admin.options import BaseModelAdmin, InlineModelAdmin
from django.core.exceptions import PermissionDenied
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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[tuple[str, Callable[..., HttpResponse], str]] = []

    def register_page(self, route: str, view: Callable[..., HttpResponse], *, name: str) -> None:
        """A page of an app above the core in the admin (`/admin/<route>`, named `admin:<name>`), registered from
        that app's admin module: the core cannot import it. Staff only, as every admin page; a signed-in user who
        is not staff is refused (403) rather than sent to a login form they have already passed."""
        self._pages.append((route, view, name))

    def _staff_page(self, view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        inner = self.admin_view(view)

        @functools.wraps(view)
        def page(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.user.is_authenticated and not self.has_permission(request):
                raise PermissionDenied
            return inner(request, *args, **kwargs)

        return page

    def get_urls(self) -> list[URLResolver | URLPattern]:
        extra = [path("system-status/", self.admin_view(self.system_status_view), name="system-status")]
        extra += [path(route, self._staff_page(view), name=name) for route, view, name in self._pages]
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
