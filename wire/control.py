"""Authenticating the controller (Django) to an executor: every job-control request is signed (ADR 0011).

The controller holds an Ed25519 key. Each request carries three headers:

    X-Controller-Key        hex of the controller's public key
    X-Controller-Timestamp  milliseconds since the epoch when the request was signed
    X-Controller-Signature  Ed25519 signature (hex) over
                            tag || 0x00 || METHOD \\n PATH?QUERY \\n TIMESTAMP \\n hex(SHA-256(BODY))

with tag `mrmarket.controller.v1`. The executor accepts a request only from the key it pins (configured, or the
first valid key it sees), only within `MAX_SKEW_MS` of its clock, and each signature only once.
"""

from __future__ import annotations

import hashlib

from wire.keys import SigningKey, verify_signature

CONTROLLER_TAG = b"mrmarket.controller.v1"
KEY_HEADER = "X-Controller-Key"
TIMESTAMP_HEADER = "X-Controller-Timestamp"
SIGNATURE_HEADER = "X-Controller-Signature"
MAX_SKEW_MS = 30_000


def request_message(method: str, path_qs: str, timestamp_ms: int, body: bytes) -> bytes:
    parts = [method.upper(), path_qs, str(timestamp_ms), hashlib.sha256(body).hexdigest()]
    return "\n".join(parts).encode()


def sign_request(key: SigningKey, *, method: str, path_qs: str, body: bytes, timestamp_ms: int) -> dict[str, str]:
    signature = key.sign(request_message(method, path_qs, timestamp_ms, body), tag=CONTROLLER_TAG)
    return {KEY_HEADER: key.public_hex, TIMESTAMP_HEADER: str(timestamp_ms), SIGNATURE_HEADER: signature}


def verify_request(
    public_hex: str, *, method: str, path_qs: str, body: bytes, timestamp_ms: int, signature_hex: str
) -> None:
    """Raises `wire.errors.SignatureError` when the signature does not verify."""
    verify_signature(
        public_hex, request_message(method, path_qs, timestamp_ms, body), signature_hex, tag=CONTROLLER_TAG
    )
