"""The live-depth producer: one asyncio process per shard of the markets of the running campaigns, each market in
exactly one shard. Per market it keeps the book through the exchange's stream (ccxt.pro `watch_order_book`) and
publishes at most one frame a second, the newest book only; an unchanged book is re-sent every KEEPALIVE_SECONDS so
the cached latest frame never lapses; a failed stream is announced once with `depth.down` (docs/api/live-depth.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from campaigns.domain.depth import DepthBook, DepthLevelError, Market, depth_book, depth_frame, down_frame
from campaigns.live import frame_keep, frame_publish
from campaigns.selectors import depth_feed_markets
from mrmarket.errors import ApplicationError
from mrmarket.exchanges.client import exchange_stream_client
from mrmarket.observability.logging import get_logger
from mrmarket.sharded_loop import ShardedLoop, db_call

log = get_logger(__name__)

HEARTBEAT_PREFIX = "depth_feed:"
FRAME_INTERVAL_SECONDS = 1.0  # the pages draw once a second; faster only costs a thousand sockets more writes
KEEPALIVE_SECONDS = 5.0  # under FRAME_TTL_SECONDS (campaigns/live.py), so the latest frame stays cached
STREAM_RETRY_SECONDS = (0.5, 10.0)  # first and longest wait before re-opening a failed stream


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class MarketFeed:
    """One market: a stream task keeping the newest book, and a publisher task coalescing it to frames."""

    def __init__(self, client: Any, market: Market) -> None:
        self.client, self.market = client, market
        self.updates = 0  # books the stream delivered (the tests compare it with the frames sent)
        self.seq = now_ms()  # starts at the wall clock: a restarted producer's frames still count up
        self._book: Any = None
        self._down = False
        self._changed = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._watch(), name=f"depth watch {market}"),
            asyncio.create_task(self._publish(), name=f"depth publish {market}"),
        ]

    async def _watch(self) -> None:
        wait = STREAM_RETRY_SECONDS[0]
        while True:
            try:
                book = await self.client.watch_order_book(self.market.symbol)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any stream failure: no book until the stream is back
                if not self._down:
                    log.warning("depth_stream_down", exchange=self.market.exchange, error=repr(exc))
                self._book, self._down = None, True
                self._changed.set()
                await asyncio.sleep(wait)
                wait = min(wait * 2, STREAM_RETRY_SECONDS[1])
                continue
            if self._down:
                log.info("depth_stream_up", exchange=self.market.exchange, symbol=self.market.symbol)
            self._book, self._down, self.updates = book, False, self.updates + 1
            self._changed.set()
            wait = STREAM_RETRY_SECONDS[0]

    async def _publish(self) -> None:
        sent: DepthBook | None = None
        down_sent = False
        last_ms = 0
        while True:
            keepalive_in = (last_ms + KEEPALIVE_SECONDS * 1000 - now_ms()) / 1000
            with contextlib.suppress(TimeoutError):
                timeout = max(0.0, keepalive_in) if sent or down_sent else None
                await asyncio.wait_for(self._changed.wait(), timeout=timeout)
            self._changed.clear()
            if self._down:
                down = down_frame(market=self.market, created_ms=now_ms())
                if not down_sent:
                    await self._send(down)
                    down_sent, sent, last_ms = True, None, down["created_ms"]
                elif down["created_ms"] - last_ms >= KEEPALIVE_SECONDS * 1000:
                    await self._keep(down)  # announced once; kept in the cache for pages opening meanwhile
                    last_ms = down["created_ms"]
                continue
            if self._book is None:
                continue
            try:
                book = depth_book(bids=self._book["bids"], asks=self._book["asks"])
            except DepthLevelError as exc:
                log.warning("depth_bad_level", exchange=self.market.exchange, symbol=self.market.symbol, error=str(exc))
                continue
            if book != sent or now_ms() - last_ms >= KEEPALIVE_SECONDS * 1000:
                ts = self._book.get("timestamp")
                self.seq += 1
                frame = depth_frame(
                    market=self.market,
                    seq=self.seq,
                    created_ms=now_ms(),
                    exchange_ts_ms=ts if isinstance(ts, int) else None,
                    book=book,
                )
                await self._send(frame)
                sent, down_sent, last_ms = book, False, frame["created_ms"]
                # Coalescing: the books arriving meanwhile only replace `_book`; the newest is built next round.
                await asyncio.sleep(FRAME_INTERVAL_SECONDS)

    async def _keep(self, frame: dict[str, Any]) -> None:
        try:
            await frame_keep(frame)
        except Exception as exc:  # Redis away: the next keep-alive tries again
            log.warning("depth_keep_failed", exchange=self.market.exchange, error=repr(exc))

    async def _send(self, frame: dict[str, Any]) -> None:
        try:
            await frame_publish(frame)
        except Exception as exc:  # Redis away: this frame is lost, the next one is tried as usual
            log.warning("depth_publish_failed", exchange=self.market.exchange, error=repr(exc))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class DepthFeed(ShardedLoop):
    """Publishes live depth for the markets of shard `shard` of `shards` until `stop()`."""

    service = "depth_feed"

    def __init__(self, *, shard: int, shards: int) -> None:
        super().__init__(shard=shard, shards=shards, heartbeat_prefix=HEARTBEAT_PREFIX)
        self.feeds: dict[Market, MarketFeed] = {}
        self._clients: dict[str, Any] = {}

    def refresh_seconds(self) -> float:
        return float(settings.DEPTH_FEED_REFRESH_SECONDS)

    async def _refresh(self) -> None:
        now = datetime.now(tz=UTC)
        markets = set(await db_call(depth_feed_markets)(now=now, shard=self.shard, shards=self.shards))
        for gone in [m for m in self.feeds if m not in markets]:
            await self.feeds.pop(gone).close()
            log.info("depth_market_dropped", exchange=gone.exchange, symbol=gone.symbol)
        for market in sorted(markets - set(self.feeds), key=lambda m: (m.exchange, m.symbol)):
            try:
                if market.exchange not in self._clients:
                    self._clients[market.exchange] = exchange_stream_client(market.exchange)
            except ApplicationError as exc:  # an exchange ccxt.pro cannot stream: no live depth for it
                log.error("depth_market_unstreamable", exchange=market.exchange, error=exc.message)
                continue
            self.feeds[market] = MarketFeed(self._clients[market.exchange], market)
            log.info("depth_market_added", exchange=market.exchange, symbol=market.symbol)
        for exchange in [e for e in self._clients if e not in {m.exchange for m in self.feeds}]:
            with contextlib.suppress(Exception):  # best effort: the client is dropped either way
                await self._clients.pop(exchange).close()

    async def _close(self) -> None:
        for feed in self.feeds.values():
            await feed.close()
        self.feeds.clear()
        for client in self._clients.values():
            with contextlib.suppress(Exception):  # closing is best effort: the process is going anyway
                await client.close()
        self._clients.clear()
