"""The user data stream through ccxt's unmodified pro Binance class: watch_orders, watch_my_trades and
watch_balance see the account's orders whoever placed or filled them, with REST's trade ids.

The base book (agents, fair 60000): BTC/USDT bids 59940, 59910, … and asks 60060, 60090, …, 0.05 BTC each.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from devnet.exchange.domain.model import OrderType, Side
from tests.devnet.exchange.pro import BTC, account, order_until, pro_client, raw_api, subscribe, trades_until


async def test_ws_order_new_fill_by_another_account_and_cancel(exchange):
    maker_key = account(exchange, BTC="1", USDT="1000")
    taker_key = account(exchange, USDT="10000")
    async with pro_client(exchange, maker_key) as maker, pro_client(exchange, taker_key) as taker:
        await subscribe(maker)  # subscribed before anything happens
        resting = await maker.create_order_ws(BTC, "limit", "sell", 0.02, 60000)
        assert (await order_until(maker, resting["id"], lambda o: True))["status"] == "open"
        # Another account takes part of it: the maker's order is filled while it rests.
        await taker.create_order_ws(BTC, "market", "buy", 0.005)
        mine = await trades_until(maker, lambda ts: len(ts) >= 1)
        rest = await maker.fetch_my_trades(BTC)
        assert [t["id"] for t in mine] == [t["id"] for t in rest]
        assert (mine[-1]["price"], mine[-1]["amount"], mine[-1]["takerOrMaker"]) == (60000.0, 0.005, "maker")
        partial = await order_until(maker, resting["id"], lambda o: o["filled"] == 0.005)
        assert partial["status"] == "open"
        cancelled = await maker.cancel_order_ws(resting["id"], BTC)
        assert cancelled["status"] == "canceled"
        order = await order_until(maker, resting["id"], lambda o: o["status"] != "open")
        assert (order["status"], order["filled"]) == ("canceled", 0.005)


async def test_a_full_fill_closes_the_order_and_matches_rest(exchange):
    key = account(exchange, USDT="10000")
    async with pro_client(exchange, key) as client:
        await subscribe(client)
        placed = await client.create_order_ws(BTC, "market", "buy", 0.07)  # two levels: 0.05 + 0.02
        order = await order_until(client, placed["id"], lambda o: o["status"] == "closed")
        assert order["filled"] == 0.07
        trades = await trades_until(client, lambda ts: len(ts) >= 2)
        assert [t["id"] for t in trades] == [t["id"] for t in await client.fetch_my_trades(BTC)]
        assert [t["price"] for t in trades] == [60060.0, 60090.0]


async def test_watch_balance_follows_locks_fills_and_credits(exchange):
    key = account(exchange, USDT="1000")
    async with pro_client(exchange, key) as client:
        await subscribe(client)
        balance = asyncio.ensure_future(client.watch_balance())
        await client.create_order_ws(BTC, "limit", "buy", 0.01, 50000)
        usdt = (await asyncio.wait_for(balance, 10))["USDT"]
        assert (usdt["free"], usdt["used"], usdt["total"]) == (500.0, 500.0, 1000.0)
        # A credit outside trading (a deposit, here the admin's) arrives as balanceUpdate.
        credited = asyncio.ensure_future(client.watch_balance())
        exchange.admin("POST", f"/_devnet/accounts/{key.account_id}/credit", {"asset": "USDT", "amount": "250"})
        usdt = (await asyncio.wait_for(credited, 10))["USDT"]
        assert usdt["free"] == 750.0


async def test_rest_orders_and_agent_fills_reach_the_stream(exchange):
    key = account(exchange, BTC="1")
    async with pro_client(exchange, key) as client:
        rest = exchange.make_ccxt(key.key, key.secret)
        await subscribe(client)
        placed = await asyncio.to_thread(rest.create_order, BTC, "limit", "sell", "0.01", "60001")
        assert (await order_until(client, placed["id"], lambda o: True))["status"] == "open"
        # The agents' takers fill it from the engine's side (here a taker order placed by the test thread).
        await asyncio.to_thread(
            exchange.sim.engine.place_order,
            account_id="agent-taker", symbol="BTCUSDT", side=Side.BUY, type=OrderType.MARKET,
            quantity=Decimal("0.01"), client_order_id="t-1",
        )  # fmt: skip
        done = await order_until(client, placed["id"], lambda o: o["status"] == "closed")
        assert done["filled"] == 0.01
        assert (await asyncio.to_thread(rest.fetch_order, placed["id"], BTC))["status"] == "closed"


async def test_events_arrive_in_order_with_binance_fields(exchange):
    key = account(exchange, USDT="10000")
    async with raw_api(exchange, key) as api:
        sub = await api.answer(await api.send("userDataStream.subscribe.signature", signed=True))
        assert sub["result"] == {"subscriptionId": 0}
        order = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "IOC", "quantity": "0.12",
                 "price": "60090"}  # fmt: skip
        await api.send("order.place", order, signed=True)
        kinds: list[tuple[Any, Any, Any]] = []
        while len(kinds) < 5:
            event = await api.event()
            kinds.append((event["e"], event.get("x"), event.get("X")))
            if event["e"] == "executionReport" and event["x"] == "TRADE":
                assert event["t"] > 0
                assert event["N"] == "BTC"
        # NEW, two fills (60060, 60090), the rest expires (IOC), then the balances that changed.
        assert kinds == [
            ("executionReport", "NEW", "NEW"),
            ("executionReport", "TRADE", "PARTIALLY_FILLED"),
            ("executionReport", "TRADE", "PARTIALLY_FILLED"),
            ("executionReport", "EXPIRED", "EXPIRED"),
            ("outboundAccountPosition", None, None),
        ]
        status = await api.answer(await api.send("session.status"))
        assert status["result"]["userDataStream"] is True
        assert (await api.answer(await api.send("userDataStream.unsubscribe")))["status"] == 200
        missing = await api.answer(await api.send("userDataStream.unsubscribe", {"subscriptionId": 7}))
        assert missing["status"] == 400
