"""Public pages of the campaigns app (server-rendered; they work without JavaScript)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from campaigns import selectors
from campaigns.forms import DiscoveryFilters
from execution.domain.units import for_people
from mrmarket import health


@never_cache
@require_GET
def landing(request: HttpRequest) -> HttpResponse:
    """The root page: what the system is, every campaign on every configured chain with filters, where to go next,
    and what runs (the cached /readyz checks: the state per check to anyone, its detail to staff only)."""
    staff = bool(request.user.is_active and request.user.is_staff)
    checks = [{"name": r.name, "state": r.state, "detail": r.detail if staff else ""} for r in health.readyz_results()]
    filters = DiscoveryFilters(request.GET)  # every field optional: no filter is a valid filter
    valid = filters.is_valid()
    cards = selectors.campaign_cards(**filters.selection()) if valid else []
    rows = [
        {
            "card": card,
            "budget": _amount(card.campaign.budget, card),
            "budget_left": _amount(card.budget_left, card),
        }
        for card in cards
    ]
    context = {
        "checks": checks,
        "version": settings.VERSION,
        "staff": staff,
        "filters": filters,
        "facets": selectors.campaign_facets(),
        "rows": rows,
    }
    return render(request, "campaigns/landing.html", context, status=200 if valid else 400)


def _amount(units: int, card: selectors.CampaignCard) -> str:
    if card.decimals is None:
        return f"{units:,} base units"
    return for_people(units, card.decimals, card.symbol)
