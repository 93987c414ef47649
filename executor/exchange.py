"""The executor's one door to an exchange: ccxt's asyncio client, and every failure sorted into what the engine
does about it.

- `Transient` — the exchange did not answer usefully (timeout, 5xx, maintenance, 429). `retry_after` carries
  the exchange's Retry-After when it sent one. For a create or a cancel the outcome is *unknown*: the request
  may have been executed, so the engine resolves it by looking the order up (never by sending it again blind).
- `Rejected` — the exchange answered no. `kind` says why: `insufficient_balance`, `would_take` (post-only),
  `invalid`, `duplicate`.
- `NotFound` — no such order.
- `CredentialsRefused` — the key is unknown, revoked or lacks a permission: the job halts.

Prices and amounts go out as decimal strings (ccxt accepts strings) and come back as `Decimal`.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import ccxt
import ccxt.async_support as ccxt_async

from executor.strategy.base import Book, Level, MarketRules
from wire.urls import reroot_api_urls

SPOT_OPTIONS: dict[str, Any] = {
    "defaultType": "spot",
    "fetchMarkets": {"types": ["spot"]},
    "fetchCurrencies": False,
    "fetchMargins": False,
    "adjustForTimeDifference": False,
}


class ExchangeFailure(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Transient(ExchangeFailure):
    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Rejected(ExchangeFailure):
    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class NotFound(ExchangeFailure):
    pass


class CredentialsRefused(ExchangeFailure):
    pass


@dataclass(frozen=True)
class OrderSnapshot:
    """An order as the exchange reports it."""

    exchange_order_id: str
    client_order_id: str | None
    side: str
    price: Decimal | None
    amount: Decimal
    filled: Decimal
    status: str  # open, closed, canceled, rejected, expired
    timestamp_ms: int | None  # ccxt `timestamp`: the order's creation on the exchange (Binance `time`)
    # ccxt `lastUpdateTimestamp`: the exchange's time of its last change, the close time of a closed order
    # (Binance `updateTime`, or a cancel's `transactTime`). None when the exchange did not say.
    last_update_ms: int | None = None


@dataclass(frozen=True)
class TradeSnapshot:
    trade_id: str
    exchange_order_id: str
    side: str
    price: Decimal
    amount: Decimal
    fee: Decimal
    fee_asset: str
    liquidity: str  # maker / taker
    timestamp_ms: int


def _dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def _retry_after(client: Any) -> float | None:
    headers = getattr(client, "last_response_headers", None) or {}
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


_BAN_END = re.compile(r'"retryAfter":\s*(\d+)')
_SERVER_TIME = re.compile(r'"serverTime":\s*(\d+)')


def _ws_retry_after(exc: Exception) -> float | None:
    """A WebSocket API's 429 says when the ban ends (`data.retryAfter`, epoch ms, next to `serverTime`); ccxt keeps
    the error's JSON in the message."""
    text = str(exc)
    end = _BAN_END.search(text)
    if end is None:
        return None
    server = _SERVER_TIME.search(text)
    now_ms = int(server.group(1)) if server else int(time.time() * 1000)
    return max(0.0, (int(end.group(1)) - now_ms) / 1000)


@contextlib.asynccontextmanager
async def _translate(client: Any, what: str) -> AsyncIterator[None]:
    try:
        yield
    except (ccxt.AuthenticationError, ccxt.PermissionDenied, ccxt.AccountSuspended) as exc:
        raise CredentialsRefused(f"{what}: the exchange refused the key ({type(exc).__name__})") from None
    except ccxt.OrderNotFound:
        raise NotFound(f"{what}: no such order") from None
    except ccxt.InsufficientFunds:
        raise Rejected(f"{what}: insufficient balance", kind="insufficient_balance") from None
    except ccxt.OrderImmediatelyFillable:
        raise Rejected(f"{what}: would take liquidity (post-only)", kind="would_take") from None
    except ccxt.DuplicateOrderId:
        raise Rejected(f"{what}: duplicate client order id", kind="duplicate") from None
    except ccxt.NetworkError as exc:  # timeouts, 5xx, maintenance, 429 (DDoSProtection / RateLimitExceeded)
        retry_after = _ws_retry_after(exc)
        if retry_after is None:
            retry_after = _retry_after(client)
        raise Transient(f"{what}: {type(exc).__name__}", retry_after=retry_after) from None
    except ccxt.OperationFailed as exc:  # the WebSocket API's answer to an internal error (-1001): a 5xx
        raise Transient(f"{what}: {type(exc).__name__}", retry_after=_retry_after(client)) from None
    except ccxt.InvalidOrder as exc:
        text = str(exc).lower()
        if "insufficient balance" in text:
            raise Rejected(f"{what}: insufficient balance", kind="insufficient_balance") from None
        if "immediately match" in text:
            raise Rejected(f"{what}: would take liquidity (post-only)", kind="would_take") from None
        if "duplicate order" in text:
            raise Rejected(f"{what}: duplicate client order id", kind="duplicate") from None
        if "trading is not enabled" in text:
            raise CredentialsRefused(f"{what}: the key may not trade") from None
        raise Rejected(f"{what}: {_short(exc)}", kind="invalid") from None
    except ccxt.ExchangeError as exc:
        raise Rejected(f"{what}: {_short(exc)}", kind="invalid") from None


def _short(exc: Exception) -> str:
    # ccxt prefixes the exchange's JSON body; keep the message short and free of request details.
    return str(exc).split(" ", 1)[-1][:200]


class Gateway:
    """One exchange account for one job. Not shared between jobs: each job holds only its own key."""

    streams = False  # `executor.exchange_stream.StreamGateway` adds the exchange's WebSocket streams
    last_send_ns = 0  # when an order request was last written to a WebSocket (perf_counter_ns); REST: never

    def __init__(
        self,
        exchange_id: str,
        *,
        api_key: str | None = None,
        secret: str | None = None,
        password: str | None = None,
        base_url: str | None = None,
        timeout_ms: int = 10_000,
    ) -> None:
        if exchange_id not in ccxt_async.exchanges:
            raise ValueError(f"{exchange_id!r} is not an exchange ccxt knows")
        # Certificates are always verified: which URLs may be plain http (dev mode only) is the config's rule.
        config: dict[str, Any] = {
            "timeout": timeout_ms,
            "enableRateLimit": False,
            "verify": True,
            "options": dict(SPOT_OPTIONS),
        }
        if api_key:
            config.update(apiKey=api_key, secret=secret or "")
        if password:
            config["password"] = password
        self.exchange_id = exchange_id
        self.client = self._client_class(exchange_id)(config)
        if base_url:
            self.client.urls["api"] = reroot_api_urls(self.client.urls["api"], base_url)

    @staticmethod
    def _client_class(exchange_id: str) -> Any:
        return getattr(ccxt_async, exchange_id)

    async def close(self) -> None:
        # Drop the key from the client before closing it: nothing of it stays reachable from this object.
        self.client.apiKey = ""
        self.client.secret = ""
        self.client.password = ""
        await self.client.close()

    async def load_market(self, symbol: str) -> tuple[MarketRules, str, str]:
        async with _translate(self.client, "load markets"):
            markets = await self.client.load_markets()
        market = markets.get(symbol)
        if market is None:
            raise Rejected(f"{self.exchange_id} does not list {symbol}", kind="invalid")
        limits = market.get("limits") or {}
        precision = market.get("precision") or {}
        tick = _dec(precision.get("price")) or Decimal("0.00000001")
        lot = _dec(precision.get("amount")) or Decimal("0.00000001")
        rules = MarketRules(
            tick_size=tick,
            lot_size=lot,
            min_amount=_dec((limits.get("amount") or {}).get("min")),
            min_notional=_dec((limits.get("cost") or {}).get("min")),
        )
        return rules, market["base"], market["quote"]

    async def markets(self) -> frozenset[str]:
        async with _translate(self.client, "load markets"):
            markets = await self.client.load_markets()
        return frozenset(s for s, m in markets.items() if m.get("spot") and m.get("active", True) is not False)

    async def order_book(self, symbol: str, *, depth: int = 20) -> Book:
        async with _translate(self.client, "order book"):
            raw = await self.client.fetch_order_book(symbol, depth)
        return Book(
            bids=tuple(Level(_dec(p), _dec(a)) for p, a, *_ in raw["bids"]),
            asks=tuple(Level(_dec(p), _dec(a)) for p, a, *_ in raw["asks"]),
            ts_ms=int(raw.get("timestamp") or 0),
        )

    async def balances(self, assets: tuple[str, ...]) -> dict[str, tuple[Decimal, Decimal]]:
        """asset → (free, locked)."""
        async with _translate(self.client, "balances"):
            raw = await self.client.fetch_balance()
        return self._balances(raw, assets)

    @staticmethod
    def _balances(raw: Mapping[str, Any], assets: tuple[str, ...]) -> dict[str, tuple[Decimal, Decimal]]:
        return {a: (_dec((raw.get(a) or {}).get("free")), _dec((raw.get(a) or {}).get("used"))) for a in assets}

    async def create_limit(
        self, symbol: str, side: str, amount: Decimal, price: Decimal, *, client_order_id: str, post_only: bool
    ) -> OrderSnapshot:
        params: dict[str, Any] = {"newClientOrderId": client_order_id}
        if post_only:
            params["postOnly"] = True
        async with _translate(self.client, "create order"):
            raw = await self.client.create_order(symbol, "limit", side, str(amount), str(price), params)
        return self._order(raw)

    async def cancel(self, symbol: str, client_order_id: str) -> OrderSnapshot:
        async with _translate(self.client, "cancel order"):
            raw = await self.client.cancel_order(None, symbol, {"origClientOrderId": client_order_id})
        return self._order(raw)

    async def cancel_all(self, symbol: str) -> None:
        try:
            async with _translate(self.client, "cancel all orders"):
                await self.client.cancel_all_orders(symbol)
        except NotFound:
            return  # nothing was open

    async def order_by_client_id(self, symbol: str, client_order_id: str) -> OrderSnapshot:
        async with _translate(self.client, "fetch order"):
            raw = await self.client.fetch_order(None, symbol, {"origClientOrderId": client_order_id})
        return self._order(raw)

    async def open_orders(self, symbol: str) -> list[OrderSnapshot]:
        async with _translate(self.client, "open orders"):
            raw = await self.client.fetch_open_orders(symbol)
        return [self._order(o) for o in raw]

    async def my_trades(self, symbol: str, *, since_ms: int | None = None) -> list[TradeSnapshot]:
        async with _translate(self.client, "my trades"):
            raw = await self.client.fetch_my_trades(symbol, since_ms, 1000)
        return [self._trade(t) for t in raw]

    @staticmethod
    def _trade(t: Mapping[str, Any]) -> TradeSnapshot:
        fee = t.get("fee") or {}
        return TradeSnapshot(
            trade_id=str(t["id"]),
            exchange_order_id=str(t["order"]),
            side=t["side"],
            price=_dec(t["price"]),
            amount=_dec(t["amount"]),
            fee=_dec(fee.get("cost")),
            fee_asset=str(fee.get("currency") or ""),
            liquidity="maker" if t.get("takerOrMaker") == "maker" else "taker",
            timestamp_ms=int(t.get("timestamp") or 0),
        )

    @staticmethod
    def _order(raw: Mapping[str, Any]) -> OrderSnapshot:
        return OrderSnapshot(
            exchange_order_id=str(raw["id"]),
            client_order_id=raw.get("clientOrderId"),
            side=str(raw.get("side") or ""),
            price=_dec(raw["price"]) if raw.get("price") is not None else None,
            amount=_dec(raw.get("amount")),
            filled=_dec(raw.get("filled")),
            status=str(raw.get("status") or "open"),
            timestamp_ms=raw.get("timestamp"),
            last_update_ms=raw.get("lastUpdateTimestamp"),
        )
