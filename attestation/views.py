"""Public pages of the attestation app."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from attestation.selectors import attested_executors


@require_safe
def executors_page(request: HttpRequest) -> HttpResponse:
    """The public list of attested executors: measurement, TCB status, last verification, hardware or dev root."""
    return render(request, "attestation/executors.html", {"executors": attested_executors()})
