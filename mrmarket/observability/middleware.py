"""Per-request correlation: an X-Request-ID read or made, bound for logs, echoed, and one access log line."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from mrmarket.observability import context
from mrmarket.observability.logging import get_logger

log = get_logger("mrmarket.request")


class RequestContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        context.clear()
        request_id = context.clean_request_id(request.headers.get(context.REQUEST_ID_HEADER))
        request.request_id = request_id  # type: ignore[attr-defined]
        context.bind(request_id=request_id)
        started = time.perf_counter()
        response = self.get_response(request)
        response[context.REQUEST_ID_HEADER] = request_id
        if not request.path.startswith(("/healthz", "/metrics", "/static/")):
            log.info(
                "http_request",
                method=request.method,
                path=request.path,
                status=response.status_code,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
        return response


class UserContextMiddleware:
    """Adds the authenticated user id to the log context (after AuthenticationMiddleware)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            context.bind(user_id=user.pk)
        return self.get_response(request)
