"""Typed errors of the wire contract; each has a stable code."""

from __future__ import annotations


class WireError(ValueError):
    code = "wire_error"

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.message = message
        self.path = path


class CanonicalFormError(WireError):
    code = "canonical_form"


class SchemaError(WireError):
    code = "schema"


class SignatureError(WireError):
    code = "bad_signature"


class DigestMismatch(WireError):
    code = "digest_mismatch"


class ChainError(WireError):
    code = "chain_broken"


class SealError(WireError):
    code = "seal"
