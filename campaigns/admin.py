"""Admin of the campaigns app: display, and actions that call services."""

from __future__ import annotations

from django.contrib import admin

from campaigns.models import Campaign, CampaignEvent, ChainCursor
from campaigns.selectors import campaign_metadata_get, token_units_text
from mrmarket.admin import ReadOnlyAdminMixin


def campaign_amount(campaign: Campaign, units: int) -> str:
    """An amount of the campaign's reward token as a person reads it, base units beside it; base units alone
    when the metadata does not give the token's decimals."""
    text = token_units_text(campaign, int(units), campaign_metadata_get(metadata_hash=campaign.metadata_hash))
    return f"{text} ({units} base units)" if text else f"{units} base units"


class CampaignEventInline(admin.TabularInline[CampaignEvent, Campaign]):
    model = CampaignEvent
    fields = ("kind", "block_number", "tx_hash", "log_index", "data")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Campaign)
class CampaignAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[Campaign]):
    """Read-only: campaigns mirror the chain; only the indexer writes them."""

    list_display = ("address", "chain_id", "creator", "start", "end", "budget_display", "funded", "paid_out_display")
    list_filter = ("chain_id", "funded")
    search_fields = ("address", "creator", "token")
    readonly_fields = ("budget_display", "paid_out_display", "refunded_display")
    inlines = (CampaignEventInline,)

    @admin.display(description="budget", ordering="budget")
    def budget_display(self, campaign: Campaign) -> str:
        return campaign_amount(campaign, campaign.budget)

    @admin.display(description="paid out", ordering="paid_out")
    def paid_out_display(self, campaign: Campaign) -> str:
        return campaign_amount(campaign, campaign.paid_out)

    @admin.display(description="refunded", ordering="refunded")
    def refunded_display(self, campaign: Campaign) -> str:
        return campaign_amount(campaign, campaign.refunded)


@admin.register(ChainCursor)
class ChainCursorAdmin(admin.ModelAdmin[ChainCursor]):
    list_display = ("chain_id", "factory", "last_block", "updated_at")
    readonly_fields = ("chain_id", "factory", "last_block", "updated_at")
