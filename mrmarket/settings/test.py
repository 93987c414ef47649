"""Tests: dev settings with fast hashing and a test database (PostgreSQL when DATABASE_URL is set)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .dev import *  # noqa: F403
from .dev import DATABASES

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not :memory:, so that live-server and worker threads see the same test database.
    # Per process, so that two runs on one machine do not share a test database.
    DATABASES["default"]["TEST"] = {"NAME": str(Path(tempfile.gettempdir()) / f"mrmarket-test-{os.getpid()}.sqlite3")}
READYZ_REQUIRED = ["database", "redis", "broker", "channel_layer"]
# Each test sees its own settings' answer; the cache has its own test.
READYZ_CACHE_SECONDS = 0.0
# Threads that serve requests in tests (the browser tests' server, a worker thread) must not keep connections
# open, or the test database cannot be dropped at the end.
DATABASES["default"]["CONN_MAX_AGE"] = 0
