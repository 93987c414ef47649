"""Admin pages of the third-party auth apps, tightened: imported once the admin has discovered them.

API tokens: knox's own page lets staff mint a token for any user and lists digests; here staff see who holds a
token and until when, and may revoke one (delete), nothing else. Nothing of a token is shown, not even its
lookup prefix. Lockouts: django-axes' clean-up action asks for the delete permission like the deletions it makes.
"""

from __future__ import annotations

from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from knox.models import AuthToken

from mrmarket.admin import ReadOnlyAdminMixin


class ApiTokenAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[AuthToken]):
    list_display = ("user", "created", "expiry")
    list_filter = ("expiry",)
    search_fields = ("user__username",)
    fields = ("user", "created", "expiry")
    readonly_fields = fields
    # Revoke (delete) only: a token is issued to its holder by POST /api/v1/auth/token, never by someone else.
    allowed = frozenset({"delete"})


class LockoutAttemptAdmin(AccessAttemptAdmin):
    @admin.action(permissions=["delete"], description="Clean up expired attempts")
    def cleanup_expired_attempts(self, request: HttpRequest, queryset: QuerySet[AccessAttempt]) -> None:
        super().cleanup_expired_attempts(request, queryset)


def install(site: admin.AdminSite) -> None:
    if site.is_registered(AuthToken):
        site.unregister(AuthToken)
    site.register(AuthToken, ApiTokenAdmin)
    if site.is_registered(AccessAttempt):
        site.unregister(AccessAttempt)
    site.register(AccessAttempt, LockoutAttemptAdmin)
