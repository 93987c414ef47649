"""Admin of the execution app: display, and actions that call services. Credentials are never shown."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from execution import accounts, alerts, services, tasks
from execution.domain import mm_order as mm
from execution.domain.units import for_people
from execution.errors import ExecutionError, InvalidOrderTransition
from execution.funds import asset_decimals
from execution.models import (
    Alert,
    AlertDelivery,
    ExchangeAccount,
    ExecutionReport,
    LedgerPosting,
    LedgerTransaction,
    MMOrder,
    MMOrderTransition,
)
from mrmarket.admin import ReadOnlyAdminMixin


@admin.register(ExchangeAccount)
class ExchangeAccountAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[ExchangeAccount]):
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
    # No add: enrolment goes through the service, which probes the key's permissions.
    allowed = frozenset({"change", "delete"})

    @admin.action(permissions=["change"], description="Revoke: destroy the credentials now")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ExchangeAccount]) -> None:
        for account in queryset:
            accounts.exchange_account_revoke(account_id=account.pk)
        self.message_user(request, f"Revoked {queryset.count()} account(s).", messages.SUCCESS)


def _amount(units: int, asset: str) -> str:
    return for_people(int(units), asset_decimals(asset), asset)


class LedgerPostingInline(ReadOnlyAdminMixin, admin.TabularInline[LedgerPosting, LedgerTransaction]):
    model = LedgerPosting
    fields = ("account", "asset", "in_token_units", "amount")  # amount: base units, as booked
    readonly_fields = fields
    extra = 0
    can_delete = False
    allowed = frozenset({"change", "delete"})  # only adding is refused here

    @admin.display(description="in token units")
    def in_token_units(self, posting: LedgerPosting) -> str:
        return _amount(posting.amount, posting.asset)


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[LedgerTransaction]):
    list_display = ("created_at", "kind", "key", "memo")
    list_filter = ("kind",)
    search_fields = ("key", "memo", "postings__account")
    readonly_fields = ("key", "kind", "memo", "created_at")
    inlines = (LedgerPostingInline,)


class MMOrderTransitionInline(ReadOnlyAdminMixin, admin.TabularInline[MMOrderTransition, MMOrder]):
    model = MMOrderTransition
    fields = ("created_at", "event", "from_state", "to_state", "key", "detail", "request_id")
    readonly_fields = fields
    extra = 0
    can_delete = False
    allowed = frozenset({"change", "delete"})  # only adding is refused here


class ExecutionReportInline(ReadOnlyAdminMixin, admin.TabularInline[ExecutionReport, MMOrder]):
    """Verified reports as stored (append-only): sequence, window, fills, digest."""

    model = ExecutionReport
    fields = ("sequence", "job_id", "window_start_ms", "window_end_ms", "fills", "digest", "received_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-sequence",)
    allowed = frozenset({"change", "delete"})  # only adding is refused here


@admin.register(MMOrder)
class MMOrderAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[MMOrder]):
    """Orders change state only through their state machine: the page is read-only; actions call services."""

    list_display = ("id", "owner", "symbol", "funding", "state", "updated_at")
    list_filter = ("state", "symbol")
    readonly_fields = (
        "owner",
        "exchange_account",
        "symbol",
        "funding_asset",
        "funding",
        "funding_amount",
        "state",
        "job_id",
        "executor_url",
        "executor_signing_key",
        "strategy",
        "job_spec",
        "failure_reason",
        "campaign_chain_id",
        "campaign_address",
        "reward_address",
        "created_at",
        "updated_at",
    )
    inlines = (MMOrderTransitionInline, ExecutionReportInline)
    actions = ("fund", "stop")
    allowed = frozenset({"change"})  # what the actions require

    @admin.display(description="funding", ordering="funding_amount")
    def funding(self, order: MMOrder) -> str:
        return _amount(order.funding_amount, order.funding_asset)

    @admin.action(permissions=["change"], description="Fund: move the funds to the exchange (queued)")
    def fund(self, request: HttpRequest, queryset: QuerySet[MMOrder]) -> None:
        # Recorded with each created order, as the API does: a task lost with the broker is queued again.
        queryset.filter(state=mm.State.CREATED).update(fund_requested_at=timezone.now())
        for order in queryset:
            tasks.fund_order.delay(order.pk)
        self.message_user(request, f"Queued funding of {queryset.count()} order(s).", messages.SUCCESS)

    @admin.action(permissions=["change"], description="Stop")
    def stop(self, request: HttpRequest, queryset: QuerySet[MMOrder]) -> None:
        for order in queryset:
            try:
                stopped = services.mm_order_stop(order_id=order.pk, reason="operator (admin)")
            except InvalidOrderTransition as exc:
                self.message_user(request, f"Order {order.pk}: {exc.message}", messages.ERROR)
                continue
            if stopped.job_id:
                tasks.wind_down.delay(stopped.pk)


class AlertDeliveryInline(ReadOnlyAdminMixin, admin.TabularInline[AlertDelivery, Alert]):
    """The alert's events on their way to the webhook: attempts, last error, when delivered (the body as sent)."""

    model = AlertDelivery
    fields = ("event", "delivery_id", "attempts", "last_status", "last_error", "delivered_at", "abandoned_at", "body")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[Alert]):
    list_display = ("created_at", "severity", "kind", "owner", "message", "acknowledged_at", "resolved_at")
    list_filter = ("severity", "kind", "resolved_at", "acknowledged_at")
    search_fields = ("message", "dedup_key", "owner__username")
    readonly_fields = (
        "kind",
        "severity",
        "owner",
        "message",
        "detail",
        "dedup_key",
        "created_at",
        "acknowledged_at",
        "acknowledged_by",
        "resolved_at",
        "resolved_by",
    )
    inlines = (AlertDeliveryInline,)
    actions = ("acknowledge", "resolve")
    allowed = frozenset({"change"})  # what the actions require

    def _each(self, request: HttpRequest, queryset: QuerySet[Alert], act: Any, done: str) -> None:
        count = 0
        for alert in queryset.order_by("pk"):
            try:
                act(alert_id=alert.pk, user=request.user)
            except ExecutionError as exc:
                self.message_user(request, f"Alert {alert.pk}: {exc.message}", messages.WARNING)
                continue
            count += 1
        self.message_user(request, f"{done} {count} alert(s).", messages.SUCCESS)

    @admin.action(permissions=["change"], description="Acknowledge: someone is on it")
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        self._each(request, queryset, alerts.alert_acknowledge, "Acknowledged")

    @admin.action(permissions=["change"], description="Mark resolved")
    def resolve(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        self._each(request, queryset, alerts.alert_resolve, "Resolved")
