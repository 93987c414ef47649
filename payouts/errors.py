"""Typed errors of the payouts app; each has a stable machine-readable code (`mrmarket.errors.ApplicationError`)."""

from __future__ import annotations

from mrmarket.errors import ApplicationError


class PayoutsError(ApplicationError):
    code = "payouts_error"
