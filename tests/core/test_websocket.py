"""The live status WebSocket over the real Redis channel layer: staff only, survives idling, relays events."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from mrmarket.broadcast import SYSTEM_STATUS_GROUP
from mrmarket.consumers import SystemStatusConsumer
from mrmarket.roles import Role
from tests.factories import user_with

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def connect(user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(SystemStatusConsumer.as_asgi(), "/ws/v1/system/status")
    communicator.scope["user"] = user
    return communicator


async def test_anonymous_and_non_staff_are_refused() -> None:
    for user in (AnonymousUser(), await sync_to_async(user_with)(Role.OPERATOR)):
        communicator = await connect(user)
        connected, code = await communicator.connect()
        assert connected is False
        assert code == 4403


@pytest.mark.slow
async def test_idle_connection_stays_open_past_redis_socket_timeouts() -> None:
    # redis-py 8 made idle channel-layer reads time out after 5 s (ADR 0004); stay idle for 7 s.
    from channels.layers import get_channel_layer

    staff = await sync_to_async(user_with)(Role.STAFF)
    communicator = await connect(staff)
    connected, _ = await communicator.connect()
    assert connected
    await asyncio.sleep(7)
    assert await communicator.receive_nothing(timeout=0.2)
    await get_channel_layer().group_send(
        SYSTEM_STATUS_GROUP, {"type": "system.heartbeat", "payload": {"component": "beat", "at": "t"}}
    )
    message = await communicator.receive_json_from(timeout=5)
    assert message == {"type": "system.heartbeat", "component": "beat", "at": "t"}
    await communicator.disconnect()
