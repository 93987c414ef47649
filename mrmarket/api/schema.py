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
