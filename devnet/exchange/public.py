"""Binance's public market data over REST: time, exchangeInfo, depth, tickers, trades, klines."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from devnet.exchange import wire
from devnet.exchange.domain.errors import ExchangeError
from devnet.exchange.domain.model import ZERO, Side, fmt
from devnet.exchange.http import Req, endpoint
from devnet.exchange.simulator import Simulator


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


def add_routes(r: web.UrlDispatcher) -> None:
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
    ):
        r.add_get(path, view)
