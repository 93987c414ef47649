"""Placing and cancelling orders, whichever transport asked (REST `POST/DELETE /api/v3/order` or the WebSocket
API's `order.place` / `order.cancel`): one path through validation, the client-order-id rules, the order-count
limit, the order-level faults (insufficient_balance, partial_fill_only, lost_cancel_ack) and the engine, so both
answer the same result and the same errors. Faults match the transport's path and method (`/api/v3/order` with
POST/DELETE, or `/ws-api/v3/order.place` with WS)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from devnet.exchange import wire
from devnet.exchange.domain import errors
from devnet.exchange.domain.errors import ExchangeError
from devnet.exchange.domain.model import OrderType, Side, Stp, TimeInForce
from devnet.exchange.faults import Fault, FaultKind
from devnet.exchange.params import Params
from devnet.exchange.simulator import Simulator

_CLIENT_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")


@dataclass(frozen=True)
class Route:
    """Where a request came in, for fault matching."""

    account: str
    path: str
    method: str


def client_id(p: Params, name: str, sim: Simulator) -> str:
    value = p.get(name)
    if value is None:
        return f"devnet{sim.next_id():016d}"
    if not _CLIENT_ID.match(value):
        raise ExchangeError(
            -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[\\.A-Z\\:/a-z0-9_-]{{1,36}}$'."
        )
    return value


def place(sim: Simulator, p: Params, route: Route, *, test: bool = False) -> dict[str, Any]:
    """The new order's answer (ACK, RESULT or FULL, as asked), or Binance's error; `p.order_count` is set once
    the order was counted against the account's 10-second window."""
    spec = sim.engine.market(p.require("symbol"))
    side = p.enum("side", Side)
    type_ = p.enum("type", OrderType)
    if side is None:
        p.require("side")
    if type_ is None:
        p.require("type")
    tif = p.enum("timeInForce", TimeInForce)
    stp = p.enum("selfTradePreventionMode", Stp)
    resp_type = (
        p.get("newOrderRespType") or ("FULL" if type_ in (OrderType.MARKET, OrderType.LIMIT) else "ACK")
    ).upper()
    if resp_type not in ("ACK", "RESULT", "FULL"):
        raise ExchangeError(-1100, "Illegal characters found in parameter 'newOrderRespType'.")
    new_id = client_id(p, "newClientOrderId", sim)
    quantity, price, quote_qty = p.decimal("quantity"), p.decimal("price"), p.decimal("quoteOrderQty")
    now = sim.clock()
    if _take(sim, FaultKind.INSUFFICIENT_BALANCE, route, now):
        raise errors.insufficient_balance()
    if test:
        return {}
    count, over, retry = sim.limits.count_order(route.account, now)
    p.order_count = count
    if over is not None:
        over.retry_after = retry
        raise over
    partial = _take(sim, FaultKind.PARTIAL_FILL_ONLY, route, now)
    # Serialized under the engine's lock: the market agents (or a test thread) may touch the order meanwhile.
    with sim.engine.lock:
        result = sim.engine.place_order(
            account_id=route.account,
            symbol=spec.symbol,
            side=side,
            type=type_,
            quantity=quantity,
            price=price,
            tif=tif,
            client_order_id=new_id,
            quote_order_qty=quote_qty,
            stp=stp,
            fill_cap_fraction=partial.fraction if partial else None,
        )
        return wire.new_order_json(result.order, result.fills, resp_type)


def _take(sim: Simulator, kind: FaultKind, route: Route, now: int) -> Fault | None:
    return sim.faults.take(kind, path=route.path, method=route.method, account=route.account, now_ms=now)


def lookup(sim: Simulator, p: Params) -> tuple[str, int | None, str | None]:
    symbol = sim.engine.market(p.require("symbol")).symbol
    order_id, orig_id = p.integer("orderId"), p.get("origClientOrderId")
    if order_id is None and orig_id is None:
        raise ExchangeError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
    return symbol, order_id, orig_id


@dataclass(frozen=True)
class Cancelled:
    answer: Any
    lost: Fault | None  # a lost_cancel_ack rule acted: the cancel happened, its answer is to be lost


def cancel(sim: Simulator, p: Params, route: Route) -> Cancelled:
    symbol, order_id, orig_id = lookup(sim, p)
    cancel_id = client_id(p, "newClientOrderId", sim)
    with sim.engine.lock:
        order = sim.engine.cancel_order(
            route.account, symbol, order_id=order_id, client_id=orig_id, cancel_client_id=cancel_id
        )
        answer = wire.cancel_json(order, cancel_id)
    return Cancelled(answer, _lost_ack(sim, route, order.client_order_id))


def cancel_all(sim: Simulator, p: Params, route: Route) -> Cancelled:
    symbol = sim.engine.market(p.require("symbol")).symbol
    with sim.engine.lock:
        orders = sim.engine.cancel_all(route.account, symbol)
        if not orders:
            # What Binance answers when there is nothing to cancel.
            raise errors.unknown_order_cancel()
        answer = [wire.cancel_json(o, client_id(p, "_", sim)) for o in orders]
    return Cancelled(answer, _lost_ack(sim, route, ",".join(o.client_order_id for o in orders)))


def _lost_ack(sim: Simulator, route: Route, detail: str) -> Fault | None:
    return sim.faults.take(
        FaultKind.LOST_CANCEL_ACK,
        path=route.path,
        method=route.method,
        account=route.account,
        now_ms=sim.clock(),
        detail=detail,
    )
