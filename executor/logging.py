"""JSON logs on stdout, one object per line, with the correlation context bound per request or job."""

from __future__ import annotations

import logging
import sys

import structlog


def configure(*, level: str, version: str) -> None:
    def add_version(_: object, __: str, event: structlog.typing.EventDict) -> structlog.typing.EventDict:
        event.setdefault("version", version)
        return event

    logging.basicConfig(level=level, stream=sys.stdout, format="%(message)s", force=True)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # the middleware writes the access line
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            add_version,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
