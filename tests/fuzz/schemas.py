"""The operations of an OpenAPI document as schemathesis loads them, by label (`GET /v1/health`)."""

from __future__ import annotations

from typing import Any

from schemathesis.core.result import Err
from schemathesis.schemas import APIOperation, BaseSchema


def operations(schema: BaseSchema) -> dict[str, APIOperation[Any, Any, Any, Any]]:
    """Every operation; one the loader cannot read fails here (the fuzz would silently skip it otherwise)."""
    found: dict[str, APIOperation[Any, Any, Any, Any]] = {}
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operation = result.ok()
        found[operation.label] = operation
    return found
