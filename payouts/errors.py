"""Typed errors of the payouts app; each has a stable machine-readable code (`mrmarket.errors.ApplicationError`)."""

from __future__ import annotations

from mrmarket.errors import ApplicationError


class PayoutsError(ApplicationError):
    code = "payouts_error"


class SnapshotInvalid(PayoutsError):
    """A book snapshot that is neither a book nor a gap with its reason, or has an unknown source."""

    code = "book_snapshot_invalid"
