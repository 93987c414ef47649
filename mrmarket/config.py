"""Configuration parsing shared by the settings profiles and the process entry points.

Everything here fails with :class:`ConfigError`: one line that names the environment variable and says what is
wrong with it, never its value when the value may carry a password.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

DB_ENGINES = {
    "postgres": "django.db.backends.postgresql",
    "postgresql": "django.db.backends.postgresql",
    "pgsql": "django.db.backends.postgresql",
    "sqlite": "django.db.backends.sqlite3",
}
REDIS_SCHEMES = {"redis", "rediss"}


class ConfigError(ImproperlyConfigured):
    """A configuration problem a person must fix; printed as one line by the entry points."""


def redact_url(url: str) -> str:
    """The URL without its password, for error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


# Dev only: the seed of the key Django signs executor job control with in the dev and test profiles (ADR 0011).
DEV_CONTROLLER_SIGNING_KEY = "6465762d6f6e6c792d636f6e74726f6c6c65722d6b65792d33322d6279746573"

# The embedded default serves the web, a worker and beat at once: writers take the lock when a transaction
# starts (no read-to-write upgrade deadlocks), wait up to 20 s for it, and readers do not block them (WAL).
SQLITE_OPTIONS = {
    "timeout": 20,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}


def parse_database_url(name: str, url: str, *, conn_max_age: int = 0) -> dict[str, Any]:
    """Django DATABASES entry for ``postgres://user:pass@host:port/db`` or ``sqlite:////abs/path.db``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{name} is malformed ({exc}); expected postgres://USER@HOST:PORT/DB") from None
    engine = DB_ENGINES.get(parts.scheme)
    if engine is None:
        raise ConfigError(
            f"{name} is malformed: scheme {parts.scheme or '(none)'!r} is not one of "
            "postgres://USER@HOST:PORT/DB or sqlite:////ABSOLUTE/PATH.db"
        )
    if engine.endswith("sqlite3"):
        # As in django-environ and SQLAlchemy: sqlite:////abs/path.db (four slashes) is an absolute path.
        path = url.split("://", 1)[1][1:]
        if path == ":memory:":
            return {"ENGINE": engine, "NAME": path}
        if not path.startswith("/") or path.endswith("/"):
            raise ConfigError(f"{name} is malformed: SQLite needs sqlite:////ABSOLUTE/PATH.db (or sqlite:///:memory:)")
        return {"ENGINE": engine, "NAME": path, "OPTIONS": SQLITE_OPTIONS}
    db_name = parts.path.lstrip("/")
    if not parts.hostname or not db_name:
        raise ConfigError(f"{name} is malformed: PostgreSQL needs postgres://USER@HOST:PORT/DB")
    return {
        "ENGINE": engine,
        "NAME": db_name,
        "USER": parts.username or "",
        "PASSWORD": parts.password or "",
        "HOST": parts.hostname,
        "PORT": str(port or 5432),
        "CONN_MAX_AGE": conn_max_age,
        "CONN_HEALTH_CHECKS": conn_max_age > 0,
    }


def parse_redis_url(name: str, url: str) -> str:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port validates it
    except ValueError as exc:
        raise ConfigError(f"{name} is malformed ({exc}); expected redis://HOST:PORT/DB") from None
    if parts.scheme not in REDIS_SCHEMES or not parts.hostname:
        raise ConfigError(f"{name} is malformed: expected redis://HOST:PORT/DB or rediss://HOST:PORT/DB")
    return url


def parse_master_key(name: str, value: str) -> bytes:
    """The credential master key: 32 random bytes, base64 (standard or URL-safe) encoded."""
    standard = value.strip().replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{name} is not valid base64") from None
    if len(raw) != 32:
        raise ConfigError(f"{name} must decode to 32 bytes (got {len(raw)}); make one with `make master-key`")
    return raw


def parse_key_ring(name: str, value: str) -> dict[str, bytes]:
    """Retired master keys still needed to decrypt rows not yet re-wrapped: `id1:base64,id2:base64`."""
    ring: dict[str, bytes] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        key_id, sep, encoded = item.partition(":")
        if not sep or not key_id:
            raise ConfigError(f"{name} entries are KEY_ID:BASE64, separated by commas")
        ring[key_id] = parse_master_key(f"{name} ({key_id})", encoded)
    return ring


def missing_variables(environ: Mapping[str, str], names: list[str]) -> list[str]:
    return [n for n in names if not environ.get(n, "").strip()]
