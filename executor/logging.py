"""JSON logs on stdout, one object per line, with the correlation context bound per request or job.

This process holds exchange secrets in plaintext: every line, structlog's and the standard library's (aiohttp,
asyncio tracebacks) alike, passes wire.redaction first. The job manager registers each secret it is handed.
"""

from __future__ import annotations

import logging
import sys

import structlog

from wire.redaction import redact_event, redact_text


class RedactingFormatter(logging.Formatter):
    """Standard-library records rendered in full (traceback included), then registered secrets masked."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


def redact_secrets(_: object, __: str, event: structlog.typing.EventDict) -> structlog.typing.EventDict:
    return redact_event(event)


def configure(*, level: str, version: str) -> None:
    def add_version(_: object, __: str, event: structlog.typing.EventDict) -> structlog.typing.EventDict:
        event.setdefault("version", version)
        return event

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(RedactingFormatter("%(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # the middleware writes the access line
    structlog.configure(
        processors=processors(version_processor=add_version),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=False,
    )


def processors(*, version_processor: structlog.typing.Processor) -> list[structlog.typing.Processor]:
    """The structlog chain: redaction runs after the traceback is rendered, and once more on the final line."""
    renderer = structlog.processors.JSONRenderer()

    def render_redacted(logger: object, name: str, event: structlog.typing.EventDict) -> str:
        return redact_text(str(renderer(logger, name, event)))

    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        version_processor,
        structlog.processors.format_exc_info,
        redact_secrets,
        render_redacted,
    ]


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
