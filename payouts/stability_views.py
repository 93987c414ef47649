"""The stability page of a campaign and its two downloads (docs/stability.md). Thin: one selector call each; an
unknown campaign is a 404, an `epoch` that names no epoch a 400 saying which epochs there are."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from payouts.errors import CampaignUnknown
from payouts.stability import (
    StabilityEpochInvalid,
    StabilityPage,
    campaign_stability,
    download_name,
    stability_csv,
    stability_json,
)


def _page(request: HttpRequest, chain_id: int, address: str) -> StabilityPage:
    return campaign_stability(chain_id=chain_id, address=address, epoch=request.GET.get("epoch"))


@never_cache  # the reports grow with every sample time
@require_safe
def campaign_stability_page(request: HttpRequest, chain_id: int, address: str) -> HttpResponse:
    """Liquidity uptime, spread stability, depth drawdown and depth by distance from the mid, with charts."""
    try:
        page = _page(request, chain_id, address)
    except CampaignUnknown as exc:
        raise Http404(exc.message) from None
    except StabilityEpochInvalid as exc:
        context = {"error": exc.message, "chain_id": chain_id, "address": address.lower()}
        return render(request, "campaigns/stability.html", context, status=400)
    return render(request, "campaigns/stability.html", {"page": page})


def _refused(exc: CampaignUnknown | StabilityEpochInvalid) -> JsonResponse:
    return JsonResponse({"code": exc.code, "message": exc.message, "extra": exc.extra}, status=exc.status)


@never_cache
@require_safe
def campaign_stability_csv(request: HttpRequest, chain_id: int, address: str) -> HttpResponse:
    try:
        page = _page(request, chain_id, address)
    except (CampaignUnknown, StabilityEpochInvalid) as exc:
        return _refused(exc)
    response = HttpResponse(stability_csv(page), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{download_name(page, "csv")}"'
    return response


@never_cache
@require_safe
def campaign_stability_json(request: HttpRequest, chain_id: int, address: str) -> HttpResponse:
    try:
        page = _page(request, chain_id, address)
    except (CampaignUnknown, StabilityEpochInvalid) as exc:
        return _refused(exc)
    response = JsonResponse(stability_json(page), json_dumps_params={"indent": 1})
    response["Content-Disposition"] = f'attachment; filename="{download_name(page, "json")}"'
    return response
