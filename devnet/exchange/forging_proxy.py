"""A hostile host between an executor and its exchange: it forwards every request, but answers new limit orders
itself and invents them — they never reach the exchange, yet the executor is told they rest there.

This is the attack the oracle's cross-checks exist for (docs/scoring.md, "Eligible orders"): a host that controls
a TD's network can fake the exchange's answers to it, so the TD signs, in good faith, reports of orders that do not
exist. Asked with the account's own key and not through the host, the exchange does not know them.

The forged orders behave as Binance's would from the executor's side: `POST /api/v3/order` of a LIMIT or
LIMIT_MAKER (post-only) order answers NEW (ACK, RESULT or FULL form), `GET /api/v3/order`, `/openOrders` and
`/allOrders` show them, `DELETE /api/v3/order` and `/openOrders` cancel them. Each account (API key) sees only its
own. Everything else passes through byte for byte, signatures included (the exchange's answer headers too, less
the framing).

    with serving_forging_proxy(sim.base_url) as proxy:
        ... an executor configured with proxy.url as its Binance base URL ...
"""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web

from devnet.serving import Served, serve_in_thread

FORGED_ID_START = 7_000_000_000  # far above any id the simulator hands out
FORGED_TYPES = frozenset({"LIMIT", "LIMIT_MAKER"})  # orders that would rest: the ones worth inventing
_HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
# Dropped from a forwarded answer: aiohttp has already decoded the body and sets its own length and framing.
_ANSWER_DROPPED = frozenset({"content-length", "content-encoding", "transfer-encoding", "connection", "keep-alive"})


@dataclass
class ForgedOrder:
    order_id: int
    client_order_id: str
    symbol: str
    side: str
    price: str
    qty: str
    time: int
    update_time: int
    api_key: str  # whose: an account sees only its own inventions, as it sees only its own orders
    type: str = "LIMIT"  # or LIMIT_MAKER: a post-only order, which is what ccxt sends for `postOnly`
    status: str = "NEW"

    def as_json(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": self.client_order_id,
            "price": self.price,
            "origQty": self.qty,
            "executedQty": "0.00000000",
            "cummulativeQuoteQty": "0.00000000",
            "status": self.status,
            "timeInForce": "GTC",
            "type": self.type,
            "side": self.side,
            "stopPrice": "0.00000000",
            "icebergQty": "0.00000000",
            "time": self.time,
            "updateTime": self.update_time,
            "isWorking": True,
            "workingTime": self.time,
            "origQuoteOrderQty": "0.00000000",
            "selfTradePreventionMode": "NONE",
        }


@dataclass
class Forgery:
    """The proxy's invented orders (what a test inspects)."""

    orders: dict[int, ForgedOrder] = field(default_factory=dict)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(FORGED_ID_START))
    forwarded: int = 0

    def of(self, api_key: str, symbol: str | None) -> list[ForgedOrder]:
        """The account's invented orders on `symbol` (every symbol for None)."""
        return [o for o in self.orders.values() if o.api_key == api_key and symbol in (None, o.symbol)]

    def find(self, api_key: str, params: dict[str, str]) -> ForgedOrder | None:
        mine = self.of(api_key, params.get("symbol"))
        if "orderId" in params and params["orderId"].isdigit():
            return next((o for o in mine if o.order_id == int(params["orderId"])), None)
        cid = params.get("origClientOrderId")
        return next((o for o in mine if cid and o.client_order_id == cid), None)


def _api_key(request: web.Request) -> str:
    return request.headers.get("X-MBX-APIKEY", "")


FORGERY_KEY = web.AppKey("forgery", Forgery)
UPSTREAM_KEY = web.AppKey("upstream", str)
SESSION_KEY = web.AppKey("session", aiohttp.ClientSession)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def _params(request: web.Request) -> dict[str, str]:
    params = dict(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True))
    if request.body_exists:
        params.update(parse_qsl(await request.text(), keep_blank_values=True))
    return params


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    headers: dict[str, str]  # the exchange's own (its weight counters, a Retry-After), framing left out

    def response(self) -> web.Response:
        return web.Response(status=self.status, body=self.body, headers=self.headers)


async def _forward(request: web.Request) -> _Answer:
    app = request.app
    app[FORGERY_KEY].forwarded += 1
    url = app[UPSTREAM_KEY] + request.rel_url.path_qs
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
    # `body_exists`, not `can_read_body`: a handler that already read the body (its parameters) leaves the stream
    # at its end, and the body must still go upstream (aiohttp keeps what was read).
    body = await request.read() if request.body_exists else None
    async with app[SESSION_KEY].request(request.method, url, headers=headers, data=body) as answer:
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in _ANSWER_DROPPED}
        return _Answer(answer.status, await answer.read(), kept)


async def _passthrough(request: web.Request) -> web.Response:
    return (await _forward(request)).response()


async def _new_order(request: web.Request) -> web.Response:
    params = await _params(request)
    if params.get("type") not in FORGED_TYPES:
        return await _passthrough(request)
    forgery = request.app[FORGERY_KEY]
    now = _now_ms()
    order = ForgedOrder(
        order_id=next(forgery.ids),
        client_order_id=params.get("newClientOrderId") or f"forged{now}",
        symbol=params["symbol"],
        side=params["side"],
        price=params["price"],
        qty=params["quantity"],
        time=now,
        update_time=now,
        api_key=_api_key(request),
        type=params["type"],
    )
    forgery.orders[order.order_id] = order
    # Binance's three answer forms; like Binance, a limit order answers FULL when none is asked for.
    resp_type = params.get("newOrderRespType", "FULL")
    full = order.as_json()
    answer: dict[str, Any] = {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "transactTime": now,
    }
    if resp_type != "ACK":
        answer.update({k: v for k, v in full.items() if k not in ("time", "updateTime", "isWorking")})
    if resp_type == "FULL":
        answer["fills"] = []
    return web.json_response(answer)


async def _query_order(request: web.Request) -> web.Response:
    forged = request.app[FORGERY_KEY].find(_api_key(request), await _params(request))
    return web.json_response(forged.as_json()) if forged else await _passthrough(request)


async def _cancel_order(request: web.Request) -> web.Response:
    forged = request.app[FORGERY_KEY].find(_api_key(request), await _params(request))
    if forged is None:
        return await _passthrough(request)
    if forged.status != "NEW":
        return web.json_response({"code": -2011, "msg": "Unknown order sent."}, status=400)
    forged.status, forged.update_time = "CANCELED", _now_ms()
    answer = forged.as_json()
    answer.update({"origClientOrderId": forged.client_order_id, "transactTime": forged.update_time})
    return web.json_response(answer)


def _with_forged(answer: _Answer, extra: list[dict[str, Any]]) -> web.Response:
    if answer.status != 200:
        return answer.response()
    return web.json_response([*json.loads(answer.body), *extra])


async def _open_orders(request: web.Request) -> web.Response:
    params = await _params(request)
    answer = await _forward(request)
    forged = [
        o.as_json() for o in request.app[FORGERY_KEY].of(_api_key(request), params.get("symbol")) if o.status == "NEW"
    ]
    return _with_forged(answer, forged)


async def _all_orders(request: web.Request) -> web.Response:
    params = await _params(request)
    answer = await _forward(request)
    forged = [o.as_json() for o in request.app[FORGERY_KEY].of(_api_key(request), params.get("symbol"))]
    return _with_forged(answer, forged)


def _nothing_to_cancel(answer: _Answer) -> bool:
    if answer.status != 400:
        return False
    try:
        body = json.loads(answer.body)
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("code") == -2011


async def _cancel_open_orders(request: web.Request) -> web.Response:
    params = await _params(request)
    answer = await _forward(request)
    cancelled = []
    for o in request.app[FORGERY_KEY].of(_api_key(request), params.get("symbol")):
        if o.status == "NEW":
            o.status, o.update_time = "CANCELED", _now_ms()
            cancelled.append({**o.as_json(), "origClientOrderId": o.client_order_id, "transactTime": o.update_time})
    if cancelled and _nothing_to_cancel(answer):
        # The exchange had nothing open (Binance: -2011), but the executor believes it had: it is told its
        # invented orders were cancelled, as they would be, or it would see through the forgery.
        return web.json_response(cancelled)
    return _with_forged(answer, cancelled)


def build_forging_proxy(upstream: str) -> web.Application:
    app = web.Application()
    app[FORGERY_KEY] = Forgery()
    app[UPSTREAM_KEY] = upstream.rstrip("/")

    async def session(app: web.Application) -> Any:
        app[SESSION_KEY] = aiohttp.ClientSession()
        yield
        await app[SESSION_KEY].close()

    app.cleanup_ctx.append(session)
    app.router.add_post("/api/v3/order", _new_order)
    app.router.add_get("/api/v3/order", _query_order)
    app.router.add_delete("/api/v3/order", _cancel_order)
    app.router.add_get("/api/v3/openOrders", _open_orders)
    app.router.add_delete("/api/v3/openOrders", _cancel_open_orders)
    app.router.add_get("/api/v3/allOrders", _all_orders)
    app.router.add_route("*", "/{tail:.*}", _passthrough)
    return app


@contextlib.contextmanager
def serving_forging_proxy(upstream: str) -> Iterator[Served]:
    with serve_in_thread(build_forging_proxy(upstream), name="forging-proxy") as served:
        yield served
