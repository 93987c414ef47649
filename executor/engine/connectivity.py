"""Whether the exchange answers, and what the job does when it does not.

A transient error (timeout, 5xx, maintenance, 429) backs off — honouring Retry-After — and the job holds (no new
orders) until the exchange answers again. When it is unreachable for longer than `dead_man_seconds` while orders
rest, the dead-man switch is set: everything is cancelled at the first answer before quoting again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from executor.engine.state import JobCore
from executor.exchange import Transient
from executor.logging import get_logger

MAX_BACKOFF_S = 10.0
log = get_logger("executor.job")


class Connectivity(JobCore):
    def _contact(self) -> None:
        self.failures = 0
        self.last_contact_ms = self.clock()

    def _backoff(self, exc: Transient) -> int:
        self.failures += 1
        self.last_error = exc.message
        if exc.retry_after is not None:
            return int(exc.retry_after * 1000)
        return int(min(0.25 * 2 ** (self.failures - 1), MAX_BACKOFF_S) * 1000)

    async def _retrying(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """Retry a call through transient failures (start and stop phases) until it answers or stop is forced."""
        while True:
            try:
                result = await call()
                self._contact()
                return result
            except Transient as exc:
                await asyncio.sleep(self._backoff(exc) / 1000)

    def _honour_retry_after(self, exc: Transient) -> None:
        """An order call refused with a Retry-After (a 429, a 503 in maintenance) pauses the whole job for that long,
        whichever call drew it: an exchange bans a client that keeps calling through its rate limit. Other
        transient failures of an order call are settled by the next sync's lookup, not by a pause."""
        if exc.retry_after is None:
            return
        self.last_error = exc.message
        self.backoff_until_ms = max(self.backoff_until_ms, self.clock() + int(exc.retry_after * 1000))
        log.info("exchange_trouble", job_id=self.job_id, error=exc.message, backoff_ms=int(exc.retry_after * 1000))

    def _trouble(self, exc: Transient, now: int) -> None:
        self.backoff_until_ms = now + self._backoff(exc)
        lost_for = now - (self.last_contact_ms or now)
        if lost_for > self.limits.dead_man_seconds * 1000 and self.tracker.live() and not self.dead_man_tripped:
            self.dead_man_tripped = True
            log.warning("dead_man_tripped", job_id=self.job_id, lost_ms=lost_for)
        log.info("exchange_trouble", job_id=self.job_id, error=exc.message, backoff_ms=self.backoff_until_ms - now)
