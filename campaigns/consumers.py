"""Live depth of a campaign's market for its public page: no sign-in, one group per market, newest frame only.

Frames reach the page through its process's hub for the market (`campaigns.depth_hub`: one group member per process
and market). Offering a frame never waits on the client's socket: the page keeps it as the newest and wakes its
sender task, which sends the newest frame whenever the previous send has finished. A slow client therefore skips
frames instead of queueing them, and the channel layer's queue for the process stays drained.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from campaigns.depth_hub import hub_join, hub_leave
from campaigns.live import alatest_frame, frame_text, market_group
from campaigns.selectors import campaign_get
from mrmarket.observability.logging import get_logger

CLOSE_UNKNOWN_CAMPAIGN = 4404
CLOSE_TRY_AGAIN = 1013  # RFC 6455: try again later (the channel layer did not answer)
log = get_logger(__name__)


class CampaignDepthConsumer(AsyncWebsocketConsumer):
    _group: str | None = None
    _sender: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        kwargs = self.scope["url_route"]["kwargs"]
        campaign = await database_sync_to_async(campaign_get)(chain_id=kwargs["chain_id"], address=kwargs["address"])
        # Accepted, then closed: a browser sees the close code only on an open socket (a refused handshake is a
        # bare 403).
        await self.accept()
        if campaign is None or not campaign.exchange or not campaign.pair:
            await self.close(code=CLOSE_UNKNOWN_CAMPAIGN)
            return
        self._latest: str | None = None  # the newest frame not sent yet, as its JSON text
        self._newest_ms = -1  # created_ms of the newest frame taken, so the cached one never overtakes a live one
        self._newest_text = ""
        self._wake = asyncio.Event()
        group = market_group(campaign.exchange, campaign.pair)
        self._group = group  # set first: a join that fails half-way is undone by leaving
        try:
            await hub_join(group, self)
            cached = await alatest_frame(campaign.exchange, campaign.pair)
        except Exception as exc:  # Redis away: no live depth now; the page reconnects later and shows its snapshot
            log.warning("depth_connect_failed", group=group, error=repr(exc))
            await self._leave()
            await self.close(code=CLOSE_TRY_AGAIN)
            return
        self._sender = asyncio.create_task(self._send_newest())
        if cached is not None and isinstance(cached.get("created_ms"), int):
            self.offer(cached["created_ms"], frame_text(cached))

    async def disconnect(self, code: int) -> None:
        await self._leave()

    async def _leave(self) -> None:
        await self._leave_hub()
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # a send that failed ended it already
                await sender

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        """The page only listens: anything it sends is ignored."""

    def offer(self, created_ms: int, text: str) -> None:
        if created_ms < self._newest_ms or (created_ms == self._newest_ms and text == self._newest_text):
            return  # older than one taken, or the same frame twice (from the cache and the group)
        self._latest, self._newest_ms, self._newest_text = text, created_ms, text
        self._wake.set()

    async def _send_newest(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            text, self._latest = self._latest, None
            if text is not None:
                try:
                    await self.send(text_data=text)
                except Exception as exc:  # the socket is gone: stop offering it frames; disconnect follows
                    log.info("depth_send_failed", group=self._group, error=repr(exc))
                    await self._leave_hub()
                    return

    async def _leave_hub(self) -> None:
        group, self._group = self._group, None
        if group is not None:
            with contextlib.suppress(Exception):  # Redis away: the hub forgets the page all the same
                await hub_leave(group, self)
