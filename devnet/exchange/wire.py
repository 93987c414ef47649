"""Binance spot JSON shapes: exchangeInfo, orders, trades, tickers, klines. Amounts as 8-decimal strings."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from devnet.exchange.domain.model import ZERO, Fill, MarketSpec, Order, OrderType, Stp, Trade, fmt

ORDER_TYPES = ["LIMIT", "LIMIT_MAKER", "MARKET"]
STP_MODES = [m.value for m in Stp]


def symbol_info(spec: MarketSpec) -> dict[str, Any]:
    return {
        "symbol": spec.symbol,
        "status": "TRADING",
        "baseAsset": spec.base,
        "baseAssetPrecision": 8,
        "quoteAsset": spec.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ORDER_TYPES,
        "icebergAllowed": False,
        "ocoAllowed": False,
        "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": fmt(spec.min_price),
                "maxPrice": fmt(spec.max_price),
                "tickSize": fmt(spec.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": fmt(spec.min_qty),
                "maxQty": fmt(spec.max_qty),
                "stepSize": fmt(spec.step_size),
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": fmt(ZERO),
                "maxQty": fmt(spec.max_qty),
                "stepSize": fmt(ZERO),
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": fmt(spec.min_notional),
                "applyMinToMarket": False,
                "maxNotional": fmt(spec.max_notional),
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": spec.max_num_orders},
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": spec.default_stp.value,
        "allowedSelfTradePreventionModes": STP_MODES,
    }


def exchange_info(specs: Iterable[MarketSpec], now_ms: int) -> dict[str, Any]:
    return {
        "timezone": "UTC",
        "serverTime": now_ms,
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
        ],
        "exchangeFilters": [],
        "symbols": [symbol_info(s) for s in specs],
    }


def price_str(price: Decimal | None) -> str:
    return fmt(price if price is not None else ZERO)


def order_json(order: Order) -> dict[str, Any]:
    """GET /api/v3/order."""
    return {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "price": price_str(order.price),
        "origQty": fmt(order.orig_qty),
        "executedQty": fmt(order.executed_qty),
        "cummulativeQuoteQty": fmt(order.cumm_quote),
        "status": order.status.value,
        "timeInForce": order.tif.value,
        "type": order.type.value,
        "side": order.side.value,
        "stopPrice": fmt(ZERO),
        "icebergQty": fmt(ZERO),
        "time": order.time,
        "updateTime": order.update_time,
        "isWorking": order.type is not OrderType.MARKET,
        "workingTime": order.working_time,
        "origQuoteOrderQty": fmt(order.quote_order_qty),
        "selfTradePreventionMode": order.stp.value,
    }


def new_order_json(order: Order, fills: list[Fill], resp_type: str) -> dict[str, Any]:
    """POST /api/v3/order in its ACK, RESULT or FULL form."""
    out: dict[str, Any] = {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "transactTime": order.time,
    }
    if resp_type == "ACK":
        return out
    out.update(
        {
            "price": price_str(order.price),
            "origQty": fmt(order.orig_qty),
            "executedQty": fmt(order.executed_qty),
            "origQuoteOrderQty": fmt(order.quote_order_qty),
            "cummulativeQuoteQty": fmt(order.cumm_quote),
            "status": order.status.value,
            "timeInForce": order.tif.value,
            "type": order.type.value,
            "side": order.side.value,
            "workingTime": order.working_time,
            "selfTradePreventionMode": order.stp.value,
        }
    )
    if resp_type == "FULL":
        out["fills"] = [
            {
                "price": fmt(f.trade.price),
                "qty": fmt(f.trade.qty),
                "commission": fmt(f.commission),
                "commissionAsset": f.commission_asset,
                "tradeId": f.trade.trade_id,
            }
            for f in fills
        ]
    return out


def cancel_json(order: Order, cancel_client_id: str) -> dict[str, Any]:
    return {
        "symbol": order.symbol,
        "origClientOrderId": order.client_order_id,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": cancel_client_id,
        "transactTime": order.update_time,
        "price": price_str(order.price),
        "origQty": fmt(order.orig_qty),
        "executedQty": fmt(order.executed_qty),
        "origQuoteOrderQty": fmt(order.quote_order_qty),
        "cummulativeQuoteQty": fmt(order.cumm_quote),
        "status": order.status.value,
        "timeInForce": order.tif.value,
        "type": order.type.value,
        "side": order.side.value,
        "selfTradePreventionMode": order.stp.value,
    }


def my_trade_json(fill: Fill) -> dict[str, Any]:
    t = fill.trade
    return {
        "symbol": t.symbol,
        "id": t.trade_id,
        "orderId": fill.order_id,
        "orderListId": -1,
        "price": fmt(t.price),
        "qty": fmt(t.qty),
        "quoteQty": fmt(t.quote_qty),
        "commission": fmt(fill.commission),
        "commissionAsset": fill.commission_asset,
        "time": t.time,
        "isBuyer": fill.is_buyer,
        "isMaker": fill.is_maker,
        "isBestMatch": True,
    }


def public_trade_json(t: Trade) -> dict[str, Any]:
    return {
        "id": t.trade_id,
        "price": fmt(t.price),
        "qty": fmt(t.qty),
        "quoteQty": fmt(t.quote_qty),
        "time": t.time,
        "isBuyerMaker": t.buyer_is_maker,
        "isBestMatch": True,
    }


def agg_trade_json(t: Trade) -> dict[str, Any]:
    # One aggregate per trade: fills of one taker order at one price are not merged (Binance does merge them;
    # ccxt reads each row the same way either way).
    return {
        "a": t.trade_id,
        "p": fmt(t.price),
        "q": fmt(t.qty),
        "f": t.trade_id,
        "l": t.trade_id,
        "T": t.time,
        "m": t.buyer_is_maker,
        "M": True,
    }


INTERVALS_MS = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
}


def klines(
    trades: Iterable[Trade], interval_ms: int, start: int | None, end: int | None, limit: int
) -> list[list[Any]]:
    candles: dict[int, list[Any]] = {}
    for t in trades:
        if (start is not None and t.time < start) or (end is not None and t.time > end):
            continue
        open_time = t.time - t.time % interval_ms
        c = candles.get(open_time)
        quote = t.quote_qty
        taker_buy = not t.buyer_is_maker
        if c is None:
            candles[open_time] = [
                open_time,
                t.price,
                t.price,
                t.price,
                t.price,
                t.qty,
                quote,
                1,
                t.qty if taker_buy else ZERO,
                quote if taker_buy else ZERO,
            ]
            continue
        c[2] = max(c[2], t.price)
        c[3] = min(c[3], t.price)
        c[4] = t.price
        c[5] += t.qty
        c[6] += quote
        c[7] += 1
        if taker_buy:
            c[8] += t.qty
            c[9] += quote
    rows = [candles[k] for k in sorted(candles)][-limit:]
    return [
        [
            c[0],
            fmt(c[1]),
            fmt(c[2]),
            fmt(c[3]),
            fmt(c[4]),
            fmt(c[5]),
            c[0] + interval_ms - 1,
            fmt(c[6]),
            c[7],
            fmt(c[8]),
            fmt(c[9]),
            "0",
        ]
        for c in rows
    ]
