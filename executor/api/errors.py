"""The error model of the executor API: `{"error": {"code", "message", "request_id"}}`."""

from __future__ import annotations

from aiohttp import web

from wire.redaction import redact_text


class ApiError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.status = status or self.status


def error_response(*, status: int, code: str, message: str, request_id: str | None) -> web.Response:
    # An error message may quote an exchange's answer; a secret this process holds never goes back out in it.
    body = {"error": {"code": code, "message": redact_text(message), "request_id": request_id}}
    return web.json_response(body, status=status)
