"""ASGI entry point: HTTP to Django, WebSocket to Channels (session-authenticated, origin-checked)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

# No profile named means production (which refuses to start without its variables), never dev.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mrmarket.settings.prod")
os.environ.setdefault("MRMARKET_PROCESS", "web")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402 - needs the app registry loaded above
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from mrmarket.routing import websocket_urlpatterns  # noqa: E402

router = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

# Development serves static files itself; production serves collected files from its reverse proxy.
application = ASGIStaticFilesHandler(router) if settings.DEBUG else router
