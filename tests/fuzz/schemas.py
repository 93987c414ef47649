"""The operations of an OpenAPI document as schemathesis loads them, by label (`GET /v1/health`), and the settings
every fuzz run here draws its cases with."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from schemathesis.core.result import Err
from schemathesis.schemas import APIOperation, BaseSchema


def repeatable(**limits: Any) -> settings:
    """Hypothesis settings for a bounded fuzz run that draws the same cases every time: derandomized, no example
    database, no deadline (a request's time is not a failure), no health check (slow draws are expected)."""
    return settings(derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck), **limits)


def operations(schema: BaseSchema) -> dict[str, APIOperation[Any, Any, Any, Any]]:
    """Every operation; one the loader cannot read fails here (the fuzz would silently skip it otherwise)."""
    found: dict[str, APIOperation[Any, Any, Any, Any]] = {}
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operation = result.ok()
        found[operation.label] = operation
    return found
