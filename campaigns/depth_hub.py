"""One web process's subscription to a market's live depth: a single channel-layer channel joined to the market's
group, and the pages of that market this process serves. Each frame arrives once per process, not once per page,
and is handed to every page without awaiting any socket (the page sends it when its previous send is done).

With a consumer per page in the group instead, a frame to 1,000 pages costs 1,000 channel-layer receives in the
one process (each a lock hand-over and two tasks in channels-redis): most of the frame's time to the last page.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol

from channels.layers import get_channel_layer

from mrmarket.observability.logging import get_logger

log = get_logger(__name__)

RETRY_SECONDS = 1.0  # after a failed receive from the channel layer
REJOIN_SECONDS = 3600.0  # channels-redis forgets a group member after group_expiry (a day): say it again hourly


class Page(Protocol):
    def offer(self, created_ms: int, text: str) -> None: ...


class MarketHub:
    def __init__(self, group: str) -> None:
        self.group = group
        self.pages: set[Page] = set()
        self._joined = asyncio.Event()
        self._error: BaseException | None = None  # why joining the group failed (pages waiting on it see it too)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        layer = get_channel_layer()
        try:
            channel = await layer.new_channel()
            await layer.group_add(self.group, channel)
        except BaseException as exc:
            self._error = exc
            self._joined.set()
            raise
        self._tasks = [
            asyncio.create_task(self._relay(layer, channel)),
            asyncio.create_task(self._rejoin(layer, channel)),
        ]
        self._channel = channel
        self._joined.set()

    async def joined(self) -> None:
        await self._joined.wait()
        if self._error is not None:
            raise RuntimeError(f"the live-depth hub could not join {self.group}") from self._error

    async def _relay(self, layer: Any, channel: str) -> None:
        while True:
            try:
                message = await layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: the pages keep their last frame until it is back
                log.warning("depth_hub_receive_failed", group=self.group, error=repr(exc))
                await asyncio.sleep(RETRY_SECONDS)
                continue
            created_ms, text = message.get("created_ms"), message.get("text")
            if not isinstance(created_ms, int) or not isinstance(text, str):
                log.warning("depth_hub_bad_message", group=self.group, keys=sorted(message))
                continue  # not a frame of ours: the next one is
            for page in list(self.pages):
                try:
                    page.offer(created_ms, text)
                except Exception as exc:  # one page's fault ends neither the relay nor the other pages
                    log.warning("depth_hub_offer_failed", group=self.group, error=repr(exc))

    async def _rejoin(self, layer: Any, channel: str) -> None:
        while True:
            await asyncio.sleep(REJOIN_SECONDS)
            with contextlib.suppress(Exception):  # Redis away for a moment: the next hour tries again
                await layer.group_add(self.group, channel)

    async def stop(self) -> None:
        await self._joined.wait()
        if self._error is not None:
            return
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await get_channel_layer().group_discard(self.group, self._channel)


# By event loop as well as group: a hub's tasks belong to the loop that started them (tests run one per test).
_hubs: dict[tuple[asyncio.AbstractEventLoop, str], MarketHub] = {}


async def hub_join(group: str, page: Page) -> None:
    """Add a page to its market's hub, joining the group first if this process has no page of the market yet."""
    key = (asyncio.get_running_loop(), group)
    hub = _hubs.get(key)
    if hub is None:
        hub = _hubs[key] = MarketHub(group)
        hub.pages.add(page)
        try:
            await hub.start()
        except Exception:
            if _hubs.get(key) is hub:
                del _hubs[key]
            raise
    else:
        hub.pages.add(page)
        await hub.joined()


async def hub_leave(group: str, page: Page) -> None:
    """Remove a page; the last page of a market leaves the group (a later page makes a new hub)."""
    key = (asyncio.get_running_loop(), group)
    hub = _hubs.get(key)
    if hub is None:
        return
    hub.pages.discard(page)
    if not hub.pages:
        del _hubs[key]
        await hub.stop()
