"""How an executor binds its keys and its runtime configuration to a TDX quote: the REPORTDATA layout both sides
compute, and the runtime-configuration document whose digest it carries.

    REPORTDATA (64 bytes) = SHA-512( TAG || nonce (32) || signing key (32) || sealing key (32) || config (32) )

`TAG` is the ASCII string below followed by one zero byte. The nonce is the verifier's single-use challenge
(64 hex characters on the wire); the keys are the executor's Ed25519 report-signing and X25519 sealing public
keys as raw bytes; `config` is the SHA-256 of the canonical runtime-configuration document (`runtime_config`).
A verifier recomputes this from the nonce it issued, the keys and the document the executor claims; a match
proves the quote was made for this challenge by a TD holding exactly these keys and running with exactly this
configuration.

The runtime-configuration document (`mrmarket.executor.runtime/v1`) is what the host chooses at launch and what
matters for trust (ADR 0012): the controller key the executor obeys, the exchange API base URLs it trades on
where they differ from ccxt's built-in ones (which are part of the measured image), the quote provider kind, and
whether it runs in dev mode (plain http to exchanges allowed).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any
from urllib.parse import urlsplit

from wire import schema as s
from wire.canonical import digest
from wire.errors import SchemaError, WireError

REPORT_DATA_TAG = b"mrmarket.executor.attestation.v2\x00"
NONCE_BYTES = 32
RUNTIME_CONFIG_SCHEMA = "mrmarket.executor.runtime/v1"

_EXCHANGE = re.compile(r"[a-z0-9_]{1,32}")


def _boolean(value: Any, path: str) -> None:
    if not isinstance(value, bool):
        raise SchemaError("must be true or false", path=path)


RUNTIME_CONFIG = s.obj(
    {
        "schema": s.one_of(RUNTIME_CONFIG_SCHEMA),
        "controller_key": s.nullable(s.hex_string(32)),
        "exchange_api_urls": s.mapping(s.string(pattern=_EXCHANGE), s.string(max_len=512)),
        "quote_provider": s.string(pattern=re.compile(r"[a-z0-9-]{1,32}")),
        "dev": _boolean,
    }
)


class BindingError(WireError):
    code = "bad_binding"


def hex_bytes(hex_value: str, what: str, size: int, *, error: type[WireError] = BindingError) -> bytes:
    """`size` bytes from hex, or `error` saying what was wrong with `what`."""
    try:
        raw = bytes.fromhex(hex_value)
    except (TypeError, ValueError):
        raise error(f"{what} is not hex") from None
    if len(raw) != size:
        raise error(f"{what} must be {size} bytes, got {len(raw)}")
    return raw


def normalize_api_url(url: str) -> str:
    """An exchange API base URL as both sides compare it: scheme and host lower-cased, no trailing slash, no
    query or fragment. Raises `BindingError` for anything but an absolute http(s) URL."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise BindingError(f"{url!r} is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise BindingError(f"{url!r} is not an absolute http(s) URL")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise BindingError(f"{url!r} must not carry credentials, a query or a fragment")
    netloc = parts.hostname.lower() + (f":{port}" if port is not None else "")
    return f"{parts.scheme.lower()}://{netloc}{parts.path.rstrip('/')}"


def runtime_config(
    *, controller_key: str | None, exchange_api_urls: dict[str, str], quote_provider: str, dev: bool
) -> dict[str, Any]:
    """The canonical runtime-configuration document (validated; URLs normalized). `controller_key` is None only
    for an executor that obeys nobody (no key configured): no controller accepts that one."""
    doc = {
        "schema": RUNTIME_CONFIG_SCHEMA,
        "controller_key": controller_key.lower() if controller_key else None,
        "exchange_api_urls": {name: normalize_api_url(url) for name, url in sorted(exchange_api_urls.items())},
        "quote_provider": quote_provider,
        "dev": dev,
    }
    validate_runtime_config(doc)
    return doc


def validate_runtime_config(doc: Any) -> None:
    """Raises `BindingError` unless `doc` is a well-formed runtime-configuration document in normal form."""
    try:
        RUNTIME_CONFIG(doc, "runtime_config")
    except SchemaError as exc:
        raise BindingError(f"runtime_config: {exc}") from None
    for name, url in doc["exchange_api_urls"].items():
        if normalize_api_url(url) != url:
            raise BindingError(f"runtime_config.exchange_api_urls.{name} is not in normal form")


def runtime_config_digest(doc: dict[str, Any]) -> str:
    validate_runtime_config(doc)
    return digest(doc)


def report_data(*, nonce: str, signing_key: str, sealing_key: str, runtime_config_digest: str) -> bytes:
    """The 64 bytes an executor asks its quote provider to put in REPORTDATA."""
    return hashlib.sha512(
        REPORT_DATA_TAG
        + hex_bytes(nonce, "nonce", NONCE_BYTES)
        + hex_bytes(signing_key, "signing key", 32)
        + hex_bytes(sealing_key, "sealing key", 32)
        + hex_bytes(runtime_config_digest, "runtime config digest", 32)
    ).digest()
