"""The WebSocket API (/ws-api/v3) through ccxt's unmodified pro Binance class: orders placed and cancelled over
WebSocket take the REST path (same answers, same typed errors, same faults), and the raw protocol's shape.

The base book (agents, fair 60000): BTC/USDT bids 59940, 59910, … and asks 60060, 60090, …, 0.05 BTC each.
"""

from __future__ import annotations

from decimal import Decimal

import ccxt
import pytest

from devnet.exchange.domain.model import OrderType, Side, TimeInForce
from devnet.exchange.faults import Fault, FaultKind
from devnet.exchange.keys import Permission
from tests.devnet.exchange.pro import BTC, account, fault_event, pro_client, raw_api


async def test_create_and_cancel_order_ws(exchange):
    key = account(exchange, USDT="1000")
    async with pro_client(exchange, key) as client:
        order = await client.create_order_ws(BTC, "limit", "buy", 0.001, 59000, {"clientOrderId": "ws-1"})
        assert (order["status"], order["clientOrderId"], order["price"]) == ("open", "ws-1", 59000.0)
        assert [o["id"] for o in await client.fetch_open_orders(BTC)] == [order["id"]]
        market = await client.create_order_ws(BTC, "market", "buy", 0.01)
        assert market["status"] == "closed"
        assert [t["id"] for t in market["trades"]] == [t["id"] for t in await client.fetch_my_trades(BTC)]
        cancelled = await client.cancel_order_ws(order["id"], BTC)
        assert cancelled["status"] == "canceled"
        assert (await client.fetch_order(order["id"], BTC))["status"] == "canceled"


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("insufficient", ccxt.InsufficientFunds),
        ("post_only_takes", ccxt.OrderImmediatelyFillable),
        ("unknown_cancel", ccxt.OrderNotFound),
        ("duplicate", ccxt.InvalidOrder),
        ("bad_signature", ccxt.AuthenticationError),
        ("stale_timestamp", ccxt.InvalidNonce),
        ("filter", ccxt.BadRequest),  # -1013 NOTIONAL: ccxt maps the code to BadRequest, over REST too
    ],
)
async def test_typed_errors_change_nothing(exchange, case, error):
    key = account(exchange, USDT="1000")
    config = {"secret": "0" * 64} if case == "bad_signature" else {}
    async with pro_client(exchange, key, **config) as client:
        if case == "duplicate":
            exchange.sim.engine.place_order(
                account_id=key.account_id, symbol="BTCUSDT", side=Side.BUY, type=OrderType.LIMIT,
                quantity=Decimal("0.001"), price=Decimal("59000"), tif=TimeInForce.GTC, client_order_id="dup-1",
            )  # fmt: skip
        if case == "stale_timestamp":
            client.options["timeDifference"] = 120_000  # the client's clock two minutes behind
        before = snapshot(exchange, key.account_id)
        attempt = {
            "insufficient": lambda: client.create_order_ws(BTC, "limit", "buy", 1, 59000),
            "post_only_takes": lambda: client.create_order_ws(BTC, "limit", "buy", 0.001, 60060, {"postOnly": True}),
            "unknown_cancel": lambda: client.cancel_order_ws("999999", BTC),
            "duplicate": lambda: client.create_order_ws(BTC, "limit", "buy", 0.001, 59000, {"clientOrderId": "dup-1"}),
            "filter": lambda: client.create_order_ws(BTC, "limit", "buy", 0.00001, 59000),  # under 5 USDT
        }.get(case, lambda: client.create_order_ws(BTC, "limit", "buy", 0.001, 59000))
        with pytest.raises(error):
            await attempt()
        assert snapshot(exchange, key.account_id) == before


def snapshot(exchange, account_id):
    engine = exchange.sim.engine
    with engine.lock:
        acct = engine.account(account_id)
        return (
            {a: (b.free, b.locked) for a, b in acct.balances.items()},
            sorted((o.order_id, o.status) for o in acct.orders.values()),
        )


async def test_a_key_without_trading_is_refused(exchange):
    key = exchange.sim.create_account(permissions=frozenset(), balances={"USDT": Decimal(1000)})
    async with pro_client(exchange, key) as client:
        with pytest.raises(ccxt.PermissionDenied):
            await client.create_order_ws(BTC, "limit", "buy", 0.001, 59000)
    assert Permission.TRADE not in key.permissions


async def test_order_faults_act_on_ws_orders(exchange):
    key = account(exchange, USDT="10000")
    async with pro_client(exchange, key) as client:
        exchange.sim.faults.add(Fault(kind=FaultKind.INSUFFICIENT_BALANCE, endpoint="/ws-api/v3/order.place", count=1))
        with pytest.raises(ccxt.InsufficientFunds):
            await client.create_order_ws(BTC, "limit", "buy", 0.001, 59000)
        exchange.sim.faults.add(Fault(kind=FaultKind.PARTIAL_FILL_ONLY, endpoint="/ws-api/v3*", method="WS", count=1))
        market = await client.create_order_ws(BTC, "market", "buy", 0.04)
        assert (market["filled"], market["status"]) == (0.02, "expired")
        order = await client.create_order_ws(BTC, "limit", "buy", 0.001, 59000)
        exchange.sim.faults.add(Fault(kind=FaultKind.LOST_CANCEL_ACK, endpoint="/ws-api/v3/order.cancel", mode="5xx"))
        with pytest.raises(ccxt.OperationFailed):
            await client.cancel_order_ws(order["id"], BTC)
        assert (await client.fetch_order(order["id"], BTC))["status"] == "canceled"  # it did happen
        # REST-scoped rules leave the WebSocket API alone.
        exchange.sim.faults.clear()
        exchange.sim.faults.add(Fault(kind=FaultKind.INSUFFICIENT_BALANCE, endpoint="/api/v3/order"))
        assert (await client.create_order_ws(BTC, "limit", "buy", 0.001, 59000))["status"] == "open"


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault(kind=FaultKind.RATE_LIMIT, retry_after=3), ccxt.RateLimitExceeded),
        (Fault(kind=FaultKind.MAINTENANCE), ccxt.OnMaintenance),
        (Fault(kind=FaultKind.HTTP_5XX, status=502), ccxt.OperationFailed),
    ],
)
async def test_request_faults_answer_ws_api_errors(exchange, fault, error):
    key = account(exchange, USDT="1000")
    async with pro_client(exchange, key) as client:
        fault.endpoint, fault.method, fault.count = "/ws-api/v3/order.place", "WS", 1
        exchange.sim.faults.add(fault)
        with pytest.raises(error):
            await client.create_order_ws(BTC, "limit", "buy", 0.001, 59000)
        assert await client.fetch_open_orders(BTC) == []  # nothing was placed
        assert (await client.create_order_ws(BTC, "limit", "buy", 0.001, 59000))["status"] == "open"


async def test_order_count_limit_applies_to_ws_orders(exchange):
    key = account(exchange, USDT="1000")
    limits = exchange.sim.limits
    limits.order_limit = 1
    try:
        async with pro_client(exchange, key) as client:
            await client.create_order_ws(BTC, "limit", "buy", 0.001, 59000)
            with pytest.raises(ccxt.RateLimitExceeded):
                await client.create_order_ws(BTC, "limit", "buy", 0.001, 58000)
    finally:
        limits.order_limit = None


async def test_raw_protocol_shapes_and_an_unanswered_hang(exchange):
    key = account(exchange, USDT="1000")
    async with raw_api(exchange, key) as api:
        pong = await api.answer(await api.send("ping"))
        assert (pong["status"], pong["result"]) == (200, {})
        assert pong["rateLimits"][0]["rateLimitType"] == "REQUEST_WEIGHT"
        status = await api.answer(await api.send("session.status"))
        assert status["result"]["userDataStream"] is False
        placed = await api.answer(
            await api.send(
                "order.place",
                {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.001",
                 "price": "59000", "newOrderRespType": "FULL"},
                signed=True,
            )
        )  # fmt: skip
        assert placed["result"]["status"] == "NEW"
        assert placed["result"]["fills"] == []
        assert [r["rateLimitType"] for r in placed["rateLimits"]] == ["REQUEST_WEIGHT", "ORDERS"]
        refused = await api.answer(await api.send("order.cancel", {"symbol": "BTCUSDT", "orderId": "1"}, signed=True))
        assert (refused["status"], refused["error"]["code"]) == (400, -2011)
        unsigned = await api.answer(await api.send("order.cancel", {"symbol": "BTCUSDT", "orderId": "1"}))
        assert (unsigned["status"], unsigned["error"]["code"]) == (401, -2014)
        # A hang never answers: a ping sent after it is answered, the hung request is not.
        exchange.sim.faults.add(Fault(kind=FaultKind.HANG, endpoint="/ws-api/v3/time", hang_ms=60_000, count=1))
        hung = await api.send("time")
        await fault_event(exchange, FaultKind.HANG)
        after = await api.send("ping")
        first = await api.receive()
        assert first["id"] == after != hung
