"""The executor's door to an exchange's WebSocket streams: ccxt's pro class for the same exchange, unchanged.

`StreamGateway` is a `Gateway` (every REST call as before) whose client is ccxt.pro's class, so that one key and
one client serve the REST reconciliation and the streams:

- the order book from the diff-depth stream (`watch_order_book`: ccxt syncs it from the REST snapshot and
  resyncs after a sequence gap);
- the account from the user data stream (`watch_orders`, `watch_my_trades`, `watch_balance`; on Binance spot the
  WebSocket API's signature subscription);
- orders over the WebSocket API (`create_order_ws`, `cancel_order_ws`) where the exchange has one, with the same
  failure sorting as REST and a timeout (a WebSocket request has none of its own: an unanswered one is `Transient`,
  its outcome unknown, resolved by lookup as over REST).

Two moments are stamped for the latency figures, with `time.perf_counter_ns`: when a depth event reached the
process (before ccxt applied it) and when an order request was written to the socket.
"""

from __future__ import annotations

import asyncio
import functools
import time
from decimal import Decimal
from typing import Any

import ccxt
import ccxt.pro

from executor.exchange import (
    Gateway,
    OrderSnapshot,
    TradeSnapshot,
    Transient,
    _retry_after,
    _translate,
    _ws_retry_after,
)
from executor.strategy.base import Book, Level

DECIMAL_CACHE = 4096  # distinct prices and amounts kept converted, per gateway (one market)


@functools.cache
def _stamped(cls: type[Any]) -> type[Any]:
    """ccxt.pro's class for an exchange, with the two latency stamps added and nothing else changed."""

    class Stamped(cls):
        def __init__(self, config: dict[str, Any]) -> None:
            super().__init__(config)
            self.depth_arrival_ns: dict[str, int] = {}
            self.last_send_ns = 0

        def handle_order_book(self, client: Any, message: dict[str, Any]) -> Any:
            market_id = message.get("s")
            if market_id:
                self.depth_arrival_ns[market_id] = time.perf_counter_ns()
            return super().handle_order_book(client, message)

        def client(self, url: str) -> Any:
            ws = super().client(url)
            if not getattr(ws, "_mm_stamped", False):
                send = ws.send

                async def stamped_send(message: Any) -> Any:
                    result = await send(message)
                    self.last_send_ns = time.perf_counter_ns()
                    return result

                ws.send = stamped_send
                ws._mm_stamped = True
            return ws

    Stamped.__name__ = cls.__name__
    return Stamped


def _level_dec(value: float) -> Decimal:
    # ccxt parsed the exchange's decimal string into a float; repr gives back the shortest string that round-trips,
    # which is that decimal string for any price or amount with up to 15 significant digits.
    return Decimal(repr(value))


class StreamGateway(Gateway):
    streams = True
    # Orders go over the WebSocket API only while its connection is known good (the feed says so); REST otherwise.
    ws_enabled = False

    def __init__(self, exchange_id: str, **kwargs: Any) -> None:
        super().__init__(exchange_id, **kwargs)
        self._books: dict[str, tuple[tuple[int, int], Book]] = {}
        self._decimals: dict[float, Decimal] = {}

    @staticmethod
    def _client_class(exchange_id: str) -> Any:
        if exchange_id not in ccxt.pro.exchanges:
            return Gateway._client_class(exchange_id)
        return _stamped(getattr(ccxt.pro, exchange_id))

    @property
    def has_streams(self) -> bool:
        has = self.client.has
        return all(has.get(k) for k in ("watchOrderBook", "watchOrders", "watchMyTrades", "watchBalance"))

    @property
    def ws_orders(self) -> bool:
        has = self.client.has
        return self.ws_enabled and bool(has.get("createOrderWs") and has.get("cancelOrderWs"))

    @property
    def last_send_ns(self) -> int:  # type: ignore[override]
        return int(getattr(self.client, "last_send_ns", 0))

    def _timeout(self) -> float:
        return float(self.client.timeout) / 1000

    # -- the book ------------------------------------------------------------------------------------------------

    async def next_book(self, symbol: str) -> None:
        """Wait for the next change of the streamed book (ccxt keeps it; `book` reads it)."""
        await self.client.watch_order_book(symbol)

    def depth_arrival_ns(self, symbol: str) -> int | None:
        market = self.client.markets.get(symbol) if self.client.markets else None
        if market is None:
            return None
        stamps: dict[str, int] = getattr(self.client, "depth_arrival_ns", {})
        return stamps.get(market["id"])

    def book_nonce(self, symbol: str) -> int | None:
        ob = self.client.orderbooks.get(symbol)
        return None if ob is None else ob.get("nonce")

    def book(self, symbol: str, *, depth: int = 10) -> Book | None:
        """The top `depth` levels of the streamed book, or None before it is synced. Only those levels are copied,
        and only once per change of the book (by its update id)."""
        ob = self.client.orderbooks.get(symbol)
        if ob is None or ob.get("nonce") is None:
            return None
        key = (ob["nonce"], depth)
        cached = self._books.get(symbol)
        if cached is not None and cached[0] == key:
            return cached[1]
        bids, asks = ob["bids"], ob["asks"]
        dec = self._decimal
        book = Book(
            bids=tuple(Level(dec(p), dec(a)) for p, a, *_ in bids[:depth]),
            asks=tuple(Level(dec(p), dec(a)) for p, a, *_ in asks[:depth]),
            ts_ms=int(ob.get("timestamp") or 0),
        )
        self._books[symbol] = (key, book)
        return book

    def _decimal(self, value: float) -> Decimal:
        # Prices and amounts repeat from one update to the next: each float is turned into its Decimal once.
        found = self._decimals.get(value)
        if found is None:
            if len(self._decimals) >= DECIMAL_CACHE:
                self._decimals.clear()
            found = self._decimals[value] = _level_dec(value)
        return found

    def retry_after_of(self, exc: Exception) -> float | None:
        """The pause the exchange asked for with a failure ccxt raised inside a stream (its REST snapshot, say)."""
        retry_after = _ws_retry_after(exc)
        return retry_after if retry_after is not None else _retry_after(self.client)

    async def rest_book_nonce(self, symbol: str) -> int | None:
        """The exchange's current book update id by REST (Binance `lastUpdateId`): is the stream behind?"""
        async with _translate(self.client, "order book"):
            raw = await self.client.fetch_order_book(symbol, 5)
        nonce = raw.get("nonce")
        return int(nonce) if nonce is not None else None

    # -- the account ---------------------------------------------------------------------------------------------

    async def subscribe_account(self) -> None:
        """Open the user data stream (authenticated); returns once the exchange confirmed the subscription."""
        async with _translate(self.client, "user data stream"):
            if self.client.markets is None:
                await self.client.load_markets()
            # ccxt creates its balance cache in watch_balance; an account event that arrives before that call
            # (right after the subscription is confirmed) would otherwise raise inside its receive loop.
            self.client.balance.setdefault("spot", {})
            await asyncio.wait_for(self.client.authenticate({"type": "spot"}), self._timeout())

    def account_subscribed(self) -> bool:
        """False once the exchange ended the user data subscription (or its connection closed)."""
        url = self._ws_api_url()
        ws = (self.client.clients or {}).get(url) if url else None
        return ws is not None and "spot" in ws.subscriptions and not ws.closed()

    async def next_orders(self, symbol: str) -> list[OrderSnapshot]:
        raw = await self.client.watch_orders(symbol)
        return [self._order(o) for o in raw]

    async def next_trades(self, symbol: str) -> list[TradeSnapshot]:
        raw = await self.client.watch_my_trades(symbol)
        return [self._trade(t) for t in raw]

    async def next_balances(self, assets: tuple[str, ...]) -> dict[str, tuple[Decimal, Decimal]]:
        raw = await self.client.watch_balance()
        return self._balances(raw, assets)

    def _ws_api_url(self) -> str | None:
        group = (self.client.urls.get("api") or {}).get("ws") or {}
        api = group.get("ws-api") if isinstance(group, dict) else None
        return api.get("spot") if isinstance(api, dict) else None

    def _depth_url(self) -> str | None:
        group = (self.client.urls.get("api") or {}).get("ws") or {}
        return group.get("spot") if isinstance(group, dict) else None

    async def reset_stream(self, which: str) -> None:
        """Drop one stream's connection ("market" or "account"): the next watch reconnects and resubscribes."""
        base = self._depth_url() if which == "market" else self._ws_api_url()
        clients = self.client.clients if self.client.clients is not None else {}
        # ccxt numbers Binance's stream connections under the base URL (`…/ws/0`): every one of them is the market's.
        urls = [u for u in clients if base and (u == base or (which == "market" and u.startswith(base + "/")))]
        for url in urls:
            ws = clients.pop(url)
            ws.reject(ccxt.NetworkError(f"{which} stream reset by the executor"))
            await ws.close()
        if which == "market":
            self.client.orderbooks.clear()

    # -- orders over the WebSocket API -----------------------------------------------------------------------------

    async def create_limit(
        self, symbol: str, side: str, amount: Decimal, price: Decimal, *, client_order_id: str, post_only: bool
    ) -> OrderSnapshot:
        if not self.ws_orders:
            return await super().create_limit(
                symbol, side, amount, price, client_order_id=client_order_id, post_only=post_only
            )
        params: dict[str, Any] = {"newClientOrderId": client_order_id}
        if post_only:
            params["postOnly"] = True
        async with _translate(self.client, "create order"):
            try:
                # `asyncio.timeout`, not `wait_for`: no task of its own, so the request is made in this turn.
                async with asyncio.timeout(self._timeout()):
                    raw = await self.client.create_order_ws(symbol, "limit", side, str(amount), str(price), params)
            except TimeoutError:
                raise Transient("create order: no answer on the WebSocket API") from None
        return self._order(raw)

    async def cancel(self, symbol: str, client_order_id: str) -> OrderSnapshot:
        if not self.ws_orders:
            return await super().cancel(symbol, client_order_id)
        async with _translate(self.client, "cancel order"):
            try:
                async with asyncio.timeout(self._timeout()):
                    raw = await self.client.cancel_order_ws(None, symbol, {"origClientOrderId": client_order_id})
            except TimeoutError:
                raise Transient("cancel order: no answer on the WebSocket API") from None
        return self._order(raw)
