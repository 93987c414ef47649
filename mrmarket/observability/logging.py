"""One logging setup for every process: stdlib and structlog records rendered as one JSON object per line."""

from __future__ import annotations

import logging
import logging.config
import sys
from typing import Any

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

from wire.redaction import redact_event, redact_text

_configured_version = "unknown"


def _add_version(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    event_dict.setdefault("version", _configured_version)
    return event_dict


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Last line of defence, run on the finished event (traceback already rendered): secret-named fields at any
    depth, and every secret this process registered (wire.redaction), never reach the output."""
    return redact_event(event_dict)


class RedactingRenderer:
    """Wraps the final renderer: masks registered secrets in the rendered line, whatever produced it."""

    def __init__(self, renderer: Processor) -> None:
        self._renderer = renderer

    def __call__(self, logger: WrappedLogger, name: str, event_dict: EventDict) -> str:
        rendered = self._renderer(logger, name, event_dict)
        return redact_text(rendered if isinstance(rendered, str) else str(rendered))


def shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_version,
    ]


def make_formatter(fmt: str = "json") -> logging.Formatter:
    renderer: Processor = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_secrets,
            RedactingRenderer(renderer),
        ],
    )


def configure_logging(*, level: str = "INFO", fmt: str = "json", version: str = "unknown") -> None:
    """Route structlog and stdlib logging (Django, Celery, uvicorn) through one JSON formatter on stdout."""
    global _configured_version
    _configured_version = version
    structlog.configure(
        processors=[
            *shared_processors(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(make_formatter(fmt))
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_mrmarket", False):
            root.removeHandler(existing)
    handler._mrmarket = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    quiet: dict[str, Any] = {
        "uvicorn.access": logging.WARNING,
        "asyncio": logging.WARNING,
        "web3": logging.INFO,
        "axes": logging.WARNING,  # one line per login attempt otherwise; failures and lockouts stay
    }
    for name, lvl in quiet.items():
        logging.getLogger(name).setLevel(lvl)
    for name in ("uvicorn", "uvicorn.error", "celery", "django"):
        # Let these propagate to the root handler instead of printing in their own format.
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
