"""Binance's spot trading endpoints over REST: new/test/cancel orders (through orders.py, shared with the
WebSocket API), order queries, history and the account's trades."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web

from devnet.exchange import orders, wire
from devnet.exchange.domain.model import Order
from devnet.exchange.faults import Fault
from devnet.exchange.http import Req, endpoint
from devnet.exchange.keys import Permission
from devnet.exchange.simulator import Simulator


def _route(req: Req) -> orders.Route:
    return orders.Route(req.account, req.request.path, req.request.method)


@endpoint(Permission.TRADE)
async def new_order(sim: Simulator, req: Req) -> Any:
    return orders.place(sim, req, _route(req))


@endpoint(Permission.TRADE)
async def new_order_test(sim: Simulator, req: Req) -> Any:
    return orders.place(sim, req, _route(req), test=True)


@endpoint(Permission.READ)
async def query_order(sim: Simulator, req: Req) -> Any:
    symbol, order_id, client_id = orders.lookup(sim, req)
    with sim.engine.lock:
        return wire.order_json(sim.engine.find_order(req.account, symbol, order_id=order_id, client_id=client_id))


async def _answer(done: orders.Cancelled) -> Any:
    return done.answer if done.lost is None else await _lost_ack(done.lost)


async def _lost_ack(fault: Fault) -> web.Response:
    if fault.mode == "5xx":
        return web.Response(status=502, text="<html><body><h1>502 Bad Gateway</h1></body></html>")
    await asyncio.sleep(fault.hang_ms / 1000)
    return web.Response(status=504, text="Gateway Timeout")


@endpoint(Permission.TRADE)
async def cancel_order(sim: Simulator, req: Req) -> Any:
    return await _answer(orders.cancel(sim, req, _route(req)))


@endpoint(Permission.TRADE)
async def cancel_open_orders(sim: Simulator, req: Req) -> Any:
    return await _answer(orders.cancel_all(sim, req, _route(req)))


@endpoint(Permission.READ)
async def open_orders(sim: Simulator, req: Req) -> Any:
    symbol = req.get("symbol")
    with sim.engine.lock:
        return [wire.order_json(o) for o in sim.engine.open_orders(req.account, symbol)]


def _window(req: Req, items: list[Any], time_of: Callable[[Any], int], id_of: Callable[[Any], int]) -> list[Any]:
    start, end, from_id = req.integer("startTime"), req.integer("endTime"), req.integer("fromId")
    limit = req.limit(500)
    out = [
        x
        for x in items
        if (start is None or time_of(x) >= start)
        and (end is None or time_of(x) <= end)
        and (from_id is None or id_of(x) >= from_id)
    ]
    return out[:limit] if (start is not None or from_id is not None) else out[-limit:]


@endpoint(Permission.READ)
async def all_orders(sim: Simulator, req: Req) -> Any:
    symbol = sim.engine.market(req.require("symbol")).symbol
    with sim.engine.lock:
        mine: list[Order] = [o for o in sim.engine.account(req.account).orders.values() if o.symbol == symbol]
        picked = _window(req, mine, lambda o: o.time, lambda o: o.order_id)
        return [wire.order_json(o) for o in picked]


@endpoint(Permission.READ)
async def my_trades(sim: Simulator, req: Req) -> Any:
    symbol = sim.engine.market(req.require("symbol")).symbol
    fills = sim.engine.my_fills(req.account, symbol)
    order_id = req.integer("orderId")
    if order_id is not None:
        fills = [f for f in fills if f.order_id == order_id]
    picked = _window(req, fills, lambda f: f.trade.time, lambda f: f.trade.trade_id)
    return [wire.my_trade_json(f) for f in picked]


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/api/v3/order", query_order)
    r.add_get("/api/v3/openOrders", open_orders)
    r.add_get("/api/v3/allOrders", all_orders)
    r.add_get("/api/v3/myTrades", my_trades)
    r.add_post("/api/v3/order", new_order)
    r.add_post("/api/v3/order/test", new_order_test)
    r.add_delete("/api/v3/order", cancel_order)
    r.add_delete("/api/v3/openOrders", cancel_open_orders)
