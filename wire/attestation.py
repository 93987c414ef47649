"""How an executor binds its keys to a TDX quote: the REPORTDATA layout both sides compute.

    REPORTDATA (64 bytes) = SHA-512( TAG || nonce (32 bytes) || signing key (32 bytes) || sealing key (32 bytes) )

`TAG` is the ASCII string below followed by one zero byte. The nonce is the verifier's single-use challenge
(64 hex characters on the wire); the keys are the executor's Ed25519 report-signing and X25519 sealing public
keys as raw bytes. A verifier recomputes this from the nonce it issued and the keys the executor claims; a
match proves the quote was made for this challenge by a TD holding exactly these keys.
"""

from __future__ import annotations

import hashlib

from wire.errors import WireError

REPORT_DATA_TAG = b"mrmarket.executor.attestation.v1\x00"
NONCE_BYTES = 32


class BindingError(WireError):
    code = "bad_binding"


def _raw(hex_value: str, what: str, size: int) -> bytes:
    try:
        raw = bytes.fromhex(hex_value)
    except (TypeError, ValueError):
        raise BindingError(f"{what} is not hex") from None
    if len(raw) != size:
        raise BindingError(f"{what} must be {size} bytes, got {len(raw)}")
    return raw


def report_data(*, nonce: str, signing_key: str, sealing_key: str) -> bytes:
    """The 64 bytes an executor asks its quote provider to put in REPORTDATA."""
    return hashlib.sha512(
        REPORT_DATA_TAG
        + _raw(nonce, "nonce", NONCE_BYTES)
        + _raw(signing_key, "signing key", 32)
        + _raw(sealing_key, "sealing key", 32)
    ).digest()
