"""Typed errors of the attestation app; each has a stable machine-readable code (STYLE.md)."""

from __future__ import annotations

from mrmarket.errors import ApplicationError


class AttestationError(ApplicationError):
    code = "attestation_error"
