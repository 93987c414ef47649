"""The executor's aiohttp application: identity, quote provider, jobs, and each API module's routes."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from aiohttp import web

from executor.api import health, jobs
from executor.api.auth import ControllerAuth
from executor.api.keys import (
    AUTH_KEY,
    CONFIG_KEY,
    IDENTITY_KEY,
    ITA_KEY,
    MANAGER_KEY,
    PROVIDER_KEY,
    RUNTIME_KEY,
    STARTED_AT_KEY,
)
from executor.api.middleware import correlation_middleware, job_error_middleware
from executor.config import Config
from executor.engine.runner import RunnerSettings
from executor.identity import Identity
from executor.ita import ItaAppraiser
from executor.jobs.manager import JobManager
from executor.logging import get_logger
from executor.quote import QuoteProvider, QuoteUnavailable, build_provider, mrtd_of
from wire.redaction import register_secret

log = get_logger("executor")


def create_app(
    config: Config,
    *,
    identity: Identity | None = None,
    provider: QuoteProvider | None = None,
    manager: JobManager | None = None,
) -> web.Application:
    app = web.Application(middlewares=[correlation_middleware, job_error_middleware], client_max_size=1024 * 1024)
    register_secret(config.ita_api_key, config.easyenclave_token)  # this process's own secrets, masked everywhere
    identity = identity or Identity.generate()
    provider = provider or build_provider(
        config.quote_provider,
        tsm_path=config.tsm_path,
        socket_path=config.easyenclave_socket,
        token=config.easyenclave_token,
    )
    # What the host chose that matters for trust, bound into every quote (ADR 0012); the jobs trade on exactly
    # the URLs it names.
    runtime = config.runtime_config(quote_provider=provider.name)
    app[CONFIG_KEY] = config
    app[RUNTIME_KEY] = runtime
    app[STARTED_AT_KEY] = datetime.now(tz=UTC)
    app[IDENTITY_KEY] = identity
    app[PROVIDER_KEY] = provider
    if config.ita_url and config.ita_api_key:
        app[ITA_KEY] = ItaAppraiser(config.ita_url, config.ita_api_key)
    app[AUTH_KEY] = ControllerAuth(config.controller_key, audience=identity.signing.public_hex)
    app[MANAGER_KEY] = manager or JobManager(
        identity=identity,
        settings=RunnerSettings(
            tick_ms=config.tick_ms,
            streams=config.streams,
            reconcile_ms=config.reconcile_ms,
            stream_stall_ms=config.stream_stall_ms,
            unknown_orders=config.unknown_orders,
            build_version=config.build_version,
            request_timeout_ms=config.request_timeout_ms,
        ),
        max_jobs=config.max_jobs,
        exchange_api_urls=runtime["exchange_api_urls"],
        controller_key=config.controller_key,
    )
    app.cleanup_ctx.append(_lifecycle)
    app.add_routes(health.routes)
    app.add_routes(jobs.routes)
    return app


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    """At boot: learn this TD's MRTD from a quote (reports carry it). At exit: stop every job, cancelling orders."""
    manager = app[MANAGER_KEY]
    try:
        measurement = mrtd_of(await app[PROVIDER_KEY].quote(bytes(64)))
    except QuoteUnavailable as exc:
        measurement = ""
        log.warning("no_measurement", reason=exc.message)
    manager.settings = dataclasses.replace(manager.settings, measurement=measurement)
    log.info("executor_identity", measurement=measurement or None, **app[IDENTITY_KEY].public())
    yield
    await manager.shutdown()
