"""The one Redis client factory (heartbeats, queue depth, health checks)."""

from __future__ import annotations

from functools import cache

import redis
from django.conf import settings


@cache
def _client(url: str, timeout: float) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True)


def get_redis(*, timeout: float | None = None) -> redis.Redis:
    return _client(settings.REDIS_URL, timeout if timeout is not None else settings.HEALTHCHECK_TIMEOUT_SECONDS)


def key(*parts: str) -> str:
    return ":".join((settings.REDIS_KEY_PREFIX, *parts))
