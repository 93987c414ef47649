"""The correlation context: which request, campaign, order, job... a log line or an outbound call belongs to.

Backed by structlog's contextvars, so values bound here appear in every log line of the same task or request,
and survive ``sync_to_async`` / ``async_to_sync`` hops (asgiref copies the context).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from wire.correlation import REQUEST_ID_HEADER, clean_request_id, new_request_id

__all__ = ["REQUEST_ID_HEADER", "bind", "bound", "clean_request_id", "clear", "current_request_id", "new_request_id"]
# The fields a log line carries whenever they apply, so one campaign, order, job, chain, exchange or executor build
# can be followed across processes; `version` is added to every line by the logging config.
STANDARD_FIELDS = ("request_id", "campaign_id", "order_id", "job_id", "chain_id", "exchange", "mrtd")


def current_request_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("request_id")
    return value if isinstance(value, str) else None


def bind(**fields: Any) -> None:
    structlog.contextvars.bind_contextvars(**{k: v for k, v in fields.items() if v is not None})


def clear() -> None:
    structlog.contextvars.clear_contextvars()


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Bind fields for the duration of a block, restoring what was bound before."""
    tokens = structlog.contextvars.bind_contextvars(**{k: v for k, v in fields.items() if v is not None})
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
