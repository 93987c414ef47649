"""ccxt's watch_order_book and watch_trades against the simulator's public WebSocket streams, and stream faults."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import aiohttp
import pytest

from devnet.exchange.faults import Fault, FaultKind
from devnet.exchange.keys import Permission

BTC = "BTC/USDT"


async def test_watch_order_book_follows_diffs(exchange):
    key = exchange.sim.create_account(permissions=frozenset({Permission.TRADE}), balances={"USDT": Decimal(10_000)})
    client = exchange.make_ccxt(key.key, key.secret, async_=True)
    try:
        await client.load_markets()
        book = await client.watch_order_book(BTC)
        assert book["bids"][0][0] == 59940.0
        await client.create_order(BTC, "limit", "buy", "0.003", "60000")
        for _ in range(50):  # bounded: each watch returns on the next diff
            book = await asyncio.wait_for(client.watch_order_book(BTC), 5)
            if book["bids"][0] == [60000.0, 0.003]:
                break
        assert book["bids"][0] == [60000.0, 0.003]
        # The trade stream carries trades made after the subscription reached the exchange: watch first, then buy
        # until the stream delivers one (a buy that beat the subscription is on no stream, as on the real one).
        watching = asyncio.ensure_future(client.watch_trades(BTC))
        for _ in range(10):
            await client.create_order(BTC, "market", "buy", "0.001")
            done, _ = await asyncio.wait({watching}, timeout=1)
            if done:
                break
        trades = watching.result()
        assert trades[-1]["price"] == 60060.0
        assert trades[-1]["amount"] == 0.001
    finally:
        await client.close()


async def test_stream_at_binance_path_when_urls_are_rerooted_as_is(exchange):
    # The product re-roots ccxt's URLs keeping their paths: the spot stream is then <base>/ws.
    client = exchange.make_ccxt(async_=True)
    ws_base = exchange.base_url.replace("http://", "ws://")
    client.urls["api"]["ws"] = {**client.urls["api"]["ws"], "spot": ws_base + "/ws"}
    try:
        await client.load_markets()
        book = await asyncio.wait_for(client.watch_order_book(BTC), 5)
        assert book["asks"][0] == [60060.0, 0.05]
    finally:
        await client.close()


async def test_a_stream_fault_drops_open_connections_and_refuses_new_ones(exchange):
    ws_url = exchange.base_url.replace("http://", "ws://") + "/ws"
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(ws_url)
        await ws.send_json({"method": "SUBSCRIBE", "params": ["btcusdt@depth"], "id": 1})
        assert (await asyncio.wait_for(ws.receive_json(), 5)) == {"result": None, "id": 1}
        fault = exchange.sim.faults.add(Fault(kind=FaultKind.HTTP_5XX, status=502, endpoint="/ws*"))
        closed = await asyncio.wait_for(ws.receive(), 5)  # the next publish round drops it
        assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(ws_url)
        assert refused.value.status == 502
        exchange.sim.faults.remove(fault.fault_id)
        again = await session.ws_connect(ws_url)
        await again.close()
    exchange.sim.faults.clear()
