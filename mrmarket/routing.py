"""WebSocket routes (Channels)."""

from __future__ import annotations

from django.urls import path

from campaigns.consumers import CampaignDepthConsumer
from mrmarket.consumers import SystemStatusConsumer

websocket_urlpatterns = [
    path("ws/v1/system/status", SystemStatusConsumer.as_asgi()),
    path("ws/v1/campaigns/<int:chain_id>/<str:address>/depth", CampaignDepthConsumer.as_asgi()),
]
