"""Typed errors of the execution app; each has a stable machine-readable code (STYLE.md)."""

from __future__ import annotations

from mrmarket.errors import ApplicationError


class ExecutionError(ApplicationError):
    code = "execution_error"
