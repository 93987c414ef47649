"""Re-rooting a ccxt exchange's API URLs at another base URL with the same paths (a testnet, a regional
endpoint, a recording proxy). Used by both the Django side and the executor, so both reach an exchange the
same way from the same configuration (`EXCHANGE_API_URLS` / `EXECUTOR_EXCHANGE_API_URLS`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse


def reroot_api_urls(api: dict[str, Any], base_url: str) -> dict[str, Any]:
    """Every string entry of ccxt's `urls["api"]` at `base_url` + its path, nested groups too (Binance's `ws` holds
    the streams and, under `ws-api`, the WebSocket API per market type); WebSocket entries at ws(s)://."""
    base = base_url.rstrip("/")
    ws_base = base.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    out: dict[str, Any] = {}
    for name, value in api.items():
        if isinstance(value, str):
            url = urlparse(value)
            out[name] = (ws_base if url.scheme in ("ws", "wss") else base) + url.path
        elif isinstance(value, dict):
            out[name] = reroot_api_urls(value, base_url)
    return out
