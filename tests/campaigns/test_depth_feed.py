"""The live-depth producer against the exchange simulator: books changing many times a second coalesce to at most
one frame a second per market, each market is published by one shard only, a dropped stream is announced once
and the frames resume with it, and every shard keeps its heartbeat."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from channels.layers import get_channel_layer

from campaigns.depth_feed import KEEPALIVE_SECONDS, DepthFeed
from campaigns.domain.depth import Market, market_shard
from campaigns.health import check_depth_feed
from campaigns.live import latest_frame, market_group
from campaigns.selectors import depth_feed_markets
from devnet.exchange.config import SimConfig
from devnet.exchange.faults import Fault, FaultKind
from devnet.exchange.fixtures import RunningExchange, run_exchange
from tests.campaigns.test_api import CampaignFactory
from tests.executor.harness import busy_markets

pytestmark = pytest.mark.django_db(transaction=True)  # the producer reads from its own database thread
MARKETS = [Market("binance", s) for s in ("BTC/USDT", "ETH/USDT", "MMT/USDT")]


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningExchange]:
    # A market step every 50 ms: the book changes about ten times a second (the stream publishes every 100 ms).
    with run_exchange(SimConfig(markets=busy_markets(), run_market=True, tick_seconds=Decimal("0.05"))) as ex:
        yield ex


@pytest.fixture(autouse=True)
def feed_settings(settings: Any, sim: RunningExchange, redis_clean: None) -> Iterator[None]:
    settings.EXCHANGE_API_URLS = {"binance": sim.base_url}
    settings.DEPTH_FEED_REFRESH_SECONDS = 0.5
    sim.sim.faults.clear()
    yield
    sim.sim.faults.clear()


def run_feeds(seconds: float, *, shards: int, during: Any = None) -> tuple[list[DepthFeed], dict[str, list[dict]]]:
    """Every shard of the producer for `seconds`, with a listener on the groups of MARKETS; the frames by group,
    and the feeds as they were just before they stopped."""
    frames: dict[str, list[dict]] = defaultdict(list)
    feeds = [DepthFeed(shard=k, shards=shards) for k in range(shards)]
    seen: list[dict[Market, Any]] = []

    async def main() -> None:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        for m in MARKETS:
            await layer.group_add(market_group(m.exchange, m.symbol), channel)

        async def listen() -> None:
            while True:
                message = await layer.receive(channel)
                frame = json.loads(message["text"])
                frames[market_group(frame["exchange"], frame["symbol"])].append(frame)

        listener = asyncio.create_task(listen())
        runs = [asyncio.create_task(feed.run()) for feed in feeds]
        if during is not None:
            asyncio.get_running_loop().call_later(0.1, lambda: asyncio.ensure_future(asyncio.to_thread(during)))
        await asyncio.sleep(seconds)
        seen.extend(dict(feed.feeds) for feed in feeds)
        for feed in feeds:
            feed.stop()
        await asyncio.gather(*runs)
        await asyncio.sleep(0.2)  # the last frames still in the layer
        listener.cancel()
        for m in MARKETS:
            await layer.group_discard(market_group(m.exchange, m.symbol), channel)

    asyncio.run(main())
    for feed, kept in zip(feeds, seen, strict=True):
        feed.feeds = kept
    return feeds, frames


def running_campaigns() -> None:
    now = datetime.now(tz=UTC)
    for m in MARKETS:
        for _ in range(2):  # two campaigns on one market still make one market to publish
            CampaignFactory.create(exchange=m.exchange, pair=m.symbol, start=now - timedelta(hours=1))
    CampaignFactory.create(exchange="binance", pair="SOL/USDT", funded=False)  # unfunded: streams nothing
    CampaignFactory.create(  # ended: streams nothing
        exchange="binance", pair="DOGE/USDT", start=now - timedelta(days=9), end=now - timedelta(days=2)
    )


def test_the_selector_shards_markets_disjointly_and_completely() -> None:
    running_campaigns()
    now = datetime.now(tz=UTC)
    assert depth_feed_markets(now=now, shard=0, shards=1) == MARKETS
    split = [depth_feed_markets(now=now, shard=k, shards=2) for k in range(2)]
    assert sorted([m for part in split for m in part], key=lambda m: m.symbol) == MARKETS
    assert all(market_shard(m, shards=2) == k for k, part in enumerate(split) for m in part)
    # A funded campaign that has not started yet: its page shows the book it will score, so its market streams.
    CampaignFactory.create(exchange="binance", pair="SOL/USDT", start=now + timedelta(hours=1))
    assert Market("binance", "SOL/USDT") in depth_feed_markets(now=now, shard=0, shards=1)


def test_books_changing_many_times_a_second_give_at_most_a_frame_a_second_from_one_shard() -> None:
    running_campaigns()
    feeds, frames = run_feeds(5.6, shards=2)
    owners = {m: [k for k, feed in enumerate(feeds) if m in feed.feeds] for m in MARKETS}
    assert all(len(owner) == 1 for owner in owners.values()), owners  # one producer per market
    assert {k for owner in owners.values() for k in owner} == {0, 1}  # (these three markets span both shards)
    for m in MARKETS:
        got = frames[market_group(m.exchange, m.symbol)]
        updates = feeds[owners[m][0]].feeds[m].updates
        assert 3 <= len(got) <= 6, (m, len(got))
        assert updates >= 4 * len(got), (m, updates, len(got))  # the stream changed far more often
        created = [f["created_ms"] for f in got]
        assert all(b - a >= 990 for a, b in itertools.pairwise(created)), created
        seqs = [f["seq"] for f in got]
        assert seqs == sorted(set(seqs))
        assert all(f["type"] == "depth.frame" and f["mid"] is not None and f["bids"] and f["asks"] for f in got)
        assert latest_frame(m.exchange, m.symbol) == got[-1]
    assert check_depth_feed()[0] == "ok"


def test_a_dropped_stream_is_announced_once_and_the_frames_resume(sim: RunningExchange) -> None:
    now = datetime.now(tz=UTC)
    CampaignFactory.create(exchange="binance", pair="MMT/USDT", start=now - timedelta(hours=1))
    faults: list[Fault] = []
    sim_faults = sim.sim.faults

    def drop_then_restore() -> None:
        time.sleep(2.2)
        faults.append(sim_faults.add(Fault(kind=FaultKind.HTTP_5XX, status=502, endpoint="/ws*")))
        time.sleep(2.5)  # a few failed reconnects meanwhile
        sim_faults.clear()

    _, frames = run_feeds(8.5, shards=1, during=drop_then_restore)
    kinds = [f["type"] for f in frames[market_group("binance", "MMT/USDT")]]
    assert kinds.count("depth.down") == 1, kinds
    down_at = kinds.index("depth.down")
    assert kinds[:down_at]
    assert set(kinds[:down_at]) == {"depth.frame"}
    assert kinds[down_at + 1 :]
    assert set(kinds[down_at + 1 :]) == {"depth.frame"}
    assert sim_faults.events(fault_id=faults[0].fault_id)


def test_an_unchanged_book_is_sent_once_then_only_as_a_keep_alive(settings: Any) -> None:
    # A market that does not move: after the first frame only the keep-alive, KEEPALIVE_SECONDS later.
    with run_exchange(SimConfig(markets=busy_markets(), run_market=False)) as still:
        settings.EXCHANGE_API_URLS = {"binance": still.base_url}
        now = datetime.now(tz=UTC)
        CampaignFactory.create(exchange="binance", pair="MMT/USDT", start=now - timedelta(hours=1))
        _, frames = run_feeds(KEEPALIVE_SECONDS + 2.5, shards=1)
    got = frames[market_group("binance", "MMT/USDT")]
    assert len(got) == 2, [f["created_ms"] for f in got]
    first, again = got
    assert (again["bids"], again["asks"], again["mid"]) == (first["bids"], first["asks"], first["mid"])
    assert again["seq"] > first["seq"]
    assert KEEPALIVE_SECONDS * 1000 <= again["created_ms"] - first["created_ms"] <= KEEPALIVE_SECONDS * 1000 + 300
