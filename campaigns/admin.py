"""Admin of the campaigns app: display, and actions that call services."""

from __future__ import annotations

from django.contrib import admin

from campaigns.models import Campaign, CampaignEvent, ChainCursor
from mrmarket.admin import ReadOnlyAdminMixin


class CampaignEventInline(admin.TabularInline[CampaignEvent, Campaign]):
    model = CampaignEvent
    fields = ("kind", "block_number", "tx_hash", "log_index", "data")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Campaign)
class CampaignAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[Campaign]):
    """Read-only: campaigns mirror the chain; only the indexer writes them."""

    list_display = ("address", "chain_id", "creator", "start", "end", "budget", "funded", "paid_out")
    list_filter = ("chain_id", "funded")
    search_fields = ("address", "creator", "token")
    inlines = (CampaignEventInline,)


@admin.register(ChainCursor)
class ChainCursorAdmin(admin.ModelAdmin[ChainCursor]):
    list_display = ("chain_id", "factory", "last_block", "updated_at")
    readonly_fields = ("chain_id", "factory", "last_block", "updated_at")
