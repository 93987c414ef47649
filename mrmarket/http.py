"""Outbound HTTP for the Django side: timeouts by default and the correlation id on every request.

Every call from Django to another service (executors, EasyEnclave, chain RPC, oracles' storage) goes through
``outbound_client`` so that the X-Request-ID of the web request or task that caused it travels along.
"""

from __future__ import annotations

from typing import Any

import httpx
from django.conf import settings

from mrmarket.observability import context


def _add_request_id(request: httpx.Request) -> None:
    request_id = context.current_request_id()
    if request_id and context.REQUEST_ID_HEADER not in request.headers:
        request.headers[context.REQUEST_ID_HEADER] = request_id


def outbound_headers() -> dict[str, str]:
    """Headers to add to a call made by a library that owns its HTTP client (web3, ccxt)."""
    request_id = context.current_request_id()
    return {context.REQUEST_ID_HEADER: request_id} if request_id else {}


def outbound_client(*, timeout: float | None = None, **kwargs: Any) -> httpx.Client:
    hooks = kwargs.pop("event_hooks", {})
    hooks.setdefault("request", []).append(_add_request_id)
    return httpx.Client(
        timeout=timeout if timeout is not None else settings.OUTBOUND_HTTP_TIMEOUT_SECONDS,
        event_hooks=hooks,
        **kwargs,
    )
