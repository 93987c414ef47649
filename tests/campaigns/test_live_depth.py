"""Live depth: the frames (pure), the market groups and the cached latest frame, and the public consumer over the
real Redis channel layer — unknown campaigns refused, the cached frame first, frames relayed, and a slow client
that gets the newest frame only while the layer's queue for it stays drained."""

from __future__ import annotations

import asyncio
import json
import re
import time
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.core.cache import cache
from django.urls import path
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.consumers import CampaignDepthConsumer
from campaigns.domain.depth import (
    DEPTH_FRAME_LEVELS,
    DEPTH_FRAME_RANGE_BPS,
    DepthLevelError,
    Market,
    depth_book,
    depth_frame,
    down_frame,
    market_shard,
)
from campaigns.live import _cache_key, frame_publish, latest_frame, market_group
from campaigns.models import Campaign
from mrmarket.routing import websocket_urlpatterns
from tests.campaigns.test_api import CampaignFactory

MARKET = Market("binance", "MMT/USDT")

# --- frames ------------------------------------------------------------------------------------------------------

numbers = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("100000"), places=4).map(float)
sizes = st.one_of(st.just(0.0), numbers)
sides = st.lists(st.tuples(numbers, sizes).map(list), max_size=300)


def merged(raw: list[list[float]]) -> dict[Decimal, Decimal]:
    out: dict[Decimal, Decimal] = {}
    for price, size in raw:
        if size:
            out[Decimal(repr(price))] = out.get(Decimal(repr(price)), Decimal(0)) + Decimal(repr(size))
    return out


@settings(max_examples=300, deadline=None)
@given(bids=sides, asks=sides, cap=st.sampled_from([1, 3, 10, DEPTH_FRAME_LEVELS]))
def test_levels_are_best_first_capped_in_range_and_keep_the_depth(
    bids: list[list[float]], asks: list[list[float]], cap: int
) -> None:
    book = depth_book(bids=bids, asks=asks, levels=cap)
    bid_prices = [Decimal(p) for p, _ in book.bids]
    ask_prices = [Decimal(p) for p, _ in book.asks]
    assert bid_prices == sorted(set(bid_prices), reverse=True)
    assert ask_prices == sorted(set(ask_prices))
    assert len(book.bids) <= cap
    assert len(book.asks) <= cap
    for text in [t for level in (*book.bids, *book.asks) for t in level] + [book.mid or "0"]:
        assert re.fullmatch(r"\d+(\.\d*[1-9])?", text), text  # plain decimal, no exponent, no trailing zero
    in_bids, in_asks = merged(bids), merged(asks)
    if not in_bids or not in_asks:
        assert book.mid is None
        return
    assert book.mid is not None
    mid = Decimal(book.mid)
    best_bid, best_ask = max(in_bids), min(in_asks)
    assert min(best_bid, best_ask) <= mid <= max(best_bid, best_ask)
    assert mid * 2 == best_bid + best_ask  # exact, not rounded
    reach = mid * DEPTH_FRAME_RANGE_BPS / 10_000
    assert all(mid - p <= reach for p in bid_prices)
    assert all(p - mid <= reach for p in ask_prices)
    # Merged into buckets or not, the sizes within the range are all there, exactly.
    assert sum(Decimal(s) for _, s in book.bids) == sum(s for p, s in in_bids.items() if mid - p <= reach)
    assert sum(Decimal(s) for _, s in book.asks) == sum(s for p, s in in_asks.items() if p - mid <= reach)


def test_a_deep_book_is_bucketed_with_exact_cumulative_depth_at_each_price() -> None:
    bids = [[round(100 - i * 0.01, 2), 0.1] for i in range(2000)]
    asks = [[round(100.02 + i * 0.01, 2), 0.3] for i in range(2000)]
    book = depth_book(bids=bids, asks=asks)
    assert book.mid == "100.01"
    assert len(book.bids) == len(book.asks) == DEPTH_FRAME_LEVELS
    # Every bucket is shown at its worst price: the depth down to that price is exactly the sum so far.
    cumulative = Decimal(0)
    for price, size in book.bids:
        cumulative += Decimal(size)
        assert cumulative == Decimal("0.1") * sum(1 for p, _ in bids if Decimal(repr(p)) >= Decimal(price))
    assert Decimal(book.bids[-1][0]) >= Decimal("100.01") * Decimal("0.9")


def test_small_books_are_kept_level_by_level_and_one_sided_books_have_no_mid() -> None:
    book = depth_book(bids=[[100.5, 1.0], [100.4, 2], [100.5, 0.5], [80.0, 3], [100.3, 0]], asks=[[101.0, 0.1]])
    assert book.bids == (("100.5", "1.5"), ("100.4", "2"))  # equal prices summed, emptied levels and 80 dropped
    assert book.asks == (("101", "0.1"),)
    assert book.mid == "100.75"
    one_sided = depth_book(bids=[], asks=[[1e-05, 2], [2, 1]])
    assert one_sided.mid is None
    assert one_sided.asks == (("0.00001", "2"), ("2", "1"))


@pytest.mark.parametrize("level", [[float("nan"), 1], [1, float("inf")], [-1, 1], [0, 1], [True, 1], ["x", 1], [1]])
def test_a_level_that_is_not_a_finite_non_negative_number_is_refused(level: list[Any]) -> None:
    with pytest.raises(DepthLevelError):
        depth_book(bids=[level], asks=[[2, 1]])


def test_frames_carry_the_documented_fields() -> None:
    book = depth_book(bids=[[1.5, 2]], asks=[[1.6, 3]])
    frame = depth_frame(market=MARKET, seq=7, created_ms=1000, exchange_ts_ms=None, book=book)
    assert frame == {
        "type": "depth.frame",
        "exchange": "binance",
        "symbol": "MMT/USDT",
        "seq": 7,
        "created_ms": 1000,
        "exchange_ts_ms": None,
        "mid": "1.55",
        "bids": [["1.5", "2"]],
        "asks": [["1.6", "3"]],
    }
    assert down_frame(market=MARKET, created_ms=5) == {
        "type": "depth.down",
        "exchange": "binance",
        "symbol": "MMT/USDT",
        "created_ms": 5,
    }


def test_market_shards_are_stable_and_spread() -> None:
    markets = [Market("binance", f"T{i}/USDT") for i in range(200)]
    shards = [market_shard(m, shards=4) for m in markets]
    assert shards == [market_shard(m, shards=4) for m in markets]
    assert set(shards) == {0, 1, 2, 3}


# --- groups ------------------------------------------------------------------------------------------------------


@given(exchange=st.text(max_size=40), symbol=st.text(max_size=60))
def test_group_names_are_valid_channels_names(exchange: str, symbol: str) -> None:
    name = market_group(exchange, symbol)
    assert re.fullmatch(r"[a-zA-Z0-9_.\-]{1,99}", name)
    assert get_channel_layer().require_valid_group_name(name)


def test_group_names_are_readable_and_never_shared() -> None:
    assert market_group("binance", "BTC/USDT") == "depth.binance.BTC_USDT"
    pairs = [("binance", "BTC/USDT"), ("binance", "BTC_USDT"), ("binance", "btc/usdt"), ("Binance", "BTC/USDT")]
    pairs += [("binance", "BTC/USDT:USDT"), ("binance.us", "BTC/USDT"), ("binance", "BTC/USDT ")]
    names = [market_group(*p) for p in pairs]
    assert len(set(names)) == len(names)
    assert market_group("binance", "BTC/USDT:USDT") == market_group("binance", "BTC/USDT:USDT")


# --- consumer ------------------------------------------------------------------------------------------------------


def frame(seq: int, *, market: Market = MARKET) -> dict[str, Any]:
    book = depth_book(bids=[[1.5, seq]], asks=[[1.6, 1]])
    return depth_frame(market=market, seq=seq, created_ms=time.time_ns() // 1_000_000, exchange_ts_ms=None, book=book)


async def a_campaign(**fields: Any) -> Campaign:
    return await sync_to_async(CampaignFactory.create)(exchange="binance", pair="MMT/USDT", **fields)


async def connect(campaign: Campaign, app: Any = None) -> WebsocketCommunicator:
    app = app or URLRouter(websocket_urlpatterns)
    communicator = WebsocketCommunicator(app, f"/ws/v1/campaigns/{campaign.chain_id}/{campaign.address}/depth")
    connected, _ = await communicator.connect()
    assert connected
    return communicator


@pytest.fixture
def no_cached_frame() -> None:
    cache.delete(_cache_key(MARKET))


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_an_unknown_campaign_is_closed_with_4404() -> None:
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/v1/campaigns/1/0xdead/depth")
    connected, _ = await communicator.connect()
    assert connected  # accepted first, so that a browser sees the code
    assert await communicator.receive_output(timeout=2) == {"type": "websocket.close", "code": 4404}


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_the_cached_frame_comes_first_then_frames_are_relayed(no_cached_frame: None) -> None:
    campaign = await a_campaign()
    first = frame(1)
    await frame_publish(first)
    assert await sync_to_async(latest_frame)("binance", "MMT/USDT") == first
    communicator = await connect(campaign)
    assert await communicator.receive_json_from(timeout=2) == first
    for seq in (2, 3):
        await asyncio.sleep(0.05)
        sent = frame(seq)
        await frame_publish(sent)
        assert await communicator.receive_json_from(timeout=2) == sent
    down = down_frame(market=MARKET, created_ms=time.time_ns() // 1_000_000 + 1)
    await frame_publish(down)
    assert await communicator.receive_json_from(timeout=2) == down
    # Another market's frames are not this page's.
    await frame_publish(frame(9, market=Market("binance", "ETH/USDT")))
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.send_to(text_data="not json")  # the page may talk; it is ignored, not an error
    assert await communicator.receive_nothing(timeout=0.2)
    await communicator.disconnect()


class SlowClientConsumer(CampaignDepthConsumer):
    """A client whose socket takes 300 ms a frame; records every frame the group delivered to it."""

    relayed: list[int] = []  # what the one instance of the test saw
    channels: list[str] = []

    async def connect(self) -> None:
        type(self).channels.append(self.channel_name)
        await super().connect()

    def offer(self, created_ms: int, text: str) -> None:
        type(self).relayed.append(json.loads(text)["seq"])
        super().offer(created_ms, text)

    async def send(self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False) -> None:
        await asyncio.sleep(0.3)
        await super().send(text_data, bytes_data, close)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_slow_client_gets_the_newest_frame_only_and_never_backs_up_the_layer(no_cached_frame: None) -> None:
    campaign = await a_campaign()
    app = URLRouter([path("ws/v1/campaigns/<int:chain_id>/<str:address>/depth", SlowClientConsumer.as_asgi())])
    communicator = await connect(campaign, app)
    pushed = [frame(seq) for seq in range(1, 21)]
    started = time.monotonic()
    for sent in pushed:
        await frame_publish(sent)
        await asyncio.sleep(0.02)
    # The hub offered all 20 while the socket was still busy with the first: nothing waits in the layer.
    while SlowClientConsumer.relayed[-1:] != [20] and time.monotonic() - started < 3:
        await asyncio.sleep(0.01)
    assert set(SlowClientConsumer.relayed) == set(range(1, 21))  # (the first may come twice: cache and group)
    assert time.monotonic() - started < 2  # 20 sends at 300 ms would take 6 s
    layer = get_channel_layer()
    local = layer.non_local_name(SlowClientConsumer.channels[0])
    assert await layer.connection(layer.consistent_hash(local)).zcard(layer.prefix + local) == 0
    got = []
    while not await communicator.receive_nothing(timeout=1.0):  # (a receive that times out ends the app)
        got.append(await communicator.receive_json_from())
    assert 1 <= len(got) <= 4, [f["seq"] for f in got]
    assert got[-1] == pushed[-1]
    assert [f["seq"] for f in got] == sorted({f["seq"] for f in got})
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_pages_of_one_market_share_one_group_member_per_process(no_cached_frame: None) -> None:
    campaign = await a_campaign()
    other = await a_campaign()  # another campaign on the same market
    layer = get_channel_layer()
    group_key = layer._group_key(market_group("binance", "MMT/USDT"))
    members = layer.connection(layer.consistent_hash(market_group("binance", "MMT/USDT")))
    pages = [await connect(campaign), await connect(campaign), await connect(other)]
    assert await members.zcard(group_key) == 1
    sent = frame(5)
    await frame_publish(sent)
    for page in pages:
        assert await page.receive_json_from(timeout=2) == sent
    await pages[0].disconnect()
    await pages[1].disconnect()
    assert await members.zcard(group_key) == 1  # a page of the market is still open
    await pages[2].disconnect()
    assert await members.zcard(group_key) == 0  # the last one left: the process is out of the group
