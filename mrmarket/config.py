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
from eth_account import Account
from web3 import Web3

from wire.keys import SigningKey

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
# Dev only: the other embedded secrets of the dev and test profiles; the prod profile refuses every one of them.
DEV_SECRET_KEY = "dev-insecure-secret-key-not-for-production-use-0123456789"  # noqa: S105 - dev only, refused by prod
DEV_MASTER_KEY = "ZGV2LW9ubHktbWFzdGVyLWtleS0zMi1ieXRlcy0hISE="
# Dev only: the seed of the Ed25519 key that vouches for stored credential rows (ADR 0015).
DEV_CREDENTIALS_SIGNING_KEY = "6465762d6f6e6c792d63726564656e7469616c732d726f772d6b65792d333221"
# The well-known keys of Anvil's (and Hardhat's) default mnemonic, accounts 0-9: public, so never a custody key.
DEV_CHAIN_PRIVATE_KEYS = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
)
DEV_CUSTODY_PRIVATE_KEY = DEV_CHAIN_PRIVATE_KEYS[3]
# The oracle the demo campaign names for recording and for reputation (devnet.protocol.ensure_demo_protocol).
DEV_ORACLE_PRIVATE_KEY = DEV_CHAIN_PRIVATE_KEYS[2]


def _looks_typed(raw: bytes) -> bool:
    """Random key material is almost never all printable ASCII, nor made of a handful of byte values; a key
    someone typed or padded usually is."""
    return all(0x20 <= b < 0x7F for b in raw) or len(set(raw)) < len(raw) // 3


def require_strong_secret_key(name: str, value: str) -> None:
    """Django's SECRET_KEY in production: not the dev value, long and varied (as Django's own check W009)."""
    if value == DEV_SECRET_KEY or "insecure" in value:
        raise ConfigError(f"{name} is a dev/insecure value; generate a random one for production")
    if len(value) < 50 or len(set(value)) < 5:
        raise ConfigError(f"{name} is weak: use at least 50 random characters")


def require_strong_key_bytes(name: str, raw: bytes, *, dev: bytes) -> None:
    """32-byte key material in production: not the dev value and not something typed by hand."""
    if raw == dev:
        raise ConfigError(f"{name} is the dev value; generate a random key for production")
    if _looks_typed(raw):
        raise ConfigError(f"{name} is weak (not random bytes); generate a random key for production")


def parse_controller_key(name: str, value: str) -> bytes:
    """The controller signing seed: 32 bytes as 64 hex characters."""
    try:
        raw = bytes.fromhex(value.strip())
    except ValueError:
        raise ConfigError(f"{name} is not hex") from None
    if len(raw) != 32:
        raise ConfigError(f"{name} must be 32 bytes (64 hex characters), got {len(raw)} bytes")
    return raw


def require_custody_key(name: str, value: str) -> None:
    """A custody private key in production: 32 bytes of hex and none of the public dev-chain keys."""
    normalized = "0x" + value.strip().lower().removeprefix("0x")
    if normalized in DEV_CHAIN_PRIVATE_KEYS:
        raise ConfigError(f"{name} is a public dev-chain key; anyone can spend from it")
    raw = parse_controller_key(name, normalized.removeprefix("0x"))
    if _looks_typed(raw):
        raise ConfigError(f"{name} is weak (not random bytes)")


def require_protected_redis(name: str, url: str) -> None:
    """Production Redis is reached over TLS (rediss://) or with a password."""
    parts = urlsplit(url)
    if parts.scheme == "rediss" or parts.password:
        return
    raise ConfigError(f"{name} must use rediss:// or carry a password in the prod profile")


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


def _key_bytes(name: str, value: str, *, how: str) -> bytes:
    standard = value.strip().replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{name} is not valid base64") from None
    if len(raw) != 32:
        raise ConfigError(f"{name} must decode to 32 bytes (got {len(raw)}); {how}")
    return raw


def parse_master_key(name: str, value: str) -> bytes:
    """The credential master key: 32 random bytes, base64 (standard or URL-safe) encoded."""
    return _key_bytes(name, value, how="make one with `make master-key`")


def parse_public_key(name: str, value: str) -> bytes:
    """The public half of the credential master key: 32 bytes, base64 (`manage.py credentials_public_key`)."""
    return _key_bytes(name, value, how="`manage.py credentials_public_key`")


def parse_key_ring(name: str, value: str) -> dict[str, bytes]:
    """Retired master keys still needed to decrypt rows not yet re-wrapped: `id1:base64,id2:base64`."""
    ring: dict[str, bytes] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        key_id, sep, encoded = item.partition(":")
        if not sep or not key_id:
            raise ConfigError(f"{name} entries are KEY_ID:BASE64, separated by commas")
        ring[key_id] = parse_master_key(f"{name} ({key_id})", encoded)
    return ring


def parse_verify_keys(name: str, value: str) -> tuple[str, ...]:
    """Ed25519 public keys (hex, 32 bytes each), separated by commas; lower-case hex, in the order given."""
    keys: list[str] = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        keys.append(parse_controller_key(name, item).hex())
    return tuple(keys)


def ed25519_public_hex(seed: bytes) -> str:
    """The public half (hex) of an Ed25519 seed."""
    return SigningKey.from_seed(seed).public_hex


def missing_variables(environ: Mapping[str, str], names: list[str]) -> list[str]:
    return [n for n in names if not environ.get(n, "").strip()]


def custody_address(private_key: str, configured: str) -> str:
    """The custody wallet's address: derived from its key where the key is held, else as configured."""
    return key_address(private_key, configured, key_name="CUSTODY_PRIVATE_KEY", address_name="CUSTODY_ADDRESS")


def key_address(private_key: str, configured: str, *, key_name: str, address_name: str) -> str:
    """A signer's public address: derived from its key where the process holds it (and then checked against the
    configured address, if any), else as configured; "" when neither is given. The web process knows the custody
    wallet and the oracles by their addresses alone."""
    if private_key:
        try:
            derived = str(Account.from_key(private_key).address)
        except (ValueError, TypeError):
            raise ConfigError(f"{key_name} is not a valid private key") from None
        if configured and configured.lower() != derived.lower():
            raise ConfigError(f"{address_name} is not the address of {key_name}")
        return derived
    if not configured:
        return ""
    if not Web3.is_address(configured):
        raise ConfigError(f"{address_name} is not an Ethereum address")
    return str(Web3.to_checksum_address(configured))
