"""The correlation id that travels between Django, Celery, the executor and back (X-Request-ID)."""

from __future__ import annotations

import re
import uuid

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._\-]{1,128}")


def new_request_id() -> str:
    return uuid.uuid4().hex


def clean_request_id(value: str | None) -> str:
    """The caller's id when it is safe to log and forward (1-128 of [A-Za-z0-9._-]), else a fresh one."""
    if value and _VALID_REQUEST_ID.fullmatch(value):
        return value
    return new_request_id()
