"""Binance's request-weight and order-count accounting: fixed windows (a minute of weight per IP, ten seconds of
new orders per account), reported in the `X-MBX-USED-WEIGHT-1M` and `X-MBX-ORDER-COUNT-10S` headers on every
answer, and enforced (HTTP 429, -1003 / -1015) only when the configured limits are set."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from devnet.exchange.domain.errors import ExchangeError

MINUTE_MS = 60_000
TEN_SECONDS_MS = 10_000

# Binance's weights for the endpoints served (the rest weigh 1).
WEIGHTS: Mapping[tuple[str, str], int] = {
    ("GET", "/api/v3/exchangeInfo"): 20,
    ("GET", "/api/v3/depth"): 5,
    ("GET", "/api/v3/ticker/24hr"): 2,
    ("GET", "/api/v3/ticker/bookTicker"): 2,
    ("GET", "/api/v3/aggTrades"): 2,
    ("GET", "/api/v3/trades"): 25,
    ("GET", "/api/v3/klines"): 2,
    ("GET", "/api/v3/account"): 20,
    ("GET", "/api/v3/order"): 4,
    ("GET", "/api/v3/openOrders"): 6,
    ("GET", "/api/v3/allOrders"): 20,
    ("GET", "/api/v3/myTrades"): 20,
    ("DELETE", "/api/v3/openOrders"): 1,
    ("GET", "/sapi/v1/capital/deposit/hisrec"): 1,
}


class RateLimiter:
    def __init__(self, *, weight_per_minute: int | None, orders_per_10s: int | None) -> None:
        self.weight_limit = weight_per_minute
        self.order_limit = orders_per_10s
        self._weight: dict[str, tuple[int, int]] = {}  # ip → (window start, used)
        self._orders: dict[str, tuple[int, int]] = {}  # account → (window start, count)
        self._lock = threading.Lock()

    @staticmethod
    def _bump(table: dict[str, tuple[int, int]], who: str, amount: int, now_ms: int, window_ms: int) -> int:
        start = now_ms - now_ms % window_ms
        prev_start, used = table.get(who, (start, 0))
        used = (used if prev_start == start else 0) + amount
        table[who] = (start, used)
        return used

    def weigh(self, ip: str, method: str, path: str, now_ms: int) -> tuple[int, ExchangeError | None, int]:
        """(weight used this minute, the error when over the limit, seconds until the window resets)."""
        with self._lock:
            used = self._bump(self._weight, ip, WEIGHTS.get((method, path), 1), now_ms, MINUTE_MS)
        retry = (MINUTE_MS - now_ms % MINUTE_MS + 999) // 1000
        if self.weight_limit is not None and used > self.weight_limit:
            msg = (
                f"Too much request weight used; current limit is {self.weight_limit} request weight per 1 MINUTE. "
                "Please use WebSocket Streams for live updates to avoid polling the API."
            )
            return used, ExchangeError(-1003, msg, http_status=429), retry
        return used, None, retry

    def count_order(self, account: str, now_ms: int) -> tuple[int, ExchangeError | None, int]:
        with self._lock:
            count = self._bump(self._orders, account, 1, now_ms, TEN_SECONDS_MS)
        retry = (TEN_SECONDS_MS - now_ms % TEN_SECONDS_MS + 999) // 1000
        if self.order_limit is not None and count > self.order_limit:
            msg = f"Too many new orders; current limit is {self.order_limit} orders per TEN_SECONDS."
            return count, ExchangeError(-1015, msg, http_status=429), retry
        return count, None, retry
