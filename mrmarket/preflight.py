"""Checks a process makes before it starts serving: reachable database and Redis, named by their setting."""

from __future__ import annotations

import redis
from django.conf import settings
from django.db import connection
from django.db.utils import OperationalError

from mrmarket.config import ConfigError, redact_url
from mrmarket.redis import get_redis


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def check_database() -> None:
    try:
        connection.ensure_connection()
    except OperationalError as exc:
        raise ConfigError(f"DATABASE_URL: cannot connect to the database ({_reason(exc)})") from None


def check_redis() -> None:
    try:
        get_redis(timeout=3.0).ping()
    except redis.RedisError as exc:
        raise ConfigError(
            f"REDIS_URL: cannot reach Redis at {redact_url(settings.REDIS_URL)} ({_reason(exc)})"
        ) from None


def run() -> None:
    check_database()
    check_redis()
