"""Stream faults on the WebSocket API's user data stream and on the public depth stream, each waited on
through its FaultEvent (no sleeps, no timed assertions)."""

from __future__ import annotations

import asyncio

import aiohttp
import ccxt

from devnet.exchange.domain.model import Side
from devnet.exchange.faults import Fault, FaultKind
from tests.devnet.exchange.pro import BTC, WAIT_S, account, fault_event, pro_client, raw_api, subscribe

ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.001",
         "price": "59000"}  # fmt: skip


async def _subscribed(api):
    return (await api.answer(await api.send("userDataStream.subscribe.signature", signed=True)))["result"]


async def test_disconnect_closes_the_connection_and_a_reconnect_works(exchange):
    key = account(exchange, USDT="1000")
    async with raw_api(exchange, key) as api:
        await _subscribed(api)
        exchange.sim.faults.add(Fault(kind=FaultKind.STREAM_DISCONNECT, endpoint="/ws-api/v3", account=key.account_id))
        closed = await asyncio.wait_for(api.ws.receive(), WAIT_S)
        assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
        assert [e.account for e in await fault_event(exchange, FaultKind.STREAM_DISCONNECT)] == [key.account_id]
    async with raw_api(exchange, key) as again:  # the rule is older than this connection
        assert await _subscribed(again) == {"subscriptionId": 0}
        await again.send("order.place", ORDER, signed=True)
        assert (await again.event("executionReport"))["x"] == "NEW"


async def test_stall_loses_events_and_answers_silently(exchange):
    key = account(exchange, USDT="1000")
    async with raw_api(exchange, key) as api:
        await _subscribed(api)
        stall = exchange.sim.faults.add(Fault(kind=FaultKind.STREAM_STALL, account=key.account_id))
        lost = await api.send("order.place", ORDER, signed=True)
        await fault_event(exchange, FaultKind.STREAM_STALL, count=3)  # the answer and the events swallowed
        exchange.sim.faults.remove(stall.fault_id)
        ping = await api.send("ping")
        first = await api.receive()
        assert first["id"] == ping != lost  # nothing of what was lost comes late
    assert len(exchange.sim.engine.open_orders(key.account_id)) == 1  # the order itself was placed


async def test_drop_and_delay_of_events_keep_the_rest_in_order(exchange):
    key = account(exchange, USDT="1000")
    async with raw_api(exchange, key) as api:
        await _subscribed(api)
        exchange.sim.faults.add(Fault(kind=FaultKind.STREAM_DROP, event="executionReport", count=1))
        await api.send("order.place", ORDER, signed=True)
        assert (await api.event())["e"] == "outboundAccountPosition"  # the NEW report was dropped
        exchange.sim.faults.add(Fault(kind=FaultKind.STREAM_DELAY, event="executionReport", latency_ms=300, count=1))
        await api.send("order.place", {**ORDER, "price": "58000"}, signed=True)
        # Held back, and what follows waits behind it.
        assert [(await api.event())["e"] for _ in range(2)] == ["executionReport", "outboundAccountPosition"]
        assert len(await fault_event(exchange, FaultKind.STREAM_DELAY)) == 1


async def test_expire_terminates_the_subscription_and_a_resubscribe_works(exchange):
    key = account(exchange, USDT="1000")
    async with raw_api(exchange, key) as api:
        sub = await _subscribed(api)
        exchange.sim.faults.add(Fault(kind=FaultKind.STREAM_EXPIRE, account=key.account_id, count=1))
        data = await api.receive()
        assert data["subscriptionId"] == sub["subscriptionId"]
        assert data["event"]["e"] == "eventStreamTerminated"
        assert (await api.answer(await api.send("session.status")))["result"]["userDataStream"] is False
        again = await _subscribed(api)
        assert again == {"subscriptionId": 1}
        await api.send("order.place", ORDER, signed=True)
        event = await api.receive()
        while "event" not in event:
            event = await api.receive()
        assert (event["subscriptionId"], event["event"]["x"]) == (1, "NEW")


async def test_expire_through_ccxt_then_watching_again_resubscribes(exchange):
    key = account(exchange, USDT="1000")
    async with pro_client(exchange, key) as client:
        await subscribe(client)
        exchange.sim.faults.add(Fault(kind=FaultKind.STREAM_EXPIRE, account=key.account_id, count=1))
        await fault_event(exchange, FaultKind.STREAM_EXPIRE)
        ws_api = client.clients[client.urls["api"]["ws"]["ws-api"]["spot"]]
        for _ in range(WAIT_S * 100):  # ccxt drops its subscription flag on eventStreamTerminated
            if "spot" not in ws_api.subscriptions:
                break
            await asyncio.sleep(0.01)
        assert "spot" not in ws_api.subscriptions
        watching = asyncio.ensure_future(client.watch_orders(BTC))  # re-subscribes
        for _ in range(WAIT_S * 100):
            if "spot" in ws_api.subscriptions and exchange.sim.engine.watching(key.account_id):
                break
            await asyncio.sleep(0.01)
        placed = await client.create_order_ws(BTC, "limit", "buy", 0.001, 59000)
        orders = await asyncio.wait_for(watching, WAIT_S)
        assert [o["id"] for o in orders] == [placed["id"]]


async def test_depth_gap_makes_ccxt_resync_to_the_engine_book(exchange):
    key = account(exchange, USDT="10000")
    async with pro_client(exchange, key) as client:
        await asyncio.wait_for(client.watch_order_book(BTC), WAIT_S)
        exchange.sim.faults.add(Fault(kind=FaultKind.STREAM_GAP, symbol="BTC/USDT", count=1))
        await client.create_order_ws(BTC, "limit", "buy", 0.003, 59990)
        await fault_event(exchange, FaultKind.STREAM_GAP)
        await client.create_order_ws(BTC, "limit", "buy", 0.004, 59980)
        resynced = False
        for _ in range(100):
            try:
                book = await asyncio.wait_for(client.watch_order_book(BTC), WAIT_S)
            except ccxt.ChecksumError:
                resynced = True  # ccxt saw U > last u + 1, dropped the book: watching again fetches the snapshot
                continue
            if resynced and book["bids"][:3] == engine_bids(exchange, 3):
                break
        assert resynced
        assert book["bids"][:12] == engine_bids(exchange, 12)
        assert [59990.0, 0.003] in book["bids"]


def engine_bids(exchange, n):
    with exchange.sim.engine.lock:
        return [[float(p), float(q)] for p, q in exchange.sim.engine.books["BTCUSDT"].depth(Side.BUY, n)]


async def test_stream_faults_through_the_admin_api(exchange):
    made = exchange.admin(
        "POST", "/_devnet/faults", {"kind": "stream_drop", "event": "depthUpdate", "symbol": "BTCUSDT"}
    )
    assert (made["kind"], made["event"], made["symbol"]) == ("stream_drop", "depthUpdate", "BTCUSDT")
    assert "stream_gap" in exchange.admin("GET", "/_devnet/info")["fault_kinds"]
