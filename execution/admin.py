"""Admin of the execution app: display, and actions that call services. Credentials are never shown."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from execution import services
from execution.models import ExchangeAccount, LedgerPosting, LedgerTransaction


@admin.register(ExchangeAccount)
class ExchangeAccountAdmin(admin.ModelAdmin[ExchangeAccount]):
    list_display = ("exchange", "label", "role", "status", "owner", "api_key_hint", "permissions_checked_at")
    list_filter = ("exchange", "role", "status")
    search_fields = ("label", "owner__username")
    # The encrypted columns are not listed at all: not even ciphertext is shown.
    fields = (
        "owner",
        "exchange",
        "label",
        "role",
        "status",
        "api_key_hint",
        "permissions",
        "permissions_checked_at",
        "credentials_key_id",
        "created_at",
        "revoked_at",
    )
    readonly_fields = fields
    actions = ("revoke",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # enrolment goes through the service, which probes the key's permissions (issue 5)

    @admin.action(description="Revoke: destroy the credentials now")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ExchangeAccount]) -> None:
        for account in queryset:
            services.exchange_account_revoke(account_id=account.pk)
        self.message_user(request, f"Revoked {queryset.count()} account(s).", messages.SUCCESS)


class LedgerPostingInline(admin.TabularInline[LedgerPosting, LedgerTransaction]):
    model = LedgerPosting
    fields = ("account", "asset", "amount")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(admin.ModelAdmin[LedgerTransaction]):
    list_display = ("created_at", "kind", "key", "memo")
    list_filter = ("kind",)
    search_fields = ("key", "memo", "postings__account")
    readonly_fields = ("key", "kind", "memo", "created_at")
    inlines = (LedgerPostingInline,)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
