"""OpenAPI generation (drf-spectacular) adapted to one-view-per-operation with nested serializers."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import Direction


class AutoSchema(SpectacularAutoSchema):
    def get_serializer_name(self, serializer: Any, direction: Direction) -> str:
        # `MeApi.OutputSerializer` becomes component `MeOutput`: nested Input/Output serializers of different
        # views would otherwise all be called "Input"/"Output" and collide.
        qualname = type(serializer).__qualname__
        if "." in qualname:
            outer, inner = qualname.rsplit(".", 1)
            return outer.split(".")[-1].removesuffix("Api") + inner
        name: str = super().get_serializer_name(serializer, direction)
        return name


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every refusal (mrmarket/api/errors.py): a stable code, a message, details, the request id.",
    "required": ["code", "message", "extra", "request_id"],
    "properties": {
        "code": {"type": "string", "description": "snake_case, stable: `invalid`, `not_found`, `permission_denied`, …"},
        "message": {"type": "string"},
        "extra": {"type": "object", "additionalProperties": {}, "description": "`fields` for validation errors"},
        "request_id": {"type": "string", "nullable": True},
    },
}


def document_errors(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Postprocessing hook: every operation answers its refusals (4XX) and typed unavailability (5XX, e.g. 503
    `chain_unavailable`) with the one error shape, so clients and the schema fuzz (tests/fuzz) can rely on it."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    for methods in result.get("paths", {}).values():
        for operation in methods.values():
            responses = operation.setdefault("responses", {})
            responses.setdefault("4XX", {"description": "Refused: the error shape.", **error})
            responses.setdefault(
                "5XX", {"description": "A dependency does not answer (503): the error shape.", **error}
            )
    return result
