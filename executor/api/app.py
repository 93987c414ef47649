"""The executor's aiohttp application: each API module registers its own routes."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from executor.api import health
from executor.api.middleware import correlation_middleware
from executor.config import Config


def create_app(config: Config) -> web.Application:
    app = web.Application(middlewares=[correlation_middleware], client_max_size=1024 * 1024)
    app[health.CONFIG_KEY] = config
    app[health.STARTED_AT_KEY] = datetime.now(tz=UTC)
    app.add_routes(health.routes)
    return app
