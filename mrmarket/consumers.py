"""Live system status for the admin page: staff only, one group, relays two event types."""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from mrmarket.broadcast import SYSTEM_STATUS_GROUP


class SystemStatusConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_staff:
            await self.close(code=4403)
            return
        await self.channel_layer.group_add(SYSTEM_STATUS_GROUP, self.channel_name)
        await self.accept()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        """The page only listens: what it sends is not even parsed (a deep JSON frame would recurse the decoder
        past the C stack: py_ecc lifts the recursion limit)."""

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(SYSTEM_STATUS_GROUP, self.channel_name)

    async def system_heartbeat(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "system.heartbeat", **event["payload"]})

    async def system_status(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "system.status", **event["payload"]})
