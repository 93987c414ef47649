"""One job's run loop: exchange in, strategy, risk, orders out, reports — and every failure handled.

    pending_credentials ─credentials─▶ starting ─▶ running ◀─resume── halted
                                                     │  └──kill switch──────▲
                                                     └─stop─▶ stopping ─▶ stopped      (any) ─revoke─▶ revoked

Two ways to run, the same guarantees (docs/executor-streams.md):

- **On streams** (the exchange has them and they are healthy, `executor.engine.streams`): the job wakes on every
  change of the book or of its account. Each pass takes the user data stream's order updates, fills and balances,
  reconciles by REST when due (at start, after every reconnect or gap, every `reconcile_ms`), applies the risk
  gates and the kill switch, and — when the book or its orders changed — asks the strategy and sends the
  replacement orders over the WebSocket API. At most one requote is in flight: news that arrives meanwhile is
  answered by the next pass, on the latest book.
- **Polling** (no streams, or they are down): each tick (`tick_ms`) fetches the book, syncs by REST, and quotes.

Either way: closing report windows that ended, taking due book samples, the kill switch, the stale-book gate, the
dead-man switch and the failure handling (`connectivity`, `sync`, `orders`) are the same code.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import deque
from collections.abc import Callable
from decimal import Decimal

from executor import runtime
from executor.engine.accounting import Position
from executor.engine.reporting import ReportBuilder
from executor.engine.risk import RiskGuard, price_insanity
from executor.engine.state import TERMINAL, Credentials, JobState, RunnerSettings, WallClock
from executor.engine.status import StatusView
from executor.engine.streams import StreamFeed
from executor.engine.tracker import OrderTracker
from executor.exchange import CredentialsRefused, Gateway, Transient
from executor.exchange_stream import StreamGateway
from executor.logging import get_logger
from executor.strategy.base import Balances, Book, MarketRules, Strategy
from wire.jobs import JobSpec
from wire.keys import SigningKey
from wire.redaction import forget_secret, register_secret

__all__ = ["TERMINAL", "Credentials", "JobRunner", "JobState", "RunnerSettings", "WallClock"]

ZERO = Decimal(0)
MISSED_GRACE_MS = 3_000
BALANCE_WAIT_MS = 1_000
log = get_logger("executor.job")


class JobRunner(StatusView):
    def __init__(
        self,
        *,
        spec: JobSpec,
        strategy: Strategy,
        signing_key: SigningKey,
        settings: RunnerSettings,
        clock: Callable[[], int] | None = None,
        gateway_factory: Callable[[Credentials], Gateway] | None = None,
    ) -> None:
        self.spec = spec
        self.spec_digest = spec.digest()
        self.job_id = spec.job_id
        self.symbol = spec.symbol
        self.strategy = strategy
        self.signing_key = signing_key
        self.settings = settings
        self.clock = WallClock(clock)
        self._held: tuple[str | None, ...] = ()  # the credentials' values registered for redaction
        self.limits = spec.risk
        self.risk = RiskGuard(self.limits)
        self.state = JobState.PENDING_CREDENTIALS
        self.reason: str | None = None
        self.created_ms = self.clock()
        self._gateway_factory = gateway_factory or self._default_gateway
        self.gateway: Gateway | None = None
        self.feed: StreamFeed | None = None
        self.tracker = OrderTracker(self.job_id, incarnation_s=self.created_ms // 1000)
        self.reporter: ReportBuilder | None = None
        self.position: Position | None = None
        self.rules: MarketRules | None = None
        self.base_asset = self.quote_asset = ""
        self.balances = Balances(ZERO, ZERO, ZERO, ZERO)
        self.balances_behind_since_ms: int | None = None
        self.book: Book | None = None
        self.book_seen_ms: int | None = None
        self.last_contact_ms: int | None = None
        self.backoff_until_ms = 0
        self.failures = 0
        self.dead_man_tripped = False
        self.side_cooldown: dict[str, int] = {}
        self.foreign_seen: set[str] = set()
        self.loss_offset = ZERO
        self.last_error: str | None = None
        self.halted_at_ms: int | None = None
        self.ticks = 0
        self.book_events = 0
        self.requotes = 0
        # Streams: from the update's arrival, or from the end of the market's previous requote when the update came
        # while that requote was in flight, to the last order written; polling: from the book's fetch to the acks.
        self.tick_to_quote_ms: deque[float] = deque(maxlen=4000)
        self.requote_done_ns = 0  # when the last requote's answers were all in (perf_counter_ns)
        self.quote_ack_ms: deque[float] = deque(maxlen=4000)  # streams: arrival → acknowledged
        self._next_reconcile_ms = 0
        # Each job's REST cadence on streams is its own, within ±10 % of `reconcile_ms` (by its id): jobs started
        # together (a restart) drift apart instead of reconciling all at once every period, a burst of REST calls
        # and their parsing that every job of the process would wait behind.
        spread = int.from_bytes(hashlib.sha256(self.job_id.encode()).digest()[:2], "big") / 65536
        self._reconcile_every_ms = int(self.settings.reconcile_ms * (0.9 + 0.2 * spread))
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._resume = asyncio.Event()
        self._last_tick_ms: int | None = None
        self._last_trade_ms = 0

    # -- control -----------------------------------------------------------------------------------------------

    def _default_gateway(self, creds: Credentials) -> Gateway:
        kind = StreamGateway if self.settings.streams else Gateway
        return kind(
            self.spec.exchange,
            api_key=creds.api_key,
            secret=creds.secret,
            password=creds.password,
            base_url=self.settings.exchange_base_url,
            timeout_ms=self.settings.request_timeout_ms,
        )

    def provide(self, creds: Credentials) -> None:
        if self.state is not JobState.PENDING_CREDENTIALS:
            raise RuntimeError("credentials already provided")
        self.gateway = self._gateway_factory(creds)
        # From here on this process holds the plaintext: no log line, error or response may carry it, until the
        # key is wiped (`_wipe` forgets it again).
        self._held = (creds.api_key, creds.secret, creds.password)
        register_secret(*self._held)
        self.state = JobState.STARTING
        self._task = asyncio.create_task(self._run(), name=f"job-{self.job_id}")

    def request_stop(self) -> None:
        if self.state is JobState.PENDING_CREDENTIALS:
            self.state = JobState.STOPPED
            self.reason = "stopped before credentials arrived"
            return
        self._stop.set()
        self._resume.set()

    def resume(self) -> None:
        if self.state is not JobState.HALTED:
            raise RuntimeError(f"job is {self.state}, not halted")
        self._resume.set()

    async def revoke(self) -> None:
        """Credentials withdrawn: cancel what rests (if the key still works), wipe the key, end the job."""
        task = self._task
        if task is not None and not task.done():
            self._stop.set()
            self._resume.set()
            with contextlib.suppress(asyncio.TimeoutError, Exception):
                await asyncio.wait_for(asyncio.shield(task), timeout=15)
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        await self._wipe()
        self.state = JobState.REVOKED
        self.reason = "credentials revoked by the controller"

    async def wait(self, timeout: float | None = None) -> None:
        if self._task is not None:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)

    async def _wipe(self) -> None:
        if self.feed is not None:
            feed, self.feed = self.feed, None
            await feed.close()
        if self.gateway is not None:
            gateway, self.gateway = self.gateway, None
            with contextlib.suppress(Exception):
                await gateway.close()
        held, self._held = self._held, ()
        forget_secret(*held)

    # -- the loop ----------------------------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._start()
            self._open_feed()
            while not self._stop.is_set():
                if self.state is JobState.HALTED:
                    await self._halted_wait()
                    continue
                if self.feed is not None and self.feed.live:
                    await self._stream_pass()
                    self._sign_reports()
                    continue
                await self.tick()
                self._sign_reports()
                await self._sleep_tick()
            await self._finish()
        except CredentialsRefused as exc:
            self.reason = exc.message
            log.warning("job_credentials_refused", job_id=self.job_id)
            await self._wipe()
            self.state = JobState.FAILED
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job_failed", job_id=self.job_id)
            self.reason = "internal error; see the executor log"
            with contextlib.suppress(Exception):
                if self.gateway is not None:
                    await self.gateway.cancel_all(self.symbol)
            await self._wipe()
            self.state = JobState.FAILED

    async def _sleep_tick(self) -> None:
        if self.feed is not None:  # polling while the streams are down: back on them as soon as they are up
            await self.feed.wait_live(self.settings.tick_ms / 1000, self._stop)
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop.wait(), self.settings.tick_ms / 1000)

    def _open_feed(self) -> None:
        gw = self.gateway
        if not self.settings.streams or not isinstance(gw, StreamGateway) or not gw.has_streams:
            return
        self.feed = StreamFeed(
            gw,
            job_id=self.job_id,
            symbol=self.symbol,
            assets=(self.base_asset, self.quote_asset),
            clock=self.clock,
            stall_ms=self.settings.stream_stall_ms,
            retry_ms=self.settings.stream_retry_ms,
            refused=self._honour_retry_after,
            held_until=lambda: self.backoff_until_ms,
        )
        self.feed.start()

    async def _start(self) -> None:
        assert self.gateway is not None
        gw = self.gateway
        self.rules, self.base_asset, self.quote_asset = await self._retrying(lambda: gw.load_market(self.symbol))
        book = await self._retrying(lambda: gw.order_book(self.symbol))
        now = self.clock()
        self._take_book(book, now)
        # The account's own first read (open orders, balances) waits out the exchange's trouble as the market's
        # reads do: a failing first call is no reason to fail the job (nothing of it is applied until it answers).
        await self._retrying(lambda: self._sync(self.clock(), first=True))
        mark = book.mid or ZERO
        self.position = Position.opening(self.base_asset, self.quote_asset, base0=self.balances.base_total, mark=mark)
        self._last_trade_ms = now
        self.reporter = ReportBuilder(
            job_id=self.job_id,
            job_spec_digest=self.spec_digest,
            exchange=self.spec.exchange,
            symbol=self.symbol,
            signing_key=self.signing_key,
            build_version=self.settings.build_version,
            measurement=self.settings.measurement,
            interval_ms=self.spec.report_interval_seconds * 1000,
            sample_ms=self.spec.sample_seconds * 1000,
            start_ms=now,
        )
        self._last_tick_ms = now
        self.state = JobState.RUNNING
        runtime.settled()  # this job's client, its market tables and its state live as long as the job
        log.info("job_running", job_id=self.job_id, symbol=self.symbol)

    async def tick(self) -> None:
        self.ticks += 1
        now = self.clock()
        assert self.reporter is not None
        assert self.gateway is not None
        self._housekeeping(now)
        if self.feed is not None:  # the account stream may be up while the market stream is not
            self._apply_stream(*self.feed.take(), now)
        if now < self.backoff_until_ms:
            self._sample(now)
            return
        try:
            book = await self.gateway.order_book(self.symbol)
        except Transient as exc:
            self._trouble(exc, now)
            self._sample(now)
            return
        seen = self.clock()
        # The book is as old as the request that fetched it (by our clock: an exchange's timestamp is another
        # clock, and Binance's REST depth has none): a slow answer is an old book.
        self._take_book(book, now)
        try:
            await self._clear_dead_man(seen)
            await self._sync(seen)
            self._contact()  # the account's own calls answered: the exchange is reachable for this job
        except Transient as exc:
            self._trouble(exc, seen)
            return
        self._sample(seen)
        if self._kill_switch(seen):
            return
        # By now (the account's own calls took their time) the prices we would quote from may be too old.
        if await self._not_quoting(book, self.clock()):
            return
        await self._quote(book, seen)

    async def _not_quoting(self, book: Book, now: int) -> bool:
        """The gates between a book and a quote: prices outside the job's band or a book too old to quote from
        cancel what rests and say why. True when the job must not quote now."""
        params = self.spec.strategy.params
        insane = price_insanity(book, floor=params.price_floor, ceiling=params.price_ceiling)
        if insane is not None:
            self.last_error = f"not quoting: {insane}"
        elif self.risk.stale(self.book_seen_ms, now):
            assert self.book_seen_ms is not None
            self.last_error = f"not quoting: the book is {(now - self.book_seen_ms) / 1000:.1f} s old"
        else:
            return False
        await self._cancel(self.tracker.resting(), now)
        return True

    async def _clear_dead_man(self, now: int) -> None:
        """After the exchange's dead-man switch fired: everything of ours is cancelled there, so say so here."""
        assert self.gateway is not None
        if not self.dead_man_tripped:
            return
        await self.gateway.cancel_all(self.symbol)
        for order in self.tracker.in_state("open", "cancelling"):
            self.tracker.cancel_sent(order.client_order_id, now)
        self.dead_man_tripped = False
        log.warning("dead_man_cleared", job_id=self.job_id)

    def _housekeeping(self, now: int) -> None:
        """Close report windows that ended and account the time since the last pass (up, two-sided, polling)."""
        assert self.reporter is not None
        self._close_windows(now, sign=False)  # signed once the pass is done (`_sign_reports`)
        up = self.state is JobState.RUNNING and now >= self.backoff_until_ms and self.failures == 0
        dt = now - (self._last_tick_ms or now)
        self._last_tick_ms = now
        polling = self.feed is None or not self.feed.live
        self.reporter.account_time(dt, up=up, two_sided=self._two_sided(), polling=polling)

    async def _stream_pass(self) -> None:
        """One pass on streams: wake on news (or `tick_ms`), take it, reconcile when due, quote when it matters."""
        feed = self.feed
        assert feed is not None
        assert self.gateway is not None
        await feed.wait(self.settings.tick_ms / 1000)
        if self._stop.is_set() or not feed.live:
            return
        self.ticks += 1
        now = self.clock()
        self._housekeeping(now)
        orders_changed = self._apply_stream(*feed.take(), now)
        if now < self.backoff_until_ms:
            self._sample(now)
            return
        # Before quoting only when the job's view may be wrong (a (re)connect, a gap, the dead-man switch); the slow
        # periodic reconciliation runs after the quote, so its REST round trip never delays an answer to the book.
        if self.dead_man_tripped or feed.needs_resync:
            if not await self._reconcile(now):
                return
            orders_changed = True
            if not feed.live:
                return
        else:
            self._contact()  # the streams are live: the exchange is reachable for this job
        book_changed = feed.book_dirty
        book, arrival_ns = feed.book()
        if book is None:
            return
        self.book_events = feed.book_events
        self._take_book(book, feed.book_seen_ms or now)
        self._sample(now)
        if self._kill_switch(now):
            return
        if await self._not_quoting(book, now):
            return
        behind = self.balances_behind_since_ms
        if behind is not None and now - behind < BALANCE_WAIT_MS:
            return  # the balance message after a fill is on its way: sizing from the old balances would overdraw
        if behind is not None:  # it never came: the REST pass reads the balances
            self.balances_behind_since_ms = None
            feed.needs_resync = True
            return
        if book_changed or orders_changed or self.side_cooldown:
            await self._quote(book, now, arrival_ns=arrival_ns if book_changed else None, streams=True)
        if now >= self._next_reconcile_ms:
            await self._reconcile(self.clock())  # after the quote: its own time, events must not go backwards

    async def _reconcile(self, now: int) -> bool:
        """The REST pass on streams (clearing the dead-man switch first when it is set). False when the exchange
        did not answer."""
        feed = self.feed
        assert feed is not None
        assert self.gateway is not None
        try:
            await self._clear_dead_man(now)
            booked = await self._sync(now)
            self._contact()
        except Transient as exc:
            self._trouble(exc, now)
            return False
        # A fill the stream has not delivered a while after it happened was missed (one still on its way, or
        # collected but not yet taken, is not).
        feed.resynced(sum(1 for t in booked if t.timestamp_ms < now - MISSED_GRACE_MS))
        self._next_reconcile_ms = now + self._reconcile_every_ms
        return True

    def _take_book(self, book: Book, now: int) -> None:
        self.book, self.book_seen_ms = book, now

    # -- risk and quoting ------------------------------------------------------------------------------------

    def _kill_switch(self, now: int) -> bool:
        assert self.position is not None
        assert self.book is not None
        mark = self.book.mid
        drawdown = self.position.observe(mark)
        reason = self.risk.kill_reason(net_pnl=self.position.net(mark) - self.loss_offset, drawdown=drawdown)
        if reason is None:
            return False
        self.state = JobState.HALTED
        self.halted_at_ms = now
        self.reason = f"kill switch: {reason}"
        self._resume.clear()
        log.warning("kill_switch", job_id=self.job_id, reason=reason)
        return True

    async def _halted_wait(self) -> None:
        """Halted: cancel everything (retrying until the exchange confirms), then wait for resume or stop."""
        await self._cancel_everything()
        while not self._stop.is_set() and not self._resume.is_set():
            now = self.clock()
            self._close_windows(now)
            assert self.reporter is not None
            polling = self.feed is None or not self.feed.live
            self.reporter.account_time(now - (self._last_tick_ms or now), up=False, two_sided=False, polling=polling)
            self._last_tick_ms = now
            self._sample(now)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._resume.wait(), self.settings.tick_ms / 1000)
        if self._stop.is_set():
            return
        assert self.position is not None
        mark = self.book.mid if self.book else None
        self.loss_offset = self.position.net(mark)
        self.position.peak_net = self.position.net(mark)
        self.risk.reset()
        self._resume.clear()
        self.state, self.reason = JobState.RUNNING, None
        self._last_tick_ms = self.clock()
        log.info("job_resumed", job_id=self.job_id)

    def _two_sided(self) -> bool:
        sides = {o.side for o in self.tracker.resting()}
        return sides == {"buy", "sell"}

    def _sample(self, now: int) -> None:
        assert self.reporter is not None
        due = self.reporter.sample_due(now)
        if due is not None:
            self.reporter.sample(due, self.book, self.tracker.resting())
        self._flush_events()

    def _sign_reports(self) -> None:
        """After a pass has answered the book: sign the reports its housekeeping closed."""
        if self.reporter is not None:
            self.reporter.sign_pending()

    def _close_windows(self, now: int, *, final: bool = False, sign: bool = True) -> None:
        assert self.reporter is not None
        self._flush_events()
        while self.reporter.close_due(now):
            self.reporter.close(inventory=self._inventory(), pnl=self._pnl(), sign=sign)
        if final:
            self.reporter.close(inventory=self._inventory(), pnl=self._pnl(), end_ms=now + 1)

    async def _finish(self) -> None:
        self.state = JobState.STOPPING
        if self.gateway is not None and self.reporter is not None:
            await self._cancel_everything()
            with contextlib.suppress(Transient):
                await self._sync(self.clock())
            self._close_windows(self.clock(), final=True)
        await self._wipe()
        self.state = JobState.STOPPED
        self.reason = "stopped by the controller"
        log.info("job_stopped", job_id=self.job_id)
