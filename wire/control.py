"""Authenticating the controller (Django) to an executor: every job-control request is signed (ADR 0011).

The controller holds an Ed25519 key. Each request carries five headers:

    X-Controller-Key        hex of the controller's public key
    X-Controller-Audience   hex of the target executor's Ed25519 identity (report-signing) public key
    X-Controller-Timestamp  milliseconds since the epoch when the request was signed
    X-Controller-Nonce      16 random bytes, hex: two identical requests signed in the same millisecond (two
                            workers on one order) still differ — Ed25519 is deterministic
    X-Controller-Signature  Ed25519 signature (hex) over
                            tag || 0x00 || METHOD \\n PATH?QUERY \\n AUDIENCE \\n TIMESTAMP \\n NONCE \\n
                            hex(SHA-256(BODY))

with tag `mrmarket.controller.v3`. The executor accepts a request only from the controller key its attested
runtime configuration names (ADR 0012), only when the audience is its own identity key (a request signed for
one executor is refused by every other, and by the same executor after a restart, which has fresh keys), only
within `MAX_SKEW_MS` of its clock, and each nonce only once.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from wire.errors import SignatureError
from wire.keys import SigningKey, verify_signature

CONTROLLER_TAG = b"mrmarket.controller.v3"
KEY_HEADER = "X-Controller-Key"
AUDIENCE_HEADER = "X-Controller-Audience"
TIMESTAMP_HEADER = "X-Controller-Timestamp"
NONCE_HEADER = "X-Controller-Nonce"
SIGNATURE_HEADER = "X-Controller-Signature"
MAX_SKEW_MS = 30_000
NONCE_PATTERN = re.compile(r"[0-9a-f]{32}")
AUDIENCE_PATTERN = re.compile(r"[0-9a-f]{64}")


def request_message(method: str, path_qs: str, audience: str, timestamp_ms: int, nonce: str, body: bytes) -> bytes:
    parts = [method.upper(), path_qs, audience, str(timestamp_ms), nonce, hashlib.sha256(body).hexdigest()]
    return "\n".join(parts).encode()


def sign_request(
    key: SigningKey,
    *,
    method: str,
    path_qs: str,
    body: bytes,
    audience: str,
    timestamp_ms: int,
    nonce: str | None = None,
) -> dict[str, str]:
    """The headers of a request signed for the executor whose identity key is `audience`."""
    if not AUDIENCE_PATTERN.fullmatch(audience):
        raise SignatureError("the audience must be the executor's identity key (64 lowercase hex characters)")
    nonce = nonce if nonce is not None else secrets.token_hex(16)
    signature = key.sign(request_message(method, path_qs, audience, timestamp_ms, nonce, body), tag=CONTROLLER_TAG)
    return {
        KEY_HEADER: key.public_hex,
        AUDIENCE_HEADER: audience,
        TIMESTAMP_HEADER: str(timestamp_ms),
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: signature,
    }


def verify_request(
    public_hex: str,
    *,
    method: str,
    path_qs: str,
    body: bytes,
    audience: str,
    timestamp_ms: int,
    nonce: str,
    signature_hex: str,
) -> None:
    """Raises `wire.errors.SignatureError` when the nonce or audience is malformed or the signature does not
    verify. Whether the audience is the verifier's own key is the verifier's check."""
    if not NONCE_PATTERN.fullmatch(nonce):
        raise SignatureError("the request nonce must be 32 lowercase hex characters")
    if not AUDIENCE_PATTERN.fullmatch(audience):
        raise SignatureError("the request audience must be 64 lowercase hex characters")
    verify_signature(
        public_hex,
        request_message(method, path_qs, audience, timestamp_ms, nonce, body),
        signature_hex,
        tag=CONTROLLER_TAG,
    )
