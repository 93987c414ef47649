"""Live depth's plumbing between the producer (`campaigns.depth_feed`) and the page consumers: one Channels group
per market, and the market's latest frame in the cache so that a page opening now draws at once
(docs/api/live-depth.md)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from channels.layers import get_channel_layer
from django.core.cache import cache

from campaigns.domain.depth import Market

FRAME_TTL_SECONDS = 10  # two keep-alives: a live market's entry never lapses, a dead producer's soon does
RELAY_EVENT = "depth.relay"  # the channel-layer message type, read by the web processes' hubs (depth_hub.py)
_READABLE_EXCHANGE = re.compile(r"[a-z0-9]{1,30}")
_READABLE_SYMBOL = re.compile(r"[A-Z0-9]{1,24}/[A-Z0-9]{1,24}")


def market_group(exchange: str, symbol: str) -> str:
    """The market's group name: readable (`depth.binance.BTC_USDT`) for the usual lower-case exchange id and
    upper-case `BASE/QUOTE` symbol, which maps back to one market only; any other market gets a digest under a
    prefix no readable name has, so two markets never share a group. Channels allows ASCII letters, digits,
    `-_.` and fewer than 100 characters."""
    if _READABLE_EXCHANGE.fullmatch(exchange) and _READABLE_SYMBOL.fullmatch(symbol):
        return f"depth.{exchange}.{symbol.replace('/', '_')}"
    digest = hashlib.sha256(f"{exchange}\n{symbol}".encode()).hexdigest()
    return f"depth-h.{digest[:40]}"


def _cache_key(market: Market) -> str:
    return f"live-depth:{market_group(market.exchange, market.symbol)}"


def latest_frame(exchange: str, symbol: str) -> dict[str, Any] | None:
    """The market's last frame (`depth.frame` or `depth.down`) if its producer published one lately."""
    frame = cache.get(_cache_key(Market(exchange, symbol)))
    return frame if isinstance(frame, dict) else None


async def alatest_frame(exchange: str, symbol: str) -> dict[str, Any] | None:
    frame = await cache.aget(_cache_key(Market(exchange, symbol)))
    return frame if isinstance(frame, dict) else None


def frame_text(frame: dict[str, Any]) -> str:
    """A frame as the clients receive it: compact JSON."""
    return json.dumps(frame, separators=(",", ":"))


async def frame_keep(frame: dict[str, Any]) -> None:
    """Store a frame as its market's latest again without sending it: the producer's keep-alive of a `depth.down`,
    so that a page opening during a long outage says "stream down", while the pages open already heard it once."""
    await cache.aset(_cache_key(Market(frame["exchange"], frame["symbol"])), frame, timeout=FRAME_TTL_SECONDS)


async def frame_publish(frame: dict[str, Any]) -> None:
    """Store a frame as its market's latest and send it to the market's group (the producer calls this; one
    producer per market, so there is one writer of each entry). The group's message carries the frame encoded
    once, so that a web process serving a thousand pages does not encode it a thousand times."""
    market = Market(frame["exchange"], frame["symbol"])
    await cache.aset(_cache_key(market), frame, timeout=FRAME_TTL_SECONDS)
    layer = get_channel_layer()
    if layer is not None:
        event = {"type": RELAY_EVENT, "created_ms": frame["created_ms"], "text": frame_text(frame)}
        await layer.group_send(market_group(market.exchange, market.symbol), event)
