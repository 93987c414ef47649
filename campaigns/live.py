"""Live depth frames of a market (replaced by h-live: the producer, the cache and the Channels group)."""

from __future__ import annotations

from typing import Any


def latest_frame(exchange: str, symbol: str) -> dict[str, Any] | None:  # replaced by h-live
    """The latest depth frame of a market from the cache, None when there is none."""
    return None
