"""Public pages of the attestation app."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from attestation.domain.evidence import evidence_bytes
from attestation.selectors import attested_executors, evidence_body, latest_accepted


@require_safe
def executors_page(request: HttpRequest) -> HttpResponse:
    """The public list of attested executors: measurement, TCB status, last verification, hardware or dev root."""
    return render(request, "attestation/executors.html", {"executors": attested_executors()})


@require_safe
def executor_evidence(request: HttpRequest, executor_id: int) -> HttpResponse:
    """The evidence of an executor's latest accepted attestation, as a file anyone can check offline
    (`python -m attestation.offline verify`) or in their browser (the proof page)."""
    record = latest_accepted(executor_id)
    if record is None:
        raise Http404(f"executor {executor_id} has no accepted attestation")
    response = HttpResponse(evidence_bytes(evidence_body(record)), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="executor-{executor_id}-evidence.json"'
    return response
