"""DRF exception handler: every error response is `{"code", "message", "extra", "request_id"}`."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from mrmarket.errors import ApplicationError
from mrmarket.observability import context


def _code_of(exc: exceptions.APIException) -> str:
    codes = exc.get_codes()
    if isinstance(codes, str):
        return codes
    return "invalid"


def exception_handler(exc: Exception, ctx: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        payload = {"code": exc.code, "message": exc.message, "extra": exc.extra}
        return Response({**payload, "request_id": context.current_request_id()}, status=exc.status)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(detail=exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, ctx)
    if response is None:
        return None  # unhandled: Django's 500 path (logged, no details leaked)
    assert isinstance(exc, exceptions.APIException)
    body: dict[str, Any]
    if isinstance(exc, exceptions.ValidationError):
        body = {
            "code": "invalid",
            "message": "Validation failed.",
            "extra": {"fields": exc.detail},
        }
    else:
        body = {"code": _code_of(exc), "message": str(exc.detail), "extra": {}}
    response.data = {**body, "request_id": context.current_request_id()}
    return response
