"""Admin of the payouts app: display, and actions that call services."""

from __future__ import annotations

from typing import cast

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from campaigns.admin import campaign_amount
from mrmarket.admin import MrMarketAdminSite, ReadOnlyAdminMixin
from payouts import admin_views, closing, paying
from payouts.domain.distribution import IllegalPayoutTransition
from payouts.domain.epochs import IllegalCloseTransition
from payouts.models import (
    BookSnapshot,
    EpochClose,
    EpochCloseTransition,
    EpochPayout,
    EpochPayoutTransition,
    OracleTransaction,
    Participant,
    ParticipantAccount,
    ParticipantOrder,
    PayoutBatch,
)


class EpochCloseTransitionInline(ReadOnlyAdminMixin, admin.TabularInline[EpochCloseTransition, EpochClose]):
    model = EpochCloseTransition
    extra = 0
    fields = ("created_at", "event", "from_state", "to_state", "detail")
    readonly_fields = fields


@admin.register(EpochClose)
class EpochCloseAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[EpochClose]):
    list_display = ("campaign", "epoch", "state", "epoch_end", "participants", "tx_hash", "block_number")
    list_filter = ("state",)
    search_fields = ("campaign__address", "bundle_digest", "tx_hash")
    readonly_fields = [f.name for f in EpochClose._meta.fields]
    inlines = (EpochCloseTransitionInline,)
    actions = ("retry",)
    allowed = frozenset({"change"})

    @admin.action(permissions=["change"], description="Retry a failed close (build the inputs again)")
    def retry(self, request: HttpRequest, queryset: QuerySet[EpochClose]) -> None:
        done = 0
        for close in queryset:
            try:
                closing.epoch_close_retry(close_id=close.pk)
                done += 1
            except IllegalCloseTransition as exc:
                self.message_user(request, f"{close}: {exc}", messages.WARNING)
        self.message_user(request, f"Sent {done} close(s) back to closing.", messages.SUCCESS)


class ParticipantOrderInline(ReadOnlyAdminMixin, admin.TabularInline[ParticipantOrder, Participant]):
    model = ParticipantOrder
    extra = 0
    fields = ("mm_order", "added_at")
    readonly_fields = fields


class ParticipantAccountInline(ReadOnlyAdminMixin, admin.TabularInline[ParticipantAccount, Participant]):
    model = ParticipantAccount
    extra = 0
    fields = ("exchange_account", "added_at")  # the account's own page shows its key hint, never the key
    readonly_fields = fields


@admin.register(Participant)
class ParticipantAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[Participant]):
    list_display = ("reward_address", "campaign", "owner", "joined_at")
    search_fields = ("reward_address", "campaign__address")
    readonly_fields = ("campaign", "reward_address", "owner", "joined_at", "siwe_message", "siwe_signature")
    inlines = (ParticipantOrderInline, ParticipantAccountInline)


@admin.register(BookSnapshot)
class BookSnapshotAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[BookSnapshot]):
    list_display = ("campaign", "t_ms", "source", "gap_reason", "exchange_ts_ms")
    list_filter = ("source", "gap_reason")
    readonly_fields = ("campaign", "t_ms", "book", "exchange_ts_ms", "recorded_ms", "source", "gap_reason")


@admin.register(OracleTransaction)
class OracleTransactionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[OracleTransaction]):
    list_display = ("purpose_key", "status", "chain_id", "sender", "nonce", "tx_hash", "block_number")
    list_filter = ("status", "role")
    search_fields = ("purpose_key", "tx_hash")
    exclude = ("raw_tx",)  # signed bytes: public once broadcast, but nothing a person needs to read here
    readonly_fields = (
        "purpose_key", "role", "chain_id", "sender", "to", "data", "nonce", "gas", "gas_price", "tx_hash", "status",
        "block_number", "revert_reason", "signed_at", "broadcast_at", "settled_at",
    )  # fmt: skip


class EpochPayoutTransitionInline(ReadOnlyAdminMixin, admin.TabularInline[EpochPayoutTransition, EpochPayout]):
    model = EpochPayoutTransition
    extra = 0
    fields = ("created_at", "event", "from_state", "to_state", "detail")
    readonly_fields = fields


class PayoutBatchInline(ReadOnlyAdminMixin, admin.TabularInline[PayoutBatch, EpochPayout]):
    model = PayoutBatch
    extra = 0
    fields = ("kind", "first_index", "count", "amount_display", "attempt", "status", "tx", "gas_used", "revert_reason")
    readonly_fields = fields

    @admin.display(description="amount")
    def amount_display(self, batch: PayoutBatch) -> str:
        return campaign_amount(batch.payout.close.campaign, batch.amount)


@admin.register(EpochPayout)
class EpochPayoutAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[EpochPayout]):
    list_display = (
        "close",
        "state",
        "leaf_count",
        "total_display",
        "distributed_display",
        "claimed_display",
        "paid_at",
    )
    list_filter = ("state",)
    search_fields = ("close__campaign__address", "merkle_root", "manifest_digest", "published_tx_hash")
    readonly_fields = [
        *(f.name for f in EpochPayout._meta.fields),
        "total_display",
        "distributed_display",
        "claimed_display",
    ]
    inlines = (PayoutBatchInline, EpochPayoutTransitionInline)
    actions = ("retry",)
    allowed = frozenset({"change"})

    @admin.display(description="total", ordering="total")
    def total_display(self, payout: EpochPayout) -> str:
        return campaign_amount(payout.close.campaign, payout.total)

    @admin.display(description="distributed", ordering="distributed_amount")
    def distributed_display(self, payout: EpochPayout) -> str:
        return campaign_amount(payout.close.campaign, payout.distributed_amount)

    @admin.display(description="claimed", ordering="claimed_amount")
    def claimed_display(self, payout: EpochPayout) -> str:
        return campaign_amount(payout.close.campaign, payout.claimed_amount)

    @admin.action(permissions=["change"], description="Retry a failed payout (prepare its publication again)")
    def retry(self, request: HttpRequest, queryset: QuerySet[EpochPayout]) -> None:
        done = 0
        for payout in queryset:
            try:
                paying.epoch_payout_retry(payout_id=payout.pk)
                done += 1
            except IllegalPayoutTransition as exc:
                self.message_user(request, f"{payout}: {exc}", messages.WARNING)
        self.message_user(request, f"Sent {done} payout(s) back to pending.", messages.SUCCESS)


# The operator panel (payouts.admin_views): pages of the admin site, which the core cannot import from here.
site = cast(MrMarketAdminSite, admin.site)  # the project's site (mrmarket.apps.MrMarketAdminConfig)
site.register_page("operator/", admin_views.operator_panel_index, name="operator-panel")
site.register_page("operator/<int:user_id>/", admin_views.operator_panel_page, name="operator-panel-operator")
site.register_page(
    "operator/alerts/<int:alert_id>/<str:action>/", admin_views.operator_alert_action, name="operator-alert-action"
)
