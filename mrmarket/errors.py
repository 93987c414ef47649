"""The application error base: every error a caller can cause or fix carries a machine-readable code."""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    """A clear, typed error; the API turns it into HTTP `status` with `{"code", "message", "extra"}`."""

    code = "application_error"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.extra = extra or {}


class NotFound(ApplicationError):
    code = "not_found"
    status = 404


class Conflict(ApplicationError):
    code = "conflict"
    status = 409


class ControllerNotConfigured(ApplicationError):
    """Django has no controller key (`CONTROLLER_SIGNING_KEY`): it can neither control executors nor tell whether
    one obeys it."""

    code = "controller_not_configured"
    status = 503


class InvalidCredentials(ApplicationError):
    code = "invalid_credentials"
    status = 400


class LoginLockedOut(ApplicationError):
    code = "login_locked_out"
    status = 429
