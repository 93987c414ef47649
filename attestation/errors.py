"""Typed errors of the attestation app; each has a stable machine-readable code (STYLE.md)."""

from __future__ import annotations

from mrmarket.errors import ApplicationError


class AttestationError(ApplicationError):
    code = "attestation_error"


class NonceUnknown(AttestationError):
    code = "nonce_unknown"


class NonceExpired(AttestationError):
    code = "nonce_expired"


class NonceReused(AttestationError):
    code = "nonce_reused"


class InvalidMeasurement(AttestationError):
    code = "invalid_measurement"


class MeasurementUnpinned(InvalidMeasurement):
    """An allowlist entry that leaves empty a register every entry must pin (the MRTD alone admits any workload
    on the same firmware)."""

    code = "measurement_unpinned"


class AllowlistConflict(AttestationError):
    code = "allowlist_conflict"
    status = 409
