"""Pushes events to WebSocket groups; called from services and tasks after their writes, never from views."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

SYSTEM_STATUS_GROUP = "system.status"


def send_to_group(group: str, event_type: str, payload: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    async_to_sync(layer.group_send)(group, {"type": event_type, "payload": payload})


def system_event(event_type: str, payload: dict[str, Any]) -> None:
    send_to_group(SYSTEM_STATUS_GROUP, event_type, payload)
