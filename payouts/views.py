"""Public pages of the payouts app: a campaign's page (docs/campaign-page.md), its audit page (docs/participants.md,
"The audit page"), and a signed-in address's own page (`/me/`).

Rendered by Django and readable without JavaScript; the Claim button is an enhancement (`static/js/claim.js`)
over data the page already shows (the claim call's target and calldata)."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_safe
from web3 import Web3

from mrmarket.siwe_views import signed_in_address
from payouts.campaign_page import campaign_page
from payouts.errors import CampaignUnknown
from payouts.selectors import address_overview, campaign_audit


class AuditAddressForm(forms.Form):
    """The address whose leaves to show: 0x and 40 hex digits; a mixed-case one must carry a valid EIP-55
    checksum (a wrong one is a typo, and a typo would silently show nothing)."""

    address = forms.RegexField(
        regex=r"^0x[0-9a-fA-F]{40}$",
        required=False,
        strip=True,
        error_messages={"invalid": "Not an address: an address is 0x followed by 40 hexadecimal digits."},
    )

    def clean_address(self) -> str | None:
        address: str = self.cleaned_data["address"]
        if not address:
            return None
        digits = address[2:]
        if digits != digits.lower() and digits != digits.upper() and not Web3.is_checksum_address(address):
            raise ValidationError("This address's checksum (its mix of capitals) is wrong: is there a typo?")
        return address.lower()


@require_safe
def campaign_audit_page(request: HttpRequest, chain_id: int, address: str) -> HttpResponse:
    """The campaign, each epoch's close and payout with what proves them, and an address's own leaves."""
    form = AuditAddressForm(request.GET if "address" in request.GET else None)
    valid = form.is_valid() if form.is_bound else True
    account = form.cleaned_data["address"] if form.is_bound and valid else None
    try:
        audit = campaign_audit(chain_id=chain_id, address=address, account=account)
    except CampaignUnknown as exc:
        raise Http404(exc.message) from None
    return render(request, "payouts/campaign_audit.html", {"audit": audit, "form": form}, status=200 if valid else 400)


@ensure_csrf_cookie  # the sign-in script posts with the CSRF token from its cookie
@require_safe
def my_page(request: HttpRequest) -> HttpResponse:
    """A signed-in address's own campaigns, joins and leaves; without a sign-in, the way to sign in."""
    address = signed_in_address(request)
    overview = address_overview(address=address) if address else None
    return render(request, "payouts/me.html", {"overview": overview})


@never_cache  # budget, nodes, leaderboard and book are read at each request
@require_safe
def campaign_public_page(request: HttpRequest, chain_id: int, address: str) -> HttpResponse:
    """The campaign: its market, rules, budget left, nodes quoting, leaderboard, depth and the no-admin proof."""
    try:
        page = campaign_page(chain_id=chain_id, address=address)
    except CampaignUnknown as exc:
        raise Http404(exc.message) from None
    return render(request, "campaigns/campaign_page.html", {"page": page})
