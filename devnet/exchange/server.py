"""The aiohttp app: Binance spot REST (/api/v3/…), capital endpoints (/sapi/v1/…), the public WebSocket streams
(/stream/ws), and the simulator's admin API (/_devnet/…). A thin skin over `Simulator`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from devnet.exchange import wire
from devnet.exchange.domain import errors
from devnet.exchange.domain.errors import ExchangeError
from devnet.exchange.domain.model import ZERO, Order, OrderType, Side, Stp, TimeInForce, fmt
from devnet.exchange.faults import REQUEST_FAULTS, FaultError, FaultKind, parse_fault
from devnet.exchange.keys import ApiKey, Permission, split_signature, verify
from devnet.exchange.simulator import Simulator
from devnet.exchange.stream import StreamHub

SIM_KEY: web.AppKey[Simulator] = web.AppKey("sim", Simulator)
HUB_KEY: web.AppKey[StreamHub] = web.AppKey("hub", StreamHub)
_NUMBER = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_CLIENT_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
MAX_LIMIT = 1000
_ORDER_COUNT: web.RequestKey[int] = web.RequestKey("devnet_order_count", int)
_ORDER_RETRY: web.RequestKey[int] = web.RequestKey("devnet_order_retry", int)


@dataclass
class Req:
    request: web.Request
    params: dict[str, str]
    key: ApiKey | None

    @property
    def account(self) -> str:
        assert self.key is not None
        return self.key.account_id

    def get(self, name: str) -> str | None:
        value = self.params.get(name)
        return value if value not in (None, "") else None

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise ExchangeError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
        return value

    def decimal(self, name: str) -> Decimal | None:
        value = self.get(name)
        if value is None:
            return None
        if not _NUMBER.match(value):
            legal = "'^([0-9]{1,20})(\\.[0-9]{1,20})?$'"
            raise ExchangeError(-1100, f"Illegal characters found in parameter '{name}'; legal range is {legal}.")
        return Decimal(value)

    def integer(self, name: str) -> int | None:
        value = self.get(name)
        if value is None:
            return None
        if not value.lstrip("-").isdigit():
            raise ExchangeError(
                -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
            )
        return int(value)

    def limit(self, default: int, maximum: int = MAX_LIMIT) -> int:
        value = self.integer("limit")
        if value is None:
            return default
        if value < 1:
            raise ExchangeError(-1100, "Illegal characters found in parameter 'limit'; legal range is '1'.")
        return min(value, maximum)

    def enum(self, name: str, kind: type[Any]) -> Any:
        value = self.get(name)
        if value is None:
            return None
        try:
            return kind(value.upper())
        except ValueError:
            known = {"side": (-1117, "Invalid side."), "type": (-1116, "Invalid orderType."),
                     "timeInForce": (-1115, "Invalid timeInForce.")}  # fmt: skip
            code, msg = known.get(name, (-1100, f"Illegal characters found in parameter '{name}'."))
            raise ExchangeError(code, msg) from None


Handler = Callable[[Simulator, Req], Awaitable[Any]]


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        text=json.dumps(data, separators=(",", ":")), status=status, content_type="application/json", headers=headers
    )


def _error(exc: ExchangeError) -> web.Response:
    return _json({"code": exc.code, "msg": exc.msg}, status=exc.http_status)


async def _params(request: web.Request) -> tuple[dict[str, str], str, str]:
    raw_query = request.rel_url.raw_query_string
    raw_body = await request.text() if request.can_read_body else ""
    params = dict(parse_qsl(raw_query, keep_blank_values=True))
    if raw_body:
        params.update(parse_qsl(raw_body, keep_blank_values=True))
    return params, raw_query, raw_body


def endpoint(
    security: Permission | None,
) -> Callable[[Handler], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    """Wraps a handler with Binance's request pipeline: request faults, key and signature checks, permissions,
    and the error body."""

    def wrap(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def view(request: web.Request) -> web.StreamResponse:
            sim = request.app[SIM_KEY]
            header_key = request.headers.get("X-MBX-APIKEY")
            known = sim.keys.get(header_key)
            account = known.account_id if known else None
            path, method = request.path, request.method
            # Latency first, then at most one failing fault.
            delay = sim.faults.take(FaultKind.LATENCY, path=path, method=method, account=account, now_ms=sim.clock())
            if delay is not None:
                await asyncio.sleep(delay.latency_ms / 1000)
            fault = sim.faults.take(
                REQUEST_FAULTS - {FaultKind.LATENCY}, path=path, method=method, account=account, now_ms=sim.clock()
            )
            if fault is not None:
                return await _request_fault(fault.kind, fault.hang_ms, fault.status, fault.retry_after)
            used, over, retry = sim.limits.weigh(request.remote or "-", method, path, sim.clock())
            if over is not None:
                answer = _error(over)
                answer.headers["Retry-After"] = str(retry)
                answer.headers["X-MBX-USED-WEIGHT-1M"] = str(used)
                return answer
            try:
                params, raw_query, raw_body = await _params(request)
                key: ApiKey | None = None
                if security is not None:
                    key = sim.keys.authenticate(header_key)
                    signed_q, sig_q = split_signature(raw_query)
                    signed_b, sig_b = split_signature(raw_body)
                    # Binance signs the query string followed by the body (totalParams).
                    signed = signed_q + signed_b if sig_b is not None else signed_q
                    verify(
                        key,
                        signed=signed,
                        signature=sig_b if sig_b is not None else sig_q,
                        timestamp=params.get("timestamp"),
                        recv_window=params.get("recvWindow"),
                        now_ms=sim.clock(),
                    )
                    if not key.can(security):
                        raise _permission_error(security, method)
                result = await handler(sim, Req(request, params, key))
            except ExchangeError as exc:
                response: web.StreamResponse = _error(exc)
                if exc.http_status == 429:
                    response.headers["Retry-After"] = str(request.get(_ORDER_RETRY, 1))
            else:
                response = result if isinstance(result, web.StreamResponse) else _json(result)
            response.headers["X-MBX-USED-WEIGHT-1M"] = str(used)
            if _ORDER_COUNT in request:
                response.headers["X-MBX-ORDER-COUNT-10S"] = str(request[_ORDER_COUNT])
            return response

        return view

    return wrap


def _permission_error(permission: Permission, method: str) -> ExchangeError:
    if permission is Permission.WITHDRAW:
        return errors.no_withdraw_permission()
    # A key without "Enable Spot & Margin Trading": new orders are rejected (-2010), cancels too (-2011).
    return errors.cancel_trading_disabled() if method == "DELETE" else errors.trading_disabled()


async def _request_fault(kind: FaultKind, hang_ms: int, status: int, retry_after: int) -> web.Response:
    if kind is FaultKind.HANG:
        await asyncio.sleep(hang_ms / 1000)
        return web.Response(status=504, text="Gateway Timeout")
    if kind is FaultKind.HTTP_5XX:
        return web.Response(status=status, text=f"<html><body><h1>{status} Server Error</h1></body></html>")
    if kind is FaultKind.RATE_LIMIT:
        body = {
            "code": -1003,
            "msg": "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. "
            "Please use WebSocket Streams for live updates to avoid polling the API.",
        }
        return _json(body, status=429, headers={"Retry-After": str(retry_after)})
    # maintenance
    return _json({"code": 1, "msg": "System is under maintenance."}, status=503)


# -- public market data ----------------------------------------------------------------------------------------


@endpoint(None)
async def ping(sim: Simulator, req: Req) -> Any:
    return {}


@endpoint(None)
async def server_time(sim: Simulator, req: Req) -> Any:
    return {"serverTime": sim.clock()}


@endpoint(None)
async def exchange_info(sim: Simulator, req: Req) -> Any:
    specs = list(sim.engine.markets.values())
    wanted = req.get("symbol")
    if wanted is not None:
        specs = [sim.engine.market(wanted)]
    return wire.exchange_info(specs, sim.clock())


@endpoint(None)
async def depth(sim: Simulator, req: Req) -> Any:
    spec = sim.engine.market(req.require("symbol"))
    limit = req.limit(100, 5000)
    with sim.engine.lock:
        book = sim.engine.books[spec.symbol]
        bids = book.depth(Side.BUY, limit)
        asks = book.depth(Side.SELL, limit)
        update_id = sim.engine.book_update_id[spec.symbol]
    return {
        "lastUpdateId": update_id,
        "bids": [[fmt(p), fmt(q)] for p, q in bids],
        "asks": [[fmt(p), fmt(q)] for p, q in asks],
    }


def _ticker(sim: Simulator, symbol: str) -> dict[str, Any]:
    now = sim.clock()
    with sim.engine.lock:
        trades = [t for t in sim.engine.tape[symbol] if t.time >= now - 86_400_000]
        book = sim.engine.books[symbol]
        bid = book.depth(Side.BUY, 1)
        ask = book.depth(Side.SELL, 1)
    last = trades[-1] if trades else None
    open_price = trades[0].price if trades else ZERO
    last_price = last.price if last else ZERO
    volume = sum((t.qty for t in trades), ZERO)
    quote_volume = sum((t.quote_qty for t in trades), ZERO)
    change = last_price - open_price
    return {
        "symbol": symbol,
        "priceChange": fmt(change),
        "priceChangePercent": f"{(change * 100 / open_price) if open_price else ZERO:.3f}",
        "weightedAvgPrice": fmt(quote_volume / volume if volume else ZERO),
        "prevClosePrice": fmt(open_price),
        "lastPrice": fmt(last_price),
        "lastQty": fmt(last.qty if last else ZERO),
        "bidPrice": fmt(bid[0][0] if bid else ZERO),
        "bidQty": fmt(bid[0][1] if bid else ZERO),
        "askPrice": fmt(ask[0][0] if ask else ZERO),
        "askQty": fmt(ask[0][1] if ask else ZERO),
        "openPrice": fmt(open_price),
        "highPrice": fmt(max((t.price for t in trades), default=ZERO)),
        "lowPrice": fmt(min((t.price for t in trades), default=ZERO)),
        "volume": fmt(volume),
        "quoteVolume": fmt(quote_volume),
        "openTime": trades[0].time if trades else now - 86_400_000,
        "closeTime": now,
        "firstId": trades[0].trade_id if trades else -1,
        "lastId": last.trade_id if last else -1,
        "count": len(trades),
    }


@endpoint(None)
async def ticker_24hr(sim: Simulator, req: Req) -> Any:
    symbol = req.get("symbol")
    if symbol is not None:
        return _ticker(sim, sim.engine.market(symbol).symbol)
    return [_ticker(sim, s) for s in sim.engine.markets]


@endpoint(None)
async def book_ticker(sim: Simulator, req: Req) -> Any:
    def one(symbol: str) -> dict[str, Any]:
        t = _ticker(sim, symbol)
        return {k: t[k] for k in ("symbol", "bidPrice", "bidQty", "askPrice", "askQty")}

    symbol = req.get("symbol")
    return one(sim.engine.market(symbol).symbol) if symbol else [one(s) for s in sim.engine.markets]


def _tape(sim: Simulator, req: Req) -> list[Any]:
    spec = sim.engine.market(req.require("symbol"))
    start, end, from_id = req.integer("startTime"), req.integer("endTime"), req.integer("fromId")
    limit = req.limit(500)
    with sim.engine.lock:
        trades = list(sim.engine.tape[spec.symbol])
    trades = [
        t
        for t in trades
        if (start is None or t.time >= start)
        and (end is None or t.time <= end)
        and (from_id is None or t.trade_id >= from_id)
    ]
    return trades[:limit] if (start is not None or from_id is not None) else trades[-limit:]


@endpoint(None)
async def agg_trades(sim: Simulator, req: Req) -> Any:
    return [wire.agg_trade_json(t) for t in _tape(sim, req)]


@endpoint(None)
async def recent_trades(sim: Simulator, req: Req) -> Any:
    return [wire.public_trade_json(t) for t in _tape(sim, req)]


@endpoint(None)
async def klines(sim: Simulator, req: Req) -> Any:
    spec = sim.engine.market(req.require("symbol"))
    interval = wire.INTERVALS_MS.get(req.require("interval"))
    if interval is None:
        raise ExchangeError(-1120, "Invalid interval.")
    with sim.engine.lock:
        trades = list(sim.engine.tape[spec.symbol])
    return wire.klines(trades, interval, req.integer("startTime"), req.integer("endTime"), req.limit(500))


@endpoint(None)
async def system_status(sim: Simulator, req: Req) -> Any:
    return {"status": 0, "msg": "normal"}


# -- account and trading -----------------------------------------------------------------------------------------


@endpoint(Permission.READ)
async def account(sim: Simulator, req: Req) -> Any:
    key = req.key
    assert key is not None
    omit_zero = (req.get("omitZeroBalances") or "").lower() == "true"
    with sim.engine.lock:
        acct = sim.engine.account(req.account)
        balances = []
        for asset in dict.fromkeys([*sim.engine.assets(), *acct.balances]):
            bal = acct.balances.get(asset)
            free, locked = (bal.free, bal.locked) if bal else (ZERO, ZERO)
            if omit_zero and free == 0 and locked == 0:
                continue
            balances.append({"asset": asset, "free": fmt(free), "locked": fmt(locked)})
    spec = next(iter(sim.engine.markets.values()))
    return {
        "makerCommission": int(spec.maker_fee * 10_000),
        "takerCommission": int(spec.taker_fee * 10_000),
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {
            "maker": fmt(spec.maker_fee),
            "taker": fmt(spec.taker_fee),
            "buyer": fmt(ZERO),
            "seller": fmt(ZERO),
        },
        "canTrade": key.can(Permission.TRADE),
        "canWithdraw": key.can(Permission.WITHDRAW),
        "canDeposit": True,
        "brokered": False,
        "requireSelfTradePrevention": False,
        "preventSor": False,
        "updateTime": sim.clock(),
        "accountType": "SPOT",
        "balances": balances,
        "permissions": ["SPOT"],
        "uid": int(req.account.split("-")[-1]),
    }


@endpoint(Permission.READ)
async def api_restrictions(sim: Simulator, req: Req) -> Any:
    key = req.key
    assert key is not None
    return {
        "ipRestrict": False,
        "createTime": key.created_ms,
        "enableReading": True,
        "enableSpotAndMarginTrading": key.can(Permission.TRADE),
        "enableWithdrawals": key.can(Permission.WITHDRAW),
        "enableInternalTransfer": False,
        "enableMargin": False,
        "enableFutures": False,
        "permitsUniversalTransfer": False,
        "enableVanillaOptions": False,
        "enableFixApiTrade": False,
        "enableFixReadOnly": False,
        "enablePortfolioMarginTrading": False,
    }


def _client_id(req: Req, name: str, sim: Simulator) -> str:
    value = req.get(name)
    if value is None:
        return f"devnet{sim.next_id():016d}"
    if not _CLIENT_ID.match(value):
        raise ExchangeError(
            -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[\\.A-Z\\:/a-z0-9_-]{{1,36}}$'."
        )
    return value


async def _new_order(sim: Simulator, req: Req, *, test: bool) -> Any:
    spec = sim.engine.market(req.require("symbol"))
    side = req.enum("side", Side)
    type_ = req.enum("type", OrderType)
    if side is None:
        req.require("side")
    if type_ is None:
        req.require("type")
    tif = req.enum("timeInForce", TimeInForce)
    stp = req.enum("selfTradePreventionMode", Stp)
    resp_type = (
        req.get("newOrderRespType") or ("FULL" if type_ in (OrderType.MARKET, OrderType.LIMIT) else "ACK")
    ).upper()
    if resp_type not in ("ACK", "RESULT", "FULL"):
        raise ExchangeError(-1100, "Illegal characters found in parameter 'newOrderRespType'.")
    client_id = _client_id(req, "newClientOrderId", sim)
    quantity, price, quote_qty = req.decimal("quantity"), req.decimal("price"), req.decimal("quoteOrderQty")
    now, path = sim.clock(), req.request.path
    if sim.faults.take(FaultKind.INSUFFICIENT_BALANCE, path=path, method="POST", account=req.account, now_ms=now):
        raise errors.insufficient_balance()
    if test:
        return {}
    count, over, retry = sim.limits.count_order(req.account, now)
    req.request[_ORDER_COUNT] = count
    req.request[_ORDER_RETRY] = retry
    if over is not None:
        raise over
    partial = sim.faults.take(FaultKind.PARTIAL_FILL_ONLY, path=path, method="POST", account=req.account, now_ms=now)
    # Serialized under the engine's lock: the market agents (or a test thread) may touch the order meanwhile.
    with sim.engine.lock:
        result = sim.engine.place_order(
            account_id=req.account,
            symbol=spec.symbol,
            side=side,
            type=type_,
            quantity=quantity,
            price=price,
            tif=tif,
            client_order_id=client_id,
            quote_order_qty=quote_qty,
            stp=stp,
            fill_cap_fraction=partial.fraction if partial else None,
        )
        return wire.new_order_json(result.order, result.fills, resp_type)


@endpoint(Permission.TRADE)
async def new_order(sim: Simulator, req: Req) -> Any:
    return await _new_order(sim, req, test=False)


@endpoint(Permission.TRADE)
async def new_order_test(sim: Simulator, req: Req) -> Any:
    return await _new_order(sim, req, test=True)


def _lookup(sim: Simulator, req: Req) -> tuple[str, int | None, str | None]:
    symbol = sim.engine.market(req.require("symbol")).symbol
    order_id, client_id = req.integer("orderId"), req.get("origClientOrderId")
    if order_id is None and client_id is None:
        raise ExchangeError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
    return symbol, order_id, client_id


@endpoint(Permission.READ)
async def query_order(sim: Simulator, req: Req) -> Any:
    symbol, order_id, client_id = _lookup(sim, req)
    with sim.engine.lock:
        return wire.order_json(sim.engine.find_order(req.account, symbol, order_id=order_id, client_id=client_id))


async def _lost_ack(sim: Simulator, req: Req, client_order_id: str) -> web.Response | None:
    fault = sim.faults.take(
        FaultKind.LOST_CANCEL_ACK,
        path=req.request.path,
        method="DELETE",
        account=req.account,
        now_ms=sim.clock(),
        detail=client_order_id,
    )
    if fault is None:
        return None
    if fault.mode == "5xx":
        return web.Response(status=502, text="<html><body><h1>502 Bad Gateway</h1></body></html>")
    await asyncio.sleep(fault.hang_ms / 1000)
    return web.Response(status=504, text="Gateway Timeout")


@endpoint(Permission.TRADE)
async def cancel_order(sim: Simulator, req: Req) -> Any:
    symbol, order_id, client_id = _lookup(sim, req)
    cancel_id = _client_id(req, "newClientOrderId", sim)
    with sim.engine.lock:
        order = sim.engine.cancel_order(req.account, symbol, order_id=order_id, client_id=client_id)
        answer = wire.cancel_json(order, cancel_id)
    lost = await _lost_ack(sim, req, order.client_order_id)
    return lost if lost is not None else answer


@endpoint(Permission.TRADE)
async def cancel_open_orders(sim: Simulator, req: Req) -> Any:
    symbol = sim.engine.market(req.require("symbol")).symbol
    with sim.engine.lock:
        orders = sim.engine.cancel_all(req.account, symbol)
        if not orders:
            # What Binance answers when there is nothing to cancel.
            raise errors.unknown_order_cancel()
        answer = [wire.cancel_json(o, _client_id(req, "_", sim)) for o in orders]
    lost = await _lost_ack(sim, req, ",".join(o.client_order_id for o in orders))
    return lost if lost is not None else answer


@endpoint(Permission.READ)
async def open_orders(sim: Simulator, req: Req) -> Any:
    symbol = req.get("symbol")
    with sim.engine.lock:
        orders = sim.engine.open_orders(req.account, symbol)
        return [wire.order_json(o) for o in orders]


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
        orders: list[Order] = [o for o in sim.engine.account(req.account).orders.values() if o.symbol == symbol]
        picked = _window(req, orders, lambda o: o.time, lambda o: o.order_id)
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


# -- capital ------------------------------------------------------------------------------------------------------


def _funds(sim: Simulator) -> Any:
    if sim.funds is None:
        # Started without --chain-rpc: trading only.
        raise ExchangeError(-1020, "This operation is not supported.")
    return sim.funds


@endpoint(Permission.READ)
async def deposit_address(sim: Simulator, req: Req) -> Any:
    funds = _funds(sim)
    coin = req.require("coin").upper()
    network = (req.get("network") or "ETH").upper()
    if network != "ETH":
        raise ExchangeError(-4018, "We don't have this asset.")
    address = funds.deposit_address(req.account, coin)
    return {"coin": coin, "address": address, "tag": "", "url": ""}


@endpoint(Permission.READ)
async def deposit_history(sim: Simulator, req: Req) -> Any:
    funds = _funds(sim)
    rows = funds.deposit_history(req.account, (req.get("coin") or "").upper() or None)
    start, end = req.integer("startTime"), req.integer("endTime")
    rows = [r for r in rows if (start is None or r["insertTime"] >= start) and (end is None or r["insertTime"] <= end)]
    return rows[: req.limit(1000)]


@endpoint(Permission.WITHDRAW)
async def withdraw_apply(sim: Simulator, req: Req) -> Any:
    funds = _funds(sim)
    coin = req.require("coin").upper()
    address = req.require("address")
    amount = req.decimal("amount")
    if amount is None:
        req.require("amount")
    assert amount is not None
    network = (req.get("network") or "ETH").upper()
    if network != "ETH":
        raise ExchangeError(-4018, "We don't have this asset.")
    if sim.faults.take(
        FaultKind.INSUFFICIENT_BALANCE, path=req.request.path, method="POST", account=req.account, now_ms=sim.clock()
    ):
        raise ExchangeError(-4026, "Account has insufficient balance for requested action.")
    withdraw_order_id = req.get("withdrawOrderId")
    withdraw_id = await asyncio.to_thread(
        funds.withdraw,
        account_id=req.account,
        coin=coin,
        amount=amount,
        address=address,
        withdraw_order_id=withdraw_order_id,
    )
    return {"id": withdraw_id}


@endpoint(Permission.READ)
async def withdraw_history(sim: Simulator, req: Req) -> Any:
    funds = _funds(sim)
    rows = funds.withdraw_history(req.account, (req.get("coin") or "").upper() or None)
    wanted = req.get("withdrawOrderId")
    if wanted is not None:
        rows = [r for r in rows if r.get("withdrawOrderId") == wanted]
    return rows[: req.limit(1000)]


# -- admin ---------------------------------------------------------------------------------------------------------


def _admin(
    handler: Callable[[Simulator, web.Request], Awaitable[Any]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def view(request: web.Request) -> web.Response:
        sim = request.app[SIM_KEY]
        token = sim.config.admin_token
        if token is not None and request.headers.get("Authorization") != f"Bearer {token}":
            return _json({"error": "admin token required"}, status=401)
        try:
            result = await handler(sim, request)
        except (ValueError, KeyError, TypeError, FaultError, ExchangeError) as exc:
            message = exc.msg if isinstance(exc, ExchangeError) else str(exc)
            return _json({"error": message}, status=404 if isinstance(exc, KeyError) else 400)
        return _json(result)

    return view


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except json.JSONDecodeError:
        raise ValueError("body must be JSON") from None
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    return data


def _permissions(data: dict[str, Any]) -> frozenset[Permission]:
    raw = data.get("permissions", ["read", "trade"])
    if not isinstance(raw, list):
        raise ValueError("permissions must be a list")
    return frozenset(Permission(p) for p in raw)


def _key_json(key: ApiKey) -> dict[str, Any]:
    return {
        "account_id": key.account_id,
        "api_key": key.key,
        "secret": key.secret,
        "permissions": sorted(p.value for p in key.permissions | {Permission.READ}),
    }


async def admin_create_account(sim: Simulator, request: web.Request) -> Any:
    data = await _body(request)
    balances = {str(a): Decimal(str(v)) for a, v in (data.get("balances") or {}).items()}
    key = sim.create_account(permissions=_permissions(data), balances=balances)
    out = _key_json(key)
    if sim.funds is not None:
        out["deposit_address"] = sim.funds.deposit_address(key.account_id, next(iter(sim.funds.tokens)))
    return out


async def admin_create_key(sim: Simulator, request: web.Request) -> Any:
    data = await _body(request)
    return _key_json(sim.create_key(request.match_info["account_id"], permissions=_permissions(data)))


async def admin_account(sim: Simulator, request: web.Request) -> Any:
    account_id = request.match_info["account_id"]
    if account_id not in sim.engine.accounts:
        raise KeyError(account_id)
    acct = sim.engine.account(account_id)
    with sim.engine.lock:
        return {
            "account_id": account_id,
            "balances": {a: {"free": fmt(b.free), "locked": fmt(b.locked)} for a, b in acct.balances.items()},
            "open_orders": len(sim.engine.open_orders(account_id)),
        }


async def admin_credit(sim: Simulator, request: web.Request) -> Any:
    account_id = request.match_info["account_id"]
    if account_id not in sim.engine.accounts:
        raise KeyError(account_id)
    data = await _body(request)
    sim.engine.credit(account_id, str(data["asset"]), Decimal(str(data["amount"])))
    return await admin_account(sim, request)


async def admin_list_faults(sim: Simulator, request: web.Request) -> Any:
    return [f.to_json() for f in sim.faults.list()]


async def admin_add_fault(sim: Simulator, request: web.Request) -> Any:
    return sim.faults.add(parse_fault(await _body(request))).to_json()


async def admin_delete_fault(sim: Simulator, request: web.Request) -> Any:
    if not sim.faults.remove(int(request.match_info["fault_id"])):
        raise KeyError(request.match_info["fault_id"])
    return {}


async def admin_clear_faults(sim: Simulator, request: web.Request) -> Any:
    sim.faults.clear()
    return {}


async def admin_step(sim: Simulator, request: web.Request) -> Any:
    data = await _body(request)
    steps = int(data.get("steps", 1))
    seconds = Decimal(str(data.get("seconds", sim.config.tick_seconds)))
    if not 1 <= steps <= 10_000 or seconds <= 0:
        raise ValueError("steps must be 1..10000 and seconds positive")
    for _ in range(steps):
        sim.market.step(seconds)
    return {s: fmt(sim.market.fair(s)) for s in sim.engine.markets}


async def admin_makers(sim: Simulator, request: web.Request) -> Any:
    """`{"symbol": "MMTUSDT" (or "MMT/USDT"), "side": "BUY"|"SELL", "quoting": false}`: stop or resume one side's
    noise makers."""
    data = await _body(request)
    symbol, side = str(data["symbol"]).replace("/", ""), Side(str(data["side"]).upper())
    if symbol not in sim.market.symbols:
        raise KeyError(symbol)
    sim.market.set_makers(symbol, side, quoting=bool(data.get("quoting", False)))
    return {"symbol": symbol, "stopped": sorted(s.value for s in sim.market.makers_stopped(symbol))}


async def admin_info(sim: Simulator, request: web.Request) -> Any:
    funds = sim.funds
    return {
        "markets": list(sim.engine.markets),
        "fair": {s: fmt(sim.market.fair(s)) for s in sim.engine.markets},
        "funds": None
        if funds is None
        else {
            "rpc_url": funds.config.rpc_url,
            "assets": funds.tokens,
            "hot_wallet": funds.hot_wallet,
            "confirmations": funds.config.confirmations,
        },
        "fault_kinds": [k.value for k in FaultKind],
    }


async def admin_poll_chain(sim: Simulator, request: web.Request) -> Any:
    funds = sim.funds
    if funds is None:
        raise ValueError("started without --chain-rpc")
    await asyncio.to_thread(funds.poll_deposits)
    await asyncio.to_thread(funds.process_withdrawals)
    return {}


# -- the app -----------------------------------------------------------------------------------------------------


def build_app(sim: Simulator) -> web.Application:
    app = web.Application()
    app[SIM_KEY] = sim
    hub = StreamHub(sim)
    app[HUB_KEY] = hub
    r = app.router
    for path, view in (
        ("/api/v3/ping", ping),
        ("/api/v3/time", server_time),
        ("/api/v3/exchangeInfo", exchange_info),
        ("/api/v3/depth", depth),
        ("/api/v3/ticker/24hr", ticker_24hr),
        ("/api/v3/ticker/bookTicker", book_ticker),
        ("/api/v3/aggTrades", agg_trades),
        ("/api/v3/trades", recent_trades),
        ("/api/v3/klines", klines),
        ("/sapi/v1/system/status", system_status),
        ("/api/v3/account", account),
        ("/api/v3/order", query_order),
        ("/api/v3/openOrders", open_orders),
        ("/api/v3/allOrders", all_orders),
        ("/api/v3/myTrades", my_trades),
        ("/sapi/v1/account/apiRestrictions", api_restrictions),
        ("/sapi/v1/capital/deposit/address", deposit_address),
        ("/sapi/v1/capital/deposit/hisrec", deposit_history),
        ("/sapi/v1/capital/withdraw/history", withdraw_history),
    ):
        r.add_get(path, view)
    r.add_post("/api/v3/order", new_order)
    r.add_post("/api/v3/order/test", new_order_test)
    r.add_delete("/api/v3/order", cancel_order)
    r.add_delete("/api/v3/openOrders", cancel_open_orders)
    r.add_post("/sapi/v1/capital/withdraw/apply", withdraw_apply)
    # Binance's stream path (/ws) re-rooted as is, and /stream/ws, which ccxt recognises as a spot stream by its
    # URL (with only spot markets loaded, either works).
    for prefix in ("/ws", "/stream/ws"):
        r.add_get(prefix, hub.handle)
        r.add_get(prefix + "/{n}", hub.handle)
    r.add_post("/_devnet/accounts", _admin(admin_create_account))
    r.add_get("/_devnet/accounts/{account_id}", _admin(admin_account))
    r.add_post("/_devnet/accounts/{account_id}/keys", _admin(admin_create_key))
    r.add_post("/_devnet/accounts/{account_id}/credit", _admin(admin_credit))
    r.add_get("/_devnet/faults", _admin(admin_list_faults))
    r.add_post("/_devnet/faults", _admin(admin_add_fault))
    r.add_delete("/_devnet/faults", _admin(admin_clear_faults))
    r.add_delete("/_devnet/faults/{fault_id}", _admin(admin_delete_fault))
    r.add_post("/_devnet/market/step", _admin(admin_step))
    r.add_post("/_devnet/market/makers", _admin(admin_makers))
    r.add_post("/_devnet/chain/poll", _admin(admin_poll_chain))
    r.add_get("/_devnet/info", _admin(admin_info))
    app[_TASKS] = []
    app.on_startup.append(_start_background)
    app.on_cleanup.append(_stop_background)
    return app


_TASKS: web.AppKey[list[asyncio.Task[None]]] = web.AppKey("tasks", list)


async def _market_loop(sim: Simulator) -> None:
    while True:
        await asyncio.sleep(float(sim.config.tick_seconds))
        sim.market.step(sim.config.tick_seconds)


async def _start_background(app: web.Application) -> None:
    sim = app[SIM_KEY]
    sim.market.seed_books()
    tasks = app[_TASKS]
    if sim.config.run_market:
        tasks.append(asyncio.create_task(_market_loop(sim)))
    if sim.funds is not None:
        tasks.append(asyncio.create_task(sim.funds.run()))
    tasks.append(asyncio.create_task(app[HUB_KEY].run()))


async def _stop_background(app: web.Application) -> None:
    for task in app[_TASKS]:
        task.cancel()
    for task in app[_TASKS]:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await app[HUB_KEY].close()
