"""The market-data recorder: an asyncio loop that keeps a local book of each running campaign's market through
the exchange's WebSocket stream (ccxt.pro `watch_order_book`) and stores it at every sample time, once
(docs/scoring.md, "Market-data recorder").

At sample time t the local book is used when its own time is within RECORDER_TOLERANCE_MS of t; otherwise (the
stream is down, or stalled) a REST snapshot is asked for; failing that, a gap with its reason is stored. A sample
time is written at most once (`book_snapshot_record`), so a restarted recorder never writes a second row, and it
only records sample times from when it runs: a sample time it missed has no row, which reads as a gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import ccxt
from django.conf import settings

from mrmarket.exchanges.client import exchange_stream_client
from mrmarket.observability.logging import get_logger
from mrmarket.sharded_loop import ShardedLoop, db_call
from payouts.domain.recorder import LevelError, is_stale, sample_time_at_or_after, trim_book
from payouts.health import RECORDER_HEARTBEAT_PREFIX
from payouts.selectors import RecordedCampaign, recorder_campaigns
from payouts.services import book_snapshot_record

log = get_logger(__name__)

HEARTBEAT_PREFIX = RECORDER_HEARTBEAT_PREFIX
STREAM_RETRY_SECONDS = (0.5, 10.0)  # first and longest wait before re-opening a failed stream


class GapReason:
    STALE = "stale_book"  # the stream's book too old, and no REST answer within the tolerance either
    EXCHANGE_UNAVAILABLE = "exchange_unavailable"  # REST failed: down, in maintenance, rate-limiting
    EXCHANGE_ERROR = "exchange_error"  # REST refused the request otherwise
    ONE_SIDED = "one_sided_book"  # a side is empty: no mid, nothing in the band
    BAD_LEVEL = "bad_level"  # a level that cannot be stored exactly


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class LocalBook:
    """A book as ccxt holds it (levels of numbers, any order) and its time."""

    bids: Any
    asks: Any
    ts_ms: int


class BookWatch:
    """One market's local book, kept by the stream; `current()` is None while the stream is down."""

    def __init__(self, client: Any, exchange: str, symbol: str) -> None:
        self.client, self.exchange, self.symbol = client, exchange, symbol
        self._book: Any = None
        self._arrived_ms: int | None = None
        self.task = asyncio.create_task(self._run(), name=f"watch {exchange} {symbol}")

    async def _run(self) -> None:
        wait = STREAM_RETRY_SECONDS[0]
        while True:
            try:
                book = await self.client.watch_order_book(self.symbol)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any stream failure: the book is no longer kept, try again later
                if self._book is not None:
                    log.warning("recorder_stream_down", exchange=self.exchange, symbol=self.symbol, error=repr(exc))
                self._book, self._arrived_ms = None, None
                await asyncio.sleep(wait)
                wait = min(wait * 2, STREAM_RETRY_SECONDS[1])
                continue
            if self._book is None:
                log.info("recorder_stream_up", exchange=self.exchange, symbol=self.symbol)
            self._book, self._arrived_ms = book, now_ms()
            wait = STREAM_RETRY_SECONDS[0]

    def current(self) -> LocalBook | None:
        if self._book is None or self._arrived_ms is None:
            return None
        ts = self._book.get("timestamp")
        return LocalBook(self._book["bids"], self._book["asks"], ts if isinstance(ts, int) else self._arrived_ms)

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


class Recorder(ShardedLoop):
    """Records the campaigns of shard `shard` of `shards` until `stop()`."""

    service = "recorder"

    def __init__(self, *, shard: int, shards: int) -> None:
        super().__init__(shard=shard, shards=shards, heartbeat_prefix=HEARTBEAT_PREFIX)
        self._clients: dict[str, Any] = {}
        self._watches: dict[tuple[str, str], BookWatch] = {}
        self._samplers: dict[RecordedCampaign, asyncio.Task[None]] = {}

    def refresh_seconds(self) -> float:
        return float(settings.RECORDER_REFRESH_SECONDS)

    async def _refresh(self) -> None:
        now = datetime.now(tz=UTC)
        campaigns = set(await db_call(recorder_campaigns)(now=now, shard=self.shard, shards=self.shards))
        for gone in [c for c in self._samplers if c not in campaigns]:
            self._samplers.pop(gone).cancel()
            log.info("recorder_campaign_dropped", **_fields(gone))
        for campaign in campaigns - set(self._samplers):
            try:
                self._watch(campaign)
            except ccxt.BaseError as exc:  # an exchange ccxt.pro cannot stream: nothing to record it with
                log.error("recorder_campaign_unstreamable", error=repr(exc), **_fields(campaign))
                continue
            self._samplers[campaign] = asyncio.create_task(self._sample(campaign), name=f"sample {campaign}")
            log.info("recorder_campaign_added", **_fields(campaign))
        markets = {(c.exchange, c.symbol) for c in self._samplers}
        for market in [m for m in self._watches if m not in markets]:
            await self._watches.pop(market).close()
        for exchange in [e for e in self._clients if e not in {m[0] for m in markets}]:
            await self._clients.pop(exchange).close()

    def _watch(self, campaign: RecordedCampaign) -> BookWatch:
        market = (campaign.exchange, campaign.symbol)
        if market not in self._watches:
            if campaign.exchange not in self._clients:
                self._clients[campaign.exchange] = exchange_stream_client(campaign.exchange)
            self._watches[market] = BookWatch(self._clients[campaign.exchange], *market)
        return self._watches[market]

    async def _sample(self, campaign: RecordedCampaign) -> None:
        # Each sample time is its own task: a slow REST fallback (bounded by the tolerance) or a slow database
        # write for one sample time must not make the next ones go missing.
        pending: set[asyncio.Task[None]] = set()
        t = sample_time_at_or_after(start_ms=campaign.start_ms, sample_ms=campaign.sample_ms, now_ms=now_ms())
        try:
            while t < campaign.end_ms:
                await asyncio.sleep(max(0, t - now_ms()) / 1000)
                task = asyncio.create_task(self._record_logged(campaign, t))
                pending.add(task)
                task.add_done_callback(pending.discard)
                t = sample_time_at_or_after(
                    start_ms=campaign.start_ms, sample_ms=campaign.sample_ms, now_ms=max(now_ms(), t + 1)
                )
            await asyncio.gather(*pending)
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _record_logged(self, campaign: RecordedCampaign, t_ms: int) -> None:
        try:
            await self.record(campaign, t_ms)
        except Exception as exc:  # one failed sample (the database away, say) must not end the campaign's loop
            log.exception("recorder_sample_failed", t_ms=t_ms, error=repr(exc), **_fields(campaign))

    async def record(self, campaign: RecordedCampaign, t_ms: int) -> bool:
        """Store sample time t of one campaign: the stream's book, else a REST snapshot, else a gap. False when
        the sample time already had its row."""
        tolerance = int(settings.RECORDER_TOLERANCE_MS)
        book, source, reason = self._watch(campaign).current(), "ws", ""
        if book is None or is_stale(book_ms=book.ts_ms, t_ms=t_ms, tolerance_ms=tolerance):
            # An answer arriving after t + tolerance could not stand for t anyway: no point waiting longer.
            budget = max(0.1, (t_ms + tolerance - now_ms()) / 1000)
            rest, source, reason = await self._rest_book(campaign, timeout=budget)
            book = rest if rest is not None else book  # a stale stream book still tells when the book was seen
        stored: dict[str, Any] | None = None
        if book is not None and is_stale(book_ms=book.ts_ms, t_ms=t_ms, tolerance_ms=tolerance):
            reason = reason or GapReason.STALE
        elif book is not None:
            try:
                trimmed = trim_book(
                    bids=book.bids,
                    asks=book.asks,
                    max_spread_bps=campaign.max_spread_bps,
                    margin_bps=int(settings.RECORDER_LEVEL_MARGIN_BPS),
                )
            except LevelError as exc:
                log.warning("recorder_bad_level", t_ms=t_ms, error=str(exc), **_fields(campaign))
                reason = GapReason.BAD_LEVEL
            else:
                if trimmed.mid is None:
                    reason = GapReason.ONE_SIDED
                else:
                    stored = trimmed.as_json()
        if stored is None:
            log.warning("recorder_gap", t_ms=t_ms, reason=reason, **_fields(campaign))
        created: bool = await db_call(book_snapshot_record)(
            campaign_id=campaign.campaign_id,
            t_ms=t_ms,
            book=stored,
            exchange_ts_ms=book.ts_ms if book is not None else None,
            recorded_ms=now_ms(),
            source=source if stored is not None else "",
            gap_reason="" if stored is not None else reason,
        )
        return created

    async def _rest_book(self, campaign: RecordedCampaign, *, timeout: float) -> tuple[LocalBook | None, str, str]:
        """A REST snapshot, its source, and "" or why there is none."""
        client = self._clients[campaign.exchange]
        try:
            answer = await asyncio.wait_for(
                client.fetch_order_book(campaign.symbol, int(settings.RECORDER_REST_DEPTH)), timeout=timeout
            )
        except TimeoutError:
            log.warning("recorder_rest_late", **_fields(campaign))
            return None, "rest", GapReason.STALE
        except (ccxt.NetworkError, ccxt.ExchangeNotAvailable) as exc:
            log.warning("recorder_rest_unavailable", error=repr(exc), **_fields(campaign))
            return None, "rest", GapReason.EXCHANGE_UNAVAILABLE
        except ccxt.BaseError as exc:
            log.warning("recorder_rest_refused", error=repr(exc), **_fields(campaign))
            return None, "rest", GapReason.EXCHANGE_ERROR
        ts = answer.get("timestamp")
        # Binance's REST depth carries no time of its own: the book is as of its arrival.
        return LocalBook(answer["bids"], answer["asks"], ts if isinstance(ts, int) else now_ms()), "rest", ""

    async def _close(self) -> None:
        samplers = list(self._samplers.values())
        for task in samplers:
            task.cancel()
        await asyncio.gather(*samplers, return_exceptions=True)
        self._samplers.clear()
        for watch in self._watches.values():
            await watch.close()
        self._watches.clear()
        for client in self._clients.values():
            with contextlib.suppress(Exception):  # closing is best effort: the process is going anyway
                await client.close()
        self._clients.clear()


def _fields(campaign: RecordedCampaign) -> dict[str, Any]:
    return {"campaign_id": campaign.campaign_id, "exchange": campaign.exchange, "chain_id": campaign.chain_id}
