"""The "depth is real" pages (docs/proof.md): `/proof/` and `/proof/campaigns/<chain_id>/<address>`. Readable without
JavaScript; the in-browser verification of each executor's quote (`static/src/proof_verify.js`) is added on top."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from payouts.errors import CampaignUnknown
from payouts.proof_page import campaign_proof_page, proof_page


@never_cache
@require_safe
def proof(request: HttpRequest) -> HttpResponse:
    """Methodology, every executor in good standing with its evidence, and each running campaign's attested share."""
    return render(request, "proof/proof.html", {"page": proof_page()})


@never_cache
@require_safe
def campaign_proof(request: HttpRequest, chain_id: int, address: str) -> HttpResponse:
    """One campaign's attested share of in-band depth and the executors behind it."""
    try:
        page = campaign_proof_page(chain_id=chain_id, address=address)
    except CampaignUnknown as exc:
        raise Http404(exc.message) from None
    return render(request, "proof/campaign_proof.html", {"page": page})
