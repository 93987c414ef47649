"""Probes and metrics: liveness, readiness (one entry per dependency), Prometheus; and the root page."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django.views.defaults import page_not_found
from django_prometheus.exports import ExportToDjangoView

from mrmarket import health
from mrmarket.observability import context


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Says nothing about dependencies (that is /readyz)."""
    return JsonResponse({"status": "ok", "version": settings.VERSION})


# What anyone may learn of a check; staff also get its detail and time (an error text can name hosts).
_PUBLIC_CHECK_FIELDS = ("state", "ok", "required")


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    results = health.readyz_results()
    ready = all(r.ok for r in results if r.required)
    staff = bool(request.user.is_active and request.user.is_staff)
    checks = {}
    for r in results:
        entry = {k: v for k, v in r.as_json().items() if k != "name"}
        checks[r.name] = entry if staff else {k: entry[k] for k in _PUBLIC_CHECK_FIELDS}
    body = {"status": "ok" if ready else "fail", "version": settings.VERSION, "checks": checks}
    return JsonResponse(body, status=200 if ready else 503)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if token:
        supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(supplied.encode(), token.encode()):
            return HttpResponse("metrics token required\n", status=401, content_type="text/plain")
    return ExportToDjangoView(request)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 404 (no URL pattern matched: a path parameter its converter refuses, `/mm-orders/-1`) in the API's
    error shape under /api/, as DRF's own 404s are (found by tests/fuzz: an HTML page where JSON is documented);
    Django's page elsewhere."""
    if request.path.startswith("/api/"):
        body: dict[str, object] = {
            "code": "not_found",
            "message": "No such resource.",
            "extra": {},
            "request_id": context.current_request_id(),
        }
        return JsonResponse(body, status=404)
    return page_not_found(request, exception)
