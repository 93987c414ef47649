"""A job's streams and their health: the book from the depth stream, its orders, fills and balances from the user
data stream, and when either cannot be trusted.

Two halves, each up or down:

- **market** — up from the first book update after (re)subscribing. Down when the stream errs (disconnect, a
  sequence gap ccxt could not bridge) or **stalls**: no depth event for `stream_stall_ms` and the REST book's update
  id is ahead of the stream's (a quiet market is not a stall: the same id confirms the streamed book is current).
- **account** — up once the exchange confirmed the user data subscription. Down when a watch errs, the exchange
  ends the subscription (`eventStreamTerminated`), an order request over the WebSocket API goes unanswered, or a
  REST reconciliation finds a fill the stream never delivered.

A half that goes down is resubscribed with a backoff (doubling from `stream_retry_ms` to 30 s) for as long as the
job runs. The job quotes from the streams only while both halves are up (`live`); otherwise it polls by REST, and
its status, metrics and reports say so. Every (re)connect asks the job for a REST reconciliation first.

Events are collected here and taken by the job in one pass (`take`); `wake` tells the job there is news, so a burst
of book updates while a requote is in flight becomes one requote on the latest book (coalesced per market).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import ccxt

from executor.engine.risk import VWAP_LEVELS
from executor.exchange import ExchangeFailure, OrderSnapshot, TradeSnapshot, Transient
from executor.exchange_stream import StreamGateway
from executor.logging import get_logger
from executor.strategy.base import Book

MAX_RETRY_MS = 30_000
FIRST_BOOK_MS = 5_000  # at least this long for the subscription's answer, the REST snapshot and a first diff
# Python 3.11's asyncio.wait_for returns its inner call's result, swallowing a cancel that lands as that call
# completes (gh-86296): a stream task cancelled while subscribing then waits on, and must be cancelled again.
RECANCEL_S = 0.5
log = get_logger("executor.streams")


class StreamFeed:
    def __init__(
        self,
        gateway: StreamGateway,
        *,
        job_id: str,
        symbol: str,
        assets: tuple[str, str],
        clock: Callable[[], int],
        stall_ms: int,
        retry_ms: int,
        refused: Callable[[Transient], None] = lambda exc: None,
        held_until: Callable[[], int] = lambda: 0,
    ) -> None:
        self.gw, self.job_id, self.symbol, self.assets, self.clock = gateway, job_id, symbol, assets, clock
        # The job's pause: a Retry-After drawn by the feed's own REST calls pauses the job (`refused`), and the feed
        # makes no call of its own before the job's pause ends (`held_until`): the exchange bans a client that
        # keeps calling through its rate limit, whichever part of it calls.
        self.refused, self.held_until = refused, held_until
        self.stall_ms, self.retry_ms = stall_ms, retry_ms
        self.market_up = False
        self.account_up = False
        self.needs_resync = True
        self.book_dirty = False
        self.book_seen_ms: int | None = None
        self.last_depth_ms = 0
        self.mode_since_ms = clock()
        self.book_events = 0
        self.counters = {"reconnects": 0, "gaps": 0, "stalls": 0, "expired": 0, "missed_fills": 0, "timeouts": 0}
        self.last_reason: str | None = "starting"
        self._orders: list[OrderSnapshot] = []
        self._trades: list[TradeSnapshot] = []
        self._balances: dict[str, tuple[Decimal, Decimal]] | None = None
        self.balance_events = 0  # balances the stream delivered: a REST read older than the last one is stale
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._account_reset = asyncio.Event()

    # -- the job's side ------------------------------------------------------------------------------------------

    @property
    def live(self) -> bool:
        return self.market_up and self.account_up

    @property
    def mode(self) -> str:
        return "streams" if self.live else "polling"

    def start(self) -> None:
        for name, loop in (("market", self._market_loop), ("account", self._account_loop), ("watch", self._watchdog)):
            self._tasks.append(asyncio.create_task(loop(), name=f"feed-{name}-{self.job_id}"))

    async def close(self) -> None:
        tasks, self._tasks = self._tasks, []
        pending = set(tasks)
        while pending:
            for task in pending:
                task.cancel()  # again for one that swallowed the last cancel and waits elsewhere now
            _, pending = await asyncio.wait(pending, timeout=RECANCEL_S)
        for task in tasks:
            if not task.cancelled():
                task.exception()  # retrieved: a loop that failed as it was stopped is no news
        self.gw.ws_enabled = False

    async def wait(self, timeout_s: float) -> None:
        """Until there is news (or `timeout_s` passed: the job's housekeeping runs on its own clock too)."""
        if not self._wake.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout_s)
        self._wake.clear()

    async def wait_live(self, timeout_s: float, stop: asyncio.Event) -> None:
        """Polling: sleep a tick, but come back at once when the streams are live again (or the job stops)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not self.live and not stop.is_set():
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            await self.wait(min(left, 0.1))
            if stop.is_set():
                return

    def take(self) -> tuple[list[OrderSnapshot], list[TradeSnapshot], dict[str, tuple[Decimal, Decimal]] | None]:
        orders, trades, balances = self._orders, self._trades, self._balances
        self._orders, self._trades, self._balances = [], [], None
        return orders, trades, balances

    def book(self) -> tuple[Book | None, int | None]:
        """The streamed book and when its update reached the process (perf_counter_ns); clears the dirty mark."""
        self.book_dirty = False
        return self.gw.book(self.symbol, depth=VWAP_LEVELS), self.gw.depth_arrival_ns(self.symbol)

    def resynced(self, missed_fills: int) -> None:
        """The job reconciled by REST. Fills the stream never delivered mean the account stream cannot be trusted."""
        self.needs_resync = False
        if missed_fills and self.account_up:
            self.counters["missed_fills"] += missed_fills
            self._account_down(f"the REST reconciliation found {missed_fills} fill(s) the stream missed")

    def order_call_failed(self, exc: Transient) -> None:
        """An order request failed without an answer: the next pass reconciles by REST (which also finds out whether
        the exchange answers at all); one over the WebSocket API that went unanswered makes that connection suspect."""
        self.needs_resync = True
        if self.gw.ws_orders and "WebSocket" in exc.message:
            self.counters["timeouts"] += 1
            self._account_down("an order request over the WebSocket API went unanswered")

    def status(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "market": "up" if self.market_up else "down",
            "account": "up" if self.account_up else "down",
            "since_ms": self.mode_since_ms,
            "reason": None if self.live else self.last_reason,
            "book_events": self.book_events,
            **self.counters,
        }

    # -- state changes -------------------------------------------------------------------------------------------

    def _changed_mode(self, was_live: bool) -> None:
        if was_live != self.live:
            self.mode_since_ms = self.clock()
            log.info("feed_mode", job_id=self.job_id, mode=self.mode, reason=self.last_reason)
        self._wake.set()

    def _market_down(self, reason: str) -> None:
        if not self.market_up:
            return
        was = self.live
        self.market_up, self.last_reason = False, f"market stream: {reason}"
        self._changed_mode(was)

    def _account_down(self, reason: str) -> None:
        if not self.account_up:
            return
        was = self.live
        self.account_up, self.last_reason = False, f"account stream: {reason}"
        self.gw.ws_enabled = False
        self._account_reset.set()
        self._changed_mode(was)

    # -- the loops -----------------------------------------------------------------------------------------------

    async def _retrying(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        delay = self.retry_ms
        while True:
            up_before = self.market_up if name == "market" else self.account_up
            try:
                await body()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = exc.message if isinstance(exc, ExchangeFailure) else f"{type(exc).__name__}: {exc}"[:200]
                if isinstance(exc, ccxt.NetworkError):  # ccxt's own REST snapshot for the book, refused with a pause
                    retry_after = self.gw.retry_after_of(exc)
                    if retry_after is not None:
                        self.refused(Transient(f"{name} stream: {type(exc).__name__}", retry_after=retry_after))
                gap = isinstance(exc, ccxt.ChecksumError)
                if gap:
                    self.counters["gaps"] += 1
                (self._market_down if name == "market" else self._account_down)(reason)
                self.counters["reconnects"] += 1
                if up_before:
                    delay = self.retry_ms  # it worked until now: the first retry comes soon
                if gap:
                    continue  # a sequence gap: resubscribe and resync from the snapshot at once
            await asyncio.sleep(max(delay, self.held_until() - self.clock()) / 1000)
            delay = min(delay * 2, MAX_RETRY_MS)

    async def _market_loop(self) -> None:
        async def body() -> None:
            while True:
                if self.market_up:
                    await self.gw.next_book(self.symbol)
                else:
                    await self._first_book()
                now = self.clock()
                self.last_depth_ms = self.book_seen_ms = now
                self.book_events += 1
                self.book_dirty = True
                if not self.market_up:
                    was = self.live
                    self.market_up, self.needs_resync = True, True
                    self._changed_mode(was)
                self._wake.set()

        await self._retrying("market", body)

    async def _first_book(self) -> None:
        """The first book after (re)subscribing, within a bound: a subscription whose confirmation or snapshot was
        lost (the path stalled while it was sent) would otherwise leave the market half down for good, since ccxt
        waits on it forever and the watchdog only probes a half that is up."""
        bound_ms = max(self.stall_ms * 3, FIRST_BOOK_MS)
        try:
            await asyncio.wait_for(self.gw.next_book(self.symbol), bound_ms / 1000)
        except TimeoutError:
            await self.gw.reset_stream("market")
            raise Transient(f"no book within {bound_ms} ms of subscribing") from None

    async def _account_loop(self) -> None:
        async def body() -> None:
            if self._account_reset.is_set():
                await self.gw.reset_stream("account")
                self._account_reset.clear()
            await self.gw.subscribe_account()
            was = self.live
            self.account_up, self.needs_resync = True, True
            self.gw.ws_enabled = True
            self._changed_mode(was)
            watchers = [
                asyncio.create_task(self._collect(self.gw.next_orders, "_orders"), name="feed-orders"),
                asyncio.create_task(self._collect(self.gw.next_trades, "_trades"), name="feed-trades"),
                asyncio.create_task(self._balance_watch(), name="feed-balance"),
                asyncio.create_task(self._account_reset.wait(), name="feed-reset"),
            ]
            try:
                done, _ = await asyncio.wait(watchers, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in watchers:
                    task.cancel()
                for task in watchers:
                    with contextlib.suppress(BaseException):
                        await task
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            raise Transient("the account stream was reset")

        await self._retrying("account", body)

    async def _collect(self, watch: Callable[[str], Awaitable[list[Any]]], into: str) -> None:
        # By name: `take` hands the collected list to the job and starts a new one.
        while True:
            items = await watch(self.symbol)
            getattr(self, into).extend(items)
            self._wake.set()

    async def _balance_watch(self) -> None:
        while True:
            self._balances = await self.gw.next_balances(self.assets)
            self.balance_events += 1
            self._wake.set()

    async def _watchdog(self) -> None:
        """Catch what no exception reports: a stream gone silent, a subscription the exchange ended."""
        period = max(self.stall_ms / 4, 100) / 1000
        while True:
            await asyncio.sleep(period)
            if self.account_up and not self.gw.account_subscribed():
                self.counters["expired"] += 1
                self._account_down("the exchange ended the user data subscription")
            if not self.market_up or self.clock() - self.last_depth_ms < self.stall_ms:
                continue
            probe_started = self.clock()
            if probe_started < self.held_until():
                continue
            try:
                rest = await self.gw.rest_book_nonce(self.symbol)
            except Transient as exc:
                if exc.retry_after is not None:
                    self.refused(exc)
                continue  # the exchange itself is in trouble: the job's own calls will say so
            except ExchangeFailure:
                continue
            streamed = self.gw.book_nonce(self.symbol)
            if rest is not None and streamed is not None and rest > streamed:
                self.counters["stalls"] += 1
                self._market_down(f"no depth event for {self.stall_ms} ms while the book moved on")
                await self.gw.reset_stream("market")
            else:
                self.last_depth_ms = self.book_seen_ms = probe_started  # quiet, and current as of the probe
