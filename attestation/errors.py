"""Typed errors of the attestation app; each has a stable machine-readable code (`mrmarket.errors.ApplicationError`)."""

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


class MeasurementImageMismatch(InvalidMeasurement):
    """An entry names an image whose expected RTMR3 (`wire.measurement.expected_rtmr3`) is not the RTMR3 it pins."""

    code = "measurement_image_mismatch"


class MeasurementUnmeasuredWorkload(InvalidMeasurement):
    """An entry pins RTMR3 to zeros: a TD whose runtime measured no workload, so it would admit any workload."""

    code = "measurement_unmeasured_workload"


class AllowlistConflict(AttestationError):
    code = "allowlist_conflict"
    status = 409


class ProvisioningRefused(AttestationError):
    """The gate gives an executor nothing (no keys to seal credentials to): it is revoked."""

    code = "provisioning_refused"
    status = 409


class EvidenceRefused(AttestationError):
    """The executor answered but declined (a 4xx): for the gate, a failed check (`attestation_refused`).
    `extra.executor_code` carries its own error code."""

    code = "executor_refused"
    status = 502


class EvidenceUnavailable(AttestationError):
    """The executor did not answer (timeout, connection refused, 5xx, not JSON): nothing was decided, an
    inconclusive check."""

    code = "executor_unavailable"
    status = 503
