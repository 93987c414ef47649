"""One job's run loop: exchange in, strategy, risk, orders out, reports — and every failure handled.

    pending_credentials ─credentials─▶ starting ─▶ running ◀─resume── halted
                                                     │  └──kill switch──────▲
                                                     └─stop─▶ stopping ─▶ stopped      (any) ─revoke─▶ revoked

Each tick (`tick_ms`): close report windows that ended, fetch the book, sync with the exchange (trades → fills
and PnL, open orders → statuses, adoption of this job's orders from an earlier run, foreign orders by
policy, lookups that resolve unanswered creates and cancels, balances), take due book samples, apply risk
gates and the kill switch, ask the strategy, then send cancels and admitted places concurrently.

Failures: a transient error (timeout, 5xx, maintenance, 429) backs off — honouring Retry-After — and the job
holds (no new orders) until the exchange answers again. A create without an answer is `unknown`; it is
looked up by its client order id once the exchange could no longer accept it (`AMBIGUOUS_RESOLVE_MS`) and is
never re-sent. A cancel without an answer is re-checked and re-sent. A refused order for lack of balance
puts that side on a cooldown until balances are re-read (shrink or skip, never spin). When the exchange is
unreachable for longer than `dead_man_seconds`, the dead-man switch cancels everything at the first answer
before quoting again. Credentials refused by the exchange halt the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from executor.engine.accounting import Position
from executor.engine.reporting import ReportBuilder, dec
from executor.engine.risk import RiskGuard, price_insanity
from executor.engine.tracker import OrderTracker, TrackedOrder
from executor.exchange import CredentialsRefused, Gateway, NotFound, OrderSnapshot, Rejected, Transient
from executor.logging import get_logger
from executor.strategy.base import Balances, Book, MarketRules, Strategy, StrategyInput
from wire.jobs import JobSpec
from wire.keys import SigningKey
from wire.redaction import forget_secret, redact_text, register_secret

AMBIGUOUS_RESOLVE_MS = 6_000  # Binance refuses a request older than recvWindow (5 s) from its timestamp
CANCEL_RECHECK_MS = 3_000
SIDE_COOLDOWN_MS = 5_000
TRADE_OVERLAP_MS = 60_000
MAX_BACKOFF_S = 10.0
ZERO = Decimal(0)
log = get_logger("executor.job")


async def _nothing() -> list[Any]:
    return []


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
    tick_ms: int = 1000
    exchange_base_url: str | None = None
    unknown_orders: str = "cancel"  # cancel | leave
    build_version: str = ""
    measurement: str = ""
    request_timeout_ms: int = 10_000


class JobRunner:
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
        self.tracker = OrderTracker(self.job_id, incarnation_s=self.created_ms // 1000)
        self.reporter: ReportBuilder | None = None
        self.position: Position | None = None
        self.rules: MarketRules | None = None
        self.base_asset = self.quote_asset = ""
        self.balances = Balances(ZERO, ZERO, ZERO, ZERO)
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
        self.tick_to_quote_ms: deque[float] = deque(maxlen=2000)
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._resume = asyncio.Event()
        self._last_tick_ms: int | None = None
        self._last_trade_ms = 0

    # -- control -----------------------------------------------------------------------------------------------

    def _default_gateway(self, creds: Credentials) -> Gateway:
        return Gateway(
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
            while not self._stop.is_set():
                if self.state is JobState.HALTED:
                    await self._halted_wait()
                    continue
                await self.tick()
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
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop.wait(), self.settings.tick_ms / 1000)

    async def _retrying(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """Retry a call through transient failures (start and stop phases) until it answers or stop is forced."""
        while True:
            try:
                result = await call()
                self._contact()
                return result
            except Transient as exc:
                await asyncio.sleep(self._backoff(exc) / 1000)

    async def _start(self) -> None:
        assert self.gateway is not None
        gw = self.gateway
        self.rules, self.base_asset, self.quote_asset = await self._retrying(lambda: gw.load_market(self.symbol))
        book = await self._retrying(lambda: gw.order_book(self.symbol))
        now = self.clock()
        self._take_book(book, now)
        await self._sync(now, first=True)
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
        log.info("job_running", job_id=self.job_id, symbol=self.symbol)

    async def tick(self) -> None:
        self.ticks += 1
        now = self.clock()
        assert self.reporter is not None
        assert self.gateway is not None
        self._close_windows(now)
        up = self.state is JobState.RUNNING and now >= self.backoff_until_ms and self.failures == 0
        dt = now - (self._last_tick_ms or now)
        self._last_tick_ms = now
        self.reporter.account_time(dt, up=up, two_sided=self._two_sided())
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
            if self.dead_man_tripped:
                await self.gateway.cancel_all(self.symbol)
                for order in self.tracker.in_state("open", "cancelling"):
                    self.tracker.cancel_sent(order.client_order_id, seen)
                self.dead_man_tripped = False
                log.warning("dead_man_cleared", job_id=self.job_id)
            await self._sync(seen)
            self._contact()  # the account's own calls answered: the exchange is reachable for this job
        except Transient as exc:
            self._trouble(exc, seen)
            return
        self._sample(seen)
        if self._kill_switch(seen):
            return
        params = self.spec.strategy.params
        insane = price_insanity(book, floor=params.price_floor, ceiling=params.price_ceiling)
        if insane is not None:
            self.last_error = f"not quoting: {insane}"
            await self._cancel(self.tracker.resting(), seen)
            return
        checked = self.clock()
        if self.risk.stale(self.book_seen_ms, checked):
            # By now (the account's own calls took their time) the prices we would quote from are too old.
            assert self.book_seen_ms is not None
            self.last_error = f"not quoting: the book is {(checked - self.book_seen_ms) / 1000:.1f} s old"
            await self._cancel(self.tracker.resting(), checked)
            return
        await self._quote(book, seen)

    # -- exchange state ----------------------------------------------------------------------------------------

    def _contact(self) -> None:
        self.failures = 0
        self.last_contact_ms = self.clock()

    def _backoff(self, exc: Transient) -> int:
        self.failures += 1
        self.last_error = exc.message
        if exc.retry_after is not None:
            return int(exc.retry_after * 1000)
        return int(min(0.25 * 2 ** (self.failures - 1), MAX_BACKOFF_S) * 1000)

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

    def _take_book(self, book: Book, now: int) -> None:
        self.book, self.book_seen_ms = book, now

    async def _sync(self, now: int, *, first: bool = False) -> None:
        """Read trades, open orders and balances (concurrently: one round trip), then apply them in that order."""
        assert self.gateway is not None
        gw, tr = self.gateway, self.tracker
        since = max(0, self._last_trade_ms - TRADE_OVERLAP_MS)
        trades_call = gw.my_trades(self.symbol, since_ms=since) if not first else _nothing()
        trades, open_now, free_locked = await asyncio.gather(
            trades_call, gw.open_orders(self.symbol), gw.balances((self.base_asset, self.quote_asset))
        )
        for t in sorted(trades, key=lambda t: (t.timestamp_ms, t.trade_id)):
            if t.timestamp_ms < self.created_ms - TRADE_OVERLAP_MS:
                continue
            if tr.trade(t, now) and self.position is not None:
                self.position.fill(side=t.side, price=t.price, amount=t.amount, fee=t.fee, fee_asset=t.fee_asset)
                self._last_trade_ms = max(self._last_trade_ms, t.timestamp_ms)
        seen_ids = set()
        for snap in open_now:
            cid = snap.client_order_id or ""
            seen_ids.add(cid)
            if cid in tr.orders:
                tr.apply_snapshot(snap, now)
            elif tr.owns(cid):
                # The ladder level an old order was placed for is not on the exchange: adopted at level 0, the
                # strategy keeps it if it fits that slot and replaces it otherwise.
                tr.adopt(snap, level=0, now_ms=now)
            else:
                await self._foreign(snap)
        for order in list(tr.live()):
            if order.client_order_id in seen_ids:
                if order.status == "cancelling" and now - (order.cancel_sent_ms or now) > CANCEL_RECHECK_MS:
                    await self._cancel([order], now)  # the cancel's answer was lost and the order still rests
                continue
            await self._resolve_missing(order, now)
        (bf, bl), (qf, ql) = free_locked[self.base_asset], free_locked[self.quote_asset]
        self.balances = Balances(bf, bl, qf, ql)
        self.side_cooldown = {s: t for s, t in self.side_cooldown.items() if t > now}

    async def _resolve_missing(self, order: TrackedOrder, now: int) -> None:
        """A live order the exchange does not list as open: find out what became of it."""
        assert self.gateway is not None
        if order.status == "pending":
            return  # its create is in flight right now
        if order.status == "unknown" and now - order.created_ms < AMBIGUOUS_RESOLVE_MS:
            return  # the exchange could still accept it: wait, then look it up
        try:
            snap = await self.gateway.order_by_client_id(self.symbol, order.client_order_id)
        except NotFound:
            if order.status == "unknown":
                self.tracker.not_on_exchange(order.client_order_id, now)
            else:
                self.tracker.refused(order.client_order_id, "gone from the exchange without a trace", now)
            return
        self.tracker.apply_snapshot(snap, now)
        if snap.status == "closed" and order.filled < order.amount:
            order.status = "filled"  # the trades may come on the next sync; fills are counted from trades

    async def _foreign(self, snap: OrderSnapshot) -> None:
        """An open order on the job's market not placed by this job."""
        assert self.gateway is not None
        key = snap.exchange_order_id
        if key not in self.foreign_seen:
            self.foreign_seen.add(key)
            log.warning("foreign_order", job_id=self.job_id, policy=self.settings.unknown_orders)
        if self.settings.unknown_orders == "cancel" and snap.client_order_id:
            with contextlib.suppress(NotFound, Rejected):
                await self.gateway.cancel(self.symbol, snap.client_order_id)

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
            self.reporter.account_time(now - (self._last_tick_ms or now), up=False, two_sided=False)
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

    def _flush_events(self) -> None:
        if self.reporter is not None:
            events, fills = self.tracker.take_events()
            self.reporter.add(events, fills)

    async def _quote(self, book: Book, seen: int) -> None:
        assert self.rules is not None
        assert self.gateway is not None
        decision = self.strategy.decide(
            StrategyInput(
                now_ms=seen,
                book=book,
                open_orders=self.tracker.for_strategy(),
                balances=self.balances,
                rules=self.rules,
            )
        )
        cancels = [self.tracker.orders[c] for c in decision.cancel if c in self.tracker.orders]
        wanted = [d for d in decision.place if self.side_cooldown.get(d.side, 0) <= seen]
        live = self.tracker.live()
        still_live = len(live) - len(cancels)
        potential_base = self.balances.base_total + sum(
            (o.remaining for o in live if o.side == "buy" and o not in cancels), ZERO
        )
        admitted, _notes = self.risk.admit(
            [(d.side, d.price, d.amount) for d in wanted],
            live_orders=max(still_live, 0),
            potential_base=potential_base,
            mark=book.mid or ZERO,
            now_ms=seen,
        )
        intents = [
            self.tracker.new_intent(
                side=wanted[i].side, level=wanted[i].level, price=wanted[i].price, amount=wanted[i].amount, now_ms=seen
            )
            for i in admitted
        ]
        await asyncio.gather(self._cancel(cancels, seen), *(self._place(o) for o in intents))
        if intents:
            self.tick_to_quote_ms.append((self.clock() - seen) * 1.0)
        self._flush_events()

    async def _place(self, order: TrackedOrder) -> None:
        assert self.gateway is not None
        try:
            snap = await self.gateway.create_limit(
                self.symbol,
                order.side,
                order.amount,
                order.price,
                client_order_id=order.client_order_id,
                post_only=True,
            )
        except Transient as exc:
            self.tracker.unanswered(order.client_order_id)  # resolved by lookup, never re-sent
            self._honour_retry_after(exc)
            return
        except Rejected as exc:
            now = self.clock()
            self.tracker.refused(order.client_order_id, exc.kind, now)
            if exc.kind == "insufficient_balance":
                self.side_cooldown[order.side] = now + SIDE_COOLDOWN_MS
            elif exc.kind == "duplicate":
                order.status = "unknown"  # an earlier attempt landed: look it up
            elif exc.kind != "would_take":
                self.risk.record_reject()
            return
        self.risk.record_accept()
        self.tracker.acknowledged(order.client_order_id, snap, self.clock())

    async def _cancel(self, orders: list[TrackedOrder], now: int) -> None:
        assert self.gateway is not None
        gw = self.gateway

        async def one(order: TrackedOrder) -> None:
            self.tracker.cancel_sent(order.client_order_id, now)
            try:
                snap = await gw.cancel(self.symbol, order.client_order_id)
            except Transient as exc:
                self._honour_retry_after(exc)
                return  # lost ack: re-checked on the next sync
            except NotFound:
                await self._resolve_missing(order, self.clock())
                return
            except Rejected:
                return
            self.tracker.apply_snapshot(snap, self.clock())

        await asyncio.gather(*(one(o) for o in orders if o.status in ("open", "cancelling")))

    async def _cancel_everything(self) -> None:
        """Cancel every order of the job and confirm with the exchange that none rests; retries through outages."""
        assert self.gateway is not None
        gw = self.gateway
        while True:
            try:
                await gw.cancel_all(self.symbol)
                now = self.clock()
                for order in self.tracker.in_state("open", "cancelling"):
                    self.tracker.cancel_sent(order.client_order_id, now)
                await self._sync(now)
                self._contact()
                remaining = [o for o in self.tracker.live() if o.status != "pending"]
                if not remaining:  # _sync just listed the exchange's open orders: none of ours rests
                    self._flush_events()
                    return
                if all(o.status == "unknown" for o in remaining):
                    await asyncio.sleep(AMBIGUOUS_RESOLVE_MS / 4000)
            except Transient as exc:
                await asyncio.sleep(self._backoff(exc) / 1000)

    def _close_windows(self, now: int, *, final: bool = False) -> None:
        assert self.reporter is not None
        self._flush_events()
        while self.reporter.close_due(now):
            self.reporter.close(inventory=self._inventory(), pnl=self._pnl())
        if final:
            self.reporter.close(inventory=self._inventory(), pnl=self._pnl(), end_ms=now + 1)

    def _inventory(self) -> dict[str, Decimal]:
        if not self.base_asset:
            return {}
        return {self.base_asset: self.balances.base_total, self.quote_asset: self.balances.quote_total}

    def _pnl(self) -> dict[str, Decimal]:
        if self.position is None:
            return {"realized": ZERO, "unrealized": ZERO, "fees": ZERO}
        mark = self.book.mid if self.book else None
        return {
            "realized": self.position.realized,
            "unrealized": self.position.unrealized(mark),
            "fees": self.position.fees,
        }

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

    # -- views -------------------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        now = self.clock()
        mark = self.book.mid if self.book else None
        pnl = self._pnl()
        latencies = sorted(self.tick_to_quote_ms)
        return {
            "job_id": self.job_id,
            "state": str(self.state),
            # Both may quote an exchange's error text: masked of any secret this process holds.
            "reason": redact_text(self.reason) if self.reason else None,
            "job_spec_digest": self.spec_digest,
            "exchange": self.spec.exchange,
            "symbol": self.symbol,
            "created_ms": self.created_ms,
            "exchange_reachable": self.failures == 0 and self.last_contact_ms is not None,
            "last_contact_ms": self.last_contact_ms,
            "book_age_ms": now - self.book_seen_ms if self.book_seen_ms else None,
            "dead_man_tripped": self.dead_man_tripped,
            "halted_at_ms": self.halted_at_ms,
            "last_error": redact_text(self.last_error) if self.last_error else None,
            "orders": {
                "live": len(self.tracker.live()),
                "resting": [
                    {
                        "client_order_id": o.client_order_id,
                        "side": o.side,
                        "price": dec(o.price),
                        "remaining": dec(o.remaining),
                    }
                    for o in self.tracker.resting()
                ],
                "unknown": len(self.tracker.in_state("unknown")),
            },
            "fills": len(self.tracker.trade_ids),
            "inventory": {k: dec(v) for k, v in self._inventory().items()},
            "pnl": {k: dec(v.quantize(Decimal("1e-8"))) for k, v in pnl.items()},
            "mark": dec(mark) if mark is not None else None,
            "reports": len(self.reporter.reports) if self.reporter else 0,
            # Integers only: the wire refuses floats (docs/api/report-v1.md).
            "tick_to_quote_ms_p50": int(latencies[len(latencies) // 2]) if latencies else None,
        }
