"""How the EasyEnclave control plane binds what it says to its attested TD: both sides compute these bytes.

The control plane generates an Ed25519 key inside its TD at boot. Its attestation answer names the public key,
and its quote's REPORTDATA binds that key to the verifier's nonce:

    REPORTDATA (64 bytes) = SHA-512( ATTESTATION_TAG || nonce (32 bytes) || signing key (32 bytes) )

Every discovery answer (`GET /api/v1/services?…&nonce=N`) then carries the request's query as the control plane
read it, the verifier's fresh nonce `N`, and `signature`: Ed25519 by that key over

    SIGNATURE_TAG || RFC 8785 canonical JSON of the whole answer without `signature`

so a relying party that verified the quote knows the list came from that TD, for this request, unaltered — over
plain http as over https. Tags are ASCII strings followed by one zero byte.
"""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785

from wire.attestation import hex_bytes
from wire.errors import WireError

ATTESTATION_TAG = b"mrmarket.easyenclave.control-plane.v1\x00"
SIGNATURE_TAG = b"mrmarket.easyenclave.discovery.v1\x00"
NONCE_BYTES = 32
KEY_BYTES = 32


class ControlPlaneBindingError(WireError):
    code = "bad_control_plane_binding"


def _raw(hex_value: str, what: str, size: int) -> bytes:
    return hex_bytes(hex_value, what, size, error=ControlPlaneBindingError)


def report_data(*, nonce: str, signing_key: str) -> bytes:
    """The 64 bytes the control plane puts in its quote's REPORTDATA for `nonce`."""
    return hashlib.sha512(
        ATTESTATION_TAG + _raw(nonce, "nonce", NONCE_BYTES) + _raw(signing_key, "signing key", KEY_BYTES)
    ).digest()


def signed_payload(answer: dict[str, Any]) -> bytes:
    """The bytes a discovery answer's signature covers: its canonical JSON without `signature`.

    RFC 8785 as is (not `wire.canonical`, which refuses floats): the answer carries what registrations put in it,
    and both sides canonicalize the same parsed values."""
    unsigned = {key: value for key, value in answer.items() if key != "signature"}
    try:
        encoded: bytes = rfc8785.dumps(unsigned)
    except rfc8785.CanonicalizationError as exc:
        raise ControlPlaneBindingError(f"the answer has no canonical form: {exc}") from None
    return encoded
