"""Admin of the payouts app: display, and actions that call services."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from mrmarket.admin import ReadOnlyAdminMixin
from payouts import closing
from payouts.domain.epochs import IllegalCloseTransition
from payouts.models import EpochClose, EpochCloseTransition


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
