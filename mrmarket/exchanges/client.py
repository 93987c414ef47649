"""The one place the Django side builds ccxt clients (every exchange is reached through ccxt).

`EXCHANGE_API_URLS` can re-root an exchange's REST and WebSocket endpoints at another base URL with the same
paths — a testnet, a regional endpoint, a recording proxy, or the devnet; to this code all are the exchange.
Market data (`load_markets`) is cached per exchange for `EXCHANGE_MARKETS_TTL_SECONDS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import ccxt
import ccxt.pro
from django.conf import settings
from django.core.cache import cache

from mrmarket.exchanges.credentials import ExchangeCredentials
from mrmarket.exchanges.errors import (
    ExchangeUnavailable,
    InvalidExchangeKey,
    MarketNotListed,
    PermissionsUnverifiable,
    UnknownExchange,
)
from mrmarket.exchanges.permissions import KeyPermissions
from wire.urls import reroot_api_urls

# The exchange being unreachable, overloaded, in maintenance or rate-limiting: worth retrying later.
TRANSIENT = (ccxt.NetworkError, ccxt.ExchangeNotAvailable)


@contextmanager
def exchange_call(exchange_id: str, what: str) -> Iterator[None]:
    """One typed, retryable error (naming the exchange and the call) for every transient exchange failure."""
    try:
        yield
    except TRANSIENT as exc:
        raise ExchangeUnavailable(
            f"{exchange_id} did not answer {what} ({type(exc).__name__})", extra={"exchange": exchange_id}
        ) from None


# Spot only: load_markets then reads the spot market list and nothing else (no margin, currency or futures
# endpoints, which need other permissions and add latency).
SPOT_OPTIONS: dict[str, Any] = {
    "defaultType": "spot",
    "fetchMarkets": {"types": ["spot"]},
    "fetchCurrencies": False,
    "fetchMargins": False,
}


def _base_config() -> dict[str, Any]:
    return {
        "timeout": int(settings.OUTBOUND_HTTP_TIMEOUT_SECONDS * 1000),
        "enableRateLimit": True,
        "options": dict(SPOT_OPTIONS),
    }


def _rerooted(exchange_id: str, client: Any) -> Any:
    base_url = settings.EXCHANGE_API_URLS.get(exchange_id)
    if base_url:
        client.urls["api"] = reroot_api_urls(client.urls["api"], base_url)
    return client


def exchange_client(exchange_id: str, *, credentials: ExchangeCredentials | None = None) -> Any:
    if exchange_id not in ccxt.exchanges:
        raise UnknownExchange(f"{exchange_id!r} is not an exchange ccxt knows", extra={"exchange": exchange_id})
    config = _base_config()
    if credentials is not None:
        config.update(apiKey=credentials.api_key, secret=credentials.secret)
        if credentials.password:
            config["password"] = credentials.password
    client = getattr(ccxt, exchange_id)(config)
    return _rerooted(exchange_id, client)


def exchange_stream_client(exchange_id: str) -> Any:
    """A public (no key) asyncio client of ccxt.pro for an exchange: its WebSocket streams and async REST, with
    the same options and URL re-rooting as `exchange_client`."""
    if exchange_id not in ccxt.pro.exchanges:
        raise UnknownExchange(f"{exchange_id!r} has no ccxt.pro streams", extra={"exchange": exchange_id})
    config = _base_config()
    client = getattr(ccxt.pro, exchange_id)(config)
    return _rerooted(exchange_id, client)


def probe_permissions(exchange_id: str, credentials: ExchangeCredentials) -> KeyPermissions:
    """What the key can really do, asked of the exchange itself (read-only calls only)."""
    prober = _PROBERS.get(exchange_id)
    if prober is None:
        raise PermissionsUnverifiable(
            f"cannot verify what a {exchange_id} key may do; keys for it cannot be enrolled yet",
            extra={"exchange": exchange_id},
        )
    client = exchange_client(exchange_id, credentials=credentials)
    try:
        with exchange_call(exchange_id, "the key's permissions"):
            return prober(client)
    except ccxt.AuthenticationError:
        raise InvalidExchangeKey(f"{exchange_id} refused the key (unknown key or bad secret)") from None
    except ccxt.PermissionDenied:
        raise InvalidExchangeKey(f"{exchange_id} refused the key for reading its own account") from None


def _binance_permissions(client: Any) -> KeyPermissions:
    restrictions = client.sapiGetAccountApiRestrictions()
    return KeyPermissions(
        read=bool(restrictions.get("enableReading")),
        trade=bool(restrictions.get("enableSpotAndMarginTrading")),
        withdraw=bool(restrictions.get("enableWithdrawals")),
    )


_PROBERS: dict[str, Callable[[Any], KeyPermissions]] = {"binance": _binance_permissions}


def configured_exchanges() -> list[str]:
    """The exchanges campaigns can name here: those whose keys can be enrolled (their permissions can be verified)
    and those `EXCHANGE_API_URLS` re-roots (a testnet, the devnet)."""
    return sorted(set(_PROBERS) | set(settings.EXCHANGE_API_URLS))


def exchange_market(exchange_id: str, symbol: str) -> dict[str, Any]:
    """One spot market's description (base, quote, precision, limits); MarketNotListed when absent."""
    if symbol not in exchange_symbols(exchange_id):
        raise MarketNotListed(
            f"{exchange_id} does not list {symbol}", extra={"exchange": exchange_id, "symbol": symbol}
        )
    key = f"exchange-market:{exchange_id}:{symbol}"
    market = cache.get(key)
    if market is None:
        with exchange_call(exchange_id, "its market list"):
            market = exchange_client(exchange_id).load_markets()[symbol]
        market = {k: market[k] for k in ("symbol", "base", "quote", "precision", "limits")}
        cache.set(key, market, timeout=settings.EXCHANGE_MARKETS_TTL_SECONDS)
    return dict(market)


def exchange_symbols(exchange_id: str) -> frozenset[str]:
    """The spot symbols an exchange lists (`BASE/QUOTE`), cached."""
    key = f"exchange-symbols:{exchange_id}"
    cached = cache.get(key)
    if cached is not None:
        return frozenset(cached)
    with exchange_call(exchange_id, "its market list"):
        markets = exchange_client(exchange_id).load_markets()
    symbols = sorted(s for s, m in markets.items() if m.get("spot") and m.get("active", True) is not False)
    cache.set(key, symbols, timeout=settings.EXCHANGE_MARKETS_TTL_SECONDS)
    return frozenset(symbols)
