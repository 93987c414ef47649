"""GET /v1/health: liveness and build identity (open, no authentication)."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from executor.api.keys import AUTH_KEY, CONFIG_KEY, IDENTITY_KEY, PROVIDER_KEY, RUNTIME_KEY, STARTED_AT_KEY

routes = web.RouteTableDef()


@routes.get("/v1/health")
async def health(request: web.Request) -> web.Response:
    started_at = request.app[STARTED_AT_KEY]
    return web.json_response(
        {
            "status": "ok",
            "version": request.app[CONFIG_KEY].build_version,
            "started_at": started_at.isoformat(),
            "uptime_seconds": int((datetime.now(tz=UTC) - started_at).total_seconds()),
            **_identity(request.app),
        }
    )


def _identity(app: web.Application) -> dict[str, object]:
    if IDENTITY_KEY not in app:
        return {}
    return {
        **app[IDENTITY_KEY].public(),
        "quote_provider": app[PROVIDER_KEY].name,
        "controller_key": app[AUTH_KEY].controller_key,
        "runtime_config": app[RUNTIME_KEY],
    }
