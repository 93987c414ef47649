"""A hostile host between an executor and its exchange: it forwards every request, but answers new limit orders
itself and invents them — they never reach the exchange, yet the executor is told they rest there.

This is the attack the oracle's cross-checks exist for (docs/scoring.md, "Eligible orders"): a host that controls
a TD's network can fake the exchange's answers to it, so the TD signs, in good faith, reports of orders that do not
exist. Asked with the account's own key and not through the host, the exchange does not know them.

The forged orders behave as Binance's would from the executor's side: `POST /api/v3/order` answers NEW (RESULT or
FULL form), `GET /api/v3/order`, `/openOrders` and `/allOrders` show them, `DELETE /api/v3/order` and
`/openOrders` cancel them. Everything else passes through byte for byte, signatures included.

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
_HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


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
            "type": "LIMIT",
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

    def find(self, params: dict[str, str]) -> ForgedOrder | None:
        if "orderId" in params and params["orderId"].isdigit():
            return self.orders.get(int(params["orderId"]))
        cid = params.get("origClientOrderId")
        return next((o for o in self.orders.values() if cid and o.client_order_id == cid), None)


FORGERY_KEY = web.AppKey("forgery", Forgery)
UPSTREAM_KEY = web.AppKey("upstream", str)
SESSION_KEY = web.AppKey("session", aiohttp.ClientSession)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def _params(request: web.Request) -> dict[str, str]:
    params = dict(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True))
    if request.can_read_body:
        params.update(parse_qsl(await request.text(), keep_blank_values=True))
    return params


async def _forward(request: web.Request) -> tuple[int, bytes, str]:
    app = request.app
    app[FORGERY_KEY].forwarded += 1
    url = app[UPSTREAM_KEY] + request.rel_url.path_qs
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
    body = await request.read() if request.can_read_body else None
    async with app[SESSION_KEY].request(request.method, url, headers=headers, data=body) as answer:
        return answer.status, await answer.read(), answer.headers.get("Content-Type", "application/json")


async def _passthrough(request: web.Request) -> web.Response:
    status, body, content_type = await _forward(request)
    return web.Response(status=status, body=body, headers={"Content-Type": content_type})


async def _new_order(request: web.Request) -> web.Response:
    params = await _params(request)
    if params.get("type") != "LIMIT":
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
    )
    forgery.orders[order.order_id] = order
    answer = order.as_json()
    answer["transactTime"] = now
    if params.get("newOrderRespType", "FULL") == "FULL":
        answer["fills"] = []
    return web.json_response(answer)


async def _query_order(request: web.Request) -> web.Response:
    forged = request.app[FORGERY_KEY].find(await _params(request))
    return web.json_response(forged.as_json()) if forged else await _passthrough(request)


async def _cancel_order(request: web.Request) -> web.Response:
    forged = request.app[FORGERY_KEY].find(await _params(request))
    if forged is None:
        return await _passthrough(request)
    if forged.status != "NEW":
        return web.json_response({"code": -2011, "msg": "Unknown order sent."}, status=400)
    forged.status, forged.update_time = "CANCELED", _now_ms()
    answer = forged.as_json()
    answer.update({"origClientOrderId": forged.client_order_id, "transactTime": forged.update_time})
    return web.json_response(answer)


def _with_forged(status: int, body: bytes, extra: list[dict[str, Any]]) -> web.Response:
    if status != 200:
        return web.Response(status=status, body=body, headers={"Content-Type": "application/json"})
    return web.json_response([*json.loads(body), *extra])


async def _open_orders(request: web.Request) -> web.Response:
    params = await _params(request)
    status, body, _ = await _forward(request)
    forged = [
        o.as_json()
        for o in request.app[FORGERY_KEY].orders.values()
        if o.status == "NEW" and params.get("symbol") in (None, o.symbol)
    ]
    return _with_forged(status, body, forged)


async def _all_orders(request: web.Request) -> web.Response:
    params = await _params(request)
    status, body, _ = await _forward(request)
    forged = [o.as_json() for o in request.app[FORGERY_KEY].orders.values() if params.get("symbol") == o.symbol]
    return _with_forged(status, body, forged)


async def _cancel_open_orders(request: web.Request) -> web.Response:
    params = await _params(request)
    status, body, content_type = await _forward(request)
    for o in request.app[FORGERY_KEY].orders.values():
        if o.status == "NEW" and o.symbol == params.get("symbol"):
            o.status, o.update_time = "CANCELED", _now_ms()
    return web.Response(status=status, body=body, headers={"Content-Type": content_type})


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
