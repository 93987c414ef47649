"""Correlation (X-Request-ID) and errors: every request gets an id, a log line, and a JSON error on failure; a
refusal of the job manager (`JobError`) is an API error with its own status and code."""

from __future__ import annotations

import time

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from executor.api.errors import ApiError, error_response
from executor.jobs.manager import JobError
from executor.logging import get_logger
from wire.correlation import REQUEST_ID_HEADER, clean_request_id

REQUEST_ID_KEY = web.RequestKey("request_id", str)
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type"}
log = get_logger("executor.http")


@web.middleware
async def correlation_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = clean_request_id(request.headers.get(REQUEST_ID_HEADER))
    request[REQUEST_ID_KEY] = request_id
    started = time.perf_counter()
    with structlog.contextvars.bound_contextvars(request_id=request_id):
        response = await _handle(request, handler, request_id)
        response.headers[REQUEST_ID_HEADER] = request_id
        log.info(
            "http_request",
            method=request.method,
            path=request.path,
            status=response.status,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )
    return response


@web.middleware
async def job_error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Inside `correlation_middleware`, which answers the ApiError (with the request's id)."""
    try:
        return await handler(request)
    except JobError as exc:
        raise ApiError(exc.message, code=exc.code, status=exc.status) from None


async def _handle(request: web.Request, handler: Handler, request_id: str) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(status=exc.status, code=exc.code, message=exc.message, request_id=request_id)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        return error_response(status=exc.status, code=code, message=exc.reason, request_id=request_id)
    except Exception:
        # Never leak exception text (it may hold credentials or exchange payloads); the log has the trace.
        log.exception("unhandled_error", path=request.path)
        return error_response(
            status=500, code="internal_error", message="Internal error; see the executor log.", request_id=request_id
        )
