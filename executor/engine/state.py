"""What a job is made of, shared by the parts of the run loop: its states, its settings, its clock, and the
attributes every part reads (declared once on `JobCore`, set by `JobRunner.__init__`)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING

from executor.engine.accounting import Position
from executor.engine.reporting import ReportBuilder
from executor.engine.risk import RiskGuard
from executor.engine.tracker import OrderTracker
from executor.exchange import Gateway
from executor.strategy.base import Balances, Book, MarketRules, Strategy
from wire.jobs import JobSpec, RiskLimits
from wire.keys import SigningKey

if TYPE_CHECKING:
    from executor.engine.streams import StreamFeed
    from executor.engine.tracker import TrackedOrder

ZERO = Decimal(0)


class JobState(StrEnum):
    PENDING_CREDENTIALS = "pending_credentials"
    STARTING = "starting"
    RUNNING = "running"
    HALTED = "halted"
    STOPPING = "stopping"
    STOPPED = "stopped"
    REVOKED = "revoked"
    FAILED = "failed"


TERMINAL = frozenset({JobState.STOPPED, JobState.REVOKED, JobState.FAILED})


@dataclass(frozen=True)
class Credentials:
    api_key: str
    secret: str
    password: str | None = None

    def __repr__(self) -> str:  # never print key material
        return "Credentials(***)"


class WallClock:
    """Milliseconds since the epoch that never go backwards (report timestamps must not)."""

    def __init__(self, source: Callable[[], int] | None = None) -> None:
        self._source = source or (lambda: time.time_ns() // 1_000_000)
        self._last = 0

    def __call__(self) -> int:
        self._last = max(self._last, self._source())
        return self._last


@dataclass(frozen=True)
class RunnerSettings:
    tick_ms: int = 1000  # the polling cadence (and, on streams, the longest wait between housekeeping passes)
    exchange_base_url: str | None = None
    unknown_orders: str = "cancel"  # cancel | leave
    build_version: str = ""
    measurement: str = ""
    request_timeout_ms: int = 10_000
    # Streams (docs/executor-streams.md): quote on every change of the book, reconcile by REST at this cadence.
    streams: bool = True
    reconcile_ms: int = 30_000
    stream_stall_ms: int = 3_000  # no depth event for this long: the REST book is asked whether the stream stalled
    stream_retry_ms: int = 2_000  # first wait before a stream that went down is tried again (doubles to 30 s)


class JobCore:
    """The state every part of the run loop shares. Only `JobRunner.__init__` assigns these first."""

    spec: JobSpec
    spec_digest: str
    job_id: str
    symbol: str
    strategy: Strategy
    signing_key: SigningKey
    settings: RunnerSettings
    clock: WallClock
    limits: RiskLimits
    risk: RiskGuard
    state: JobState
    reason: str | None
    created_ms: int
    gateway: Gateway | None
    feed: StreamFeed | None
    tracker: OrderTracker
    reporter: ReportBuilder | None
    position: Position | None
    rules: MarketRules | None
    base_asset: str
    quote_asset: str
    balances: Balances
    balances_behind_since_ms: int | None  # a fill came by stream, its balance change not yet
    book: Book | None
    book_seen_ms: int | None
    last_contact_ms: int | None
    backoff_until_ms: int
    failures: int
    dead_man_tripped: bool
    side_cooldown: dict[str, int]
    foreign_seen: set[str]
    loss_offset: Decimal
    last_error: str | None
    halted_at_ms: int | None
    ticks: int
    book_events: int
    requotes: int
    tick_to_quote_ms: deque[float]
    quote_ack_ms: deque[float]
    requote_done_ns: int
    _stop: asyncio.Event
    _resume: asyncio.Event
    _last_tick_ms: int | None
    _last_trade_ms: int

    def _flush_events(self) -> None:
        """Hand the tracker's new order events and fills to the report being built."""
        if self.reporter is not None:
            events, fills = self.tracker.take_events()
            self.reporter.add(events, fills)

    if TYPE_CHECKING:  # `OrderFlow` defines it; the reconciliation below it in the stack calls it

        async def _cancel(self, orders: list[TrackedOrder], now: int) -> None: ...
