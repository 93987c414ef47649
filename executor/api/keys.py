"""The application's shared state, by typed key: what `create_app` puts in and every API module reads."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from executor.api.auth import ControllerAuth
from executor.config import Config
from executor.identity import Identity
from executor.ita import ItaAppraiser
from executor.jobs.manager import JobManager
from executor.quote import QuoteProvider

CONFIG_KEY = web.AppKey("config", Config)
STARTED_AT_KEY = web.AppKey("started_at", datetime)
MANAGER_KEY = web.AppKey("jobs", JobManager)
AUTH_KEY = web.AppKey("auth", ControllerAuth)
IDENTITY_KEY = web.AppKey("identity", Identity)
PROVIDER_KEY = web.AppKey("quote_provider", QuoteProvider)
RUNTIME_KEY = web.AppKey("runtime_config", dict)
ITA_KEY = web.AppKey("ita_appraiser", ItaAppraiser)  # present only when ITA is configured
