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


class TooLarge(SchemaError):
    """A value longer, or a list or object bigger, than the contract allows: refused before any work on it."""

    code = "too_large"


class SignatureError(WireError):
    code = "bad_signature"


class DigestMismatch(WireError):
    code = "digest_mismatch"


class ChainError(WireError):
    code = "chain_broken"


class SealError(WireError):
    code = "seal"


class UnknownStrategy(WireError):
    code = "unknown_strategy"


class StrategyParamError(WireError):
    """A strategy parameter the strategy refuses; `param` names it (a dotted path inside a job spec)."""

    code = "invalid_strategy_params"

    def __init__(self, param: str, reason: str) -> None:
        super().__init__(reason, path=param)
        self.param = param
        self.reason = reason
