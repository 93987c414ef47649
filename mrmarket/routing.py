"""WebSocket routes (Channels)."""

from __future__ import annotations

from django.urls import path

from mrmarket.consumers import SystemStatusConsumer

websocket_urlpatterns = [
    path("ws/v1/system/status", SystemStatusConsumer.as_asgi()),
]
