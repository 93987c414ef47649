"""The frame of the project's long-running asyncio services that read exchange streams (the market-data recorder,
the live-depth feed): one shard of N, what it serves re-read every `refresh_seconds`, a heartbeat every
`HEARTBEAT_INTERVAL_SECONDS`, a stop on request. A failed refresh or heartbeat (the database or Redis away) is
logged and tried again next round; whatever the service already runs keeps going meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connections

from mrmarket import heartbeats
from mrmarket.observability.logging import get_logger

log = get_logger(__name__)


def db_call(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A sync database (or Redis) call from the loop: one thread for all of them, and a connection that a database
    restart broke is replaced first."""

    def call(*args: Any, **kwargs: Any) -> Any:
        close_old_connections()
        return fn(*args, **kwargs)

    return sync_to_async(call, thread_sensitive=True)


class ShardedLoop(ABC):
    """Subclasses name themselves (`service`, the prefix of their log events), say how often to refresh, and
    implement `_refresh()` and `_close()`."""

    service = "service"

    def __init__(self, *, shard: int, shards: int, heartbeat_prefix: str) -> None:
        if not 0 <= shard < shards:
            raise ValueError("the shard must be in [0, shards)")
        self.shard, self.shards = shard, shards
        self.component = f"{heartbeat_prefix}{shard}/{shards}"
        self._stop = asyncio.Event()

    @abstractmethod
    def refresh_seconds(self) -> float: ...

    @abstractmethod
    async def _refresh(self) -> None: ...

    @abstractmethod
    async def _close(self) -> None: ...

    def stop(self) -> None:
        self._stop.set()

    async def close(self) -> None:
        """Everything the service opened, closed; then the database thread's connection."""
        await self._close()
        await sync_to_async(connections.close_all, thread_sensitive=True)()

    async def run(self) -> None:
        refresh, beat = self.refresh_seconds(), float(settings.HEARTBEAT_INTERVAL_SECONDS)
        log.info(f"{self.service}_started", shard=self.shard, shards=self.shards)
        next_refresh = next_beat = 0.0
        try:
            while not self._stop.is_set():
                if time.monotonic() >= next_refresh:
                    next_refresh = time.monotonic() + refresh
                    try:
                        await self._refresh()
                    except Exception as exc:
                        log.exception(f"{self.service}_refresh_failed", shard=self.shard, error=repr(exc))
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + beat
                    try:
                        await db_call(heartbeats.record)(self.component)
                    except Exception as exc:
                        log.exception(f"{self.service}_heartbeat_failed", shard=self.shard, error=repr(exc))
                with contextlib.suppress(TimeoutError):
                    wait = max(0.0, min(next_refresh, next_beat) - time.monotonic())
                    await asyncio.wait_for(self._stop.wait(), timeout=wait)
        finally:
            await self.close()
            log.info(f"{self.service}_stopped", shard=self.shard, shards=self.shards)
