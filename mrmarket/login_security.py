"""Who is logging in from where, and how long a client that keeps guessing passwords must wait.

The client address is taken from X-Forwarded-For only as far as our own proxies wrote it: with N trusted proxies
in front (TRUSTED_PROXY_COUNT), the Nth address from the right is the one the outermost proxy saw. Anything to
its left was written by the client and is ignored, so rotating the header does not buy a fresh rate limit.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from rest_framework.request import Request
from rest_framework.throttling import ScopedRateThrottle


def client_address(*, remote_addr: str, forwarded_for: str | None, trusted_proxies: int) -> str:
    """The address of the client as seen by the outermost of our `trusted_proxies` proxies."""
    if trusted_proxies <= 0 or not forwarded_for:
        return remote_addr
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    if not hops:
        return remote_addr
    return hops[-min(trusted_proxies, len(hops))]


def client_ip(request: HttpRequest) -> str:
    return client_address(
        remote_addr=request.META.get("REMOTE_ADDR", ""),
        forwarded_for=request.META.get("HTTP_X_FORWARDED_FOR"),
        trusted_proxies=int(settings.TRUSTED_PROXY_COUNT),
    )


class AuthRateThrottle(ScopedRateThrottle):
    """The `auth` scope keyed on the trusted client address (not DRF's whole-header default)."""

    def get_ident(self, request: Request) -> str:
        return client_ip(request._request)


def lockout_cooloff_seconds(failures: int, *, limit: int, base_seconds: int, max_seconds: int) -> int:
    """How long failed logins are remembered: the base period, doubled for every failure past the limit."""
    extra = max(0, failures - limit)
    if extra >= 32:  # any larger doubling is past every sane cap; avoid building a huge integer
        return max_seconds
    return min(max_seconds, base_seconds * 2**extra)


def lockout_cooloff(request: HttpRequest | None) -> timedelta:
    """AXES_COOLOFF_TIME: backoff by the failures recorded for this client address."""
    failures = 0
    ip = getattr(request, "axes_ip_address", None) if request is not None else None
    if ip:
        # Imported at the call: axes' models load only once the app registry is ready, and the settings name this
        # module's functions.
        from axes.models import AccessAttempt  # noqa: PLC0415

        failures = AccessAttempt.objects.filter(ip_address=ip).aggregate(n=Max("failures_since_start"))["n"] or 0
    seconds = lockout_cooloff_seconds(
        failures,
        limit=int(settings.AXES_FAILURE_LIMIT),
        base_seconds=int(settings.AUTH_LOCKOUT_BASE_SECONDS),
        max_seconds=int(settings.AUTH_LOCKOUT_MAX_SECONDS),
    )
    return timedelta(seconds=seconds)


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict[str, object] | None = None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE. The API's token view answers a lockout with its own typed error; the admin login
    page gets a plain 429 that says nothing about whether the username exists."""
    if original_response is not None and request.path.startswith("/api/"):
        return original_response
    return HttpResponse(
        "Too many failed login attempts. Try again later.\n",
        status=429,
        content_type="text/plain",
    )
