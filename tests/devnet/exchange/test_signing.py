"""Signed-request checks that ccxt never gets wrong by itself, driven with raw HTTP: missing signature or
timestamp, malformed recvWindow, signature in the body after a query, and the WebSocket control messages."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from urllib.parse import urlencode

import aiohttp
import pytest

from devnet.exchange.keys import Permission


def call(exchange, key, method: str, path: str, query: str = "", body: str = ""):
    url = exchange.base_url + path + (f"?{query}" if query else "")
    request = urllib.request.Request(url, data=body.encode() or None, method=method, headers={"X-MBX-APIKEY": key})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def key(exchange):
    return exchange.sim.create_account(permissions=frozenset({Permission.TRADE}))


def test_missing_signature_and_timestamp(exchange, key):
    now = int(time.time() * 1000)
    status, body = call(exchange, key.key, "GET", "/api/v3/account", f"timestamp={now}")
    assert (status, body["code"]) == (400, -1102)
    assert "signature" in body["msg"]
    query = "recvWindow=5000"
    status, body = call(exchange, key.key, "GET", "/api/v3/account", f"{query}&signature={sign(key.secret, query)}")
    assert body["code"] == -1102
    assert "timestamp" in body["msg"]
    query = f"timestamp={now}&recvWindow=abc"
    status, body = call(exchange, key.key, "GET", "/api/v3/account", f"{query}&signature={sign(key.secret, query)}")
    assert body["code"] == -1100


def test_query_and_body_are_signed_together(exchange, key):
    query = f"symbol=BTCUSDT&timestamp={int(time.time() * 1000)}"
    body = urlencode({"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01", "price": "1000"})
    good = sign(key.secret, query + body)
    _, answer = call(exchange, key.key, "POST", "/api/v3/order", query, f"{body}&signature={good}")
    assert answer["code"] == -2010  # signed correctly; rejected for balance, as it should be
    bad = sign(key.secret, query + "&" + body)
    status, answer = call(exchange, key.key, "POST", "/api/v3/order", query, f"{body}&signature={bad}")
    assert (status, answer["code"]) == (400, -1022)


def test_public_endpoints_need_no_key(exchange):
    status, body = call(exchange, "", "GET", "/api/v3/depth", "symbol=BTCUSDT&limit=2")
    assert status == 200
    assert len(body["bids"]) == 2
    status, body = call(exchange, "", "GET", "/api/v3/klines", "symbol=BTCUSDT&interval=7m")
    assert body["code"] == -1120
    status, body = call(exchange, "", "GET", "/api/v3/depth", "symbol=BTCUSDT&limit=0")
    assert body["code"] == -1100


async def test_websocket_control_messages(exchange):
    url = exchange.base_url.replace("http", "ws") + "/stream/ws"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        await ws.send_str("not json")
        assert (await ws.receive_json(timeout=5))["error"]["code"] == 2
        await ws.send_json({"method": "PING", "id": 1})
        assert (await ws.receive_json(timeout=5))["error"]["msg"] == "Unknown method"
        await ws.send_json({"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 2})
        assert await ws.receive_json(timeout=5) == {"result": None, "id": 2}
        await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 3})
        assert await ws.receive_json(timeout=5) == {"result": ["btcusdt@trade"], "id": 3}
        await ws.send_json({"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"], "id": 4})
        assert await ws.receive_json(timeout=5) == {"result": None, "id": 4}
