"""A JSON serializer for the Redis cache: whoever can write to Redis must not be able to run code in the web
process, which unpickling a cache entry would allow.

Plain JSON, plus tagged forms for the few non-JSON values the code caches: tuples, and frozen dataclasses
whose class is named in CACHE_JSON_TYPES (an allowlist; any other tag is refused, never imported).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

_TUPLE = "__tuple__"
_TYPE = "__type__"


class CacheSerializationError(TypeError):
    """A value the cache cannot store or an entry it will not load."""


def _dotted(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _allowed_types() -> frozenset[str]:
    return frozenset(getattr(settings, "CACHE_JSON_TYPES", ()))


def _encode(value: Any) -> Any:
    if isinstance(value, tuple):
        return {_TUPLE: [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        if any(not isinstance(k, str) for k in value):
            raise CacheSerializationError("cache dicts need string keys")
        return {k: _encode(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = _dotted(type(value))
        if name not in _allowed_types():
            raise CacheSerializationError(f"{name} is not in CACHE_JSON_TYPES")
        fields = {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {_TYPE: name, "fields": fields}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise CacheSerializationError(f"the cache stores JSON values only, not {type(value).__name__}")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {_TUPLE}:
            return tuple(_decode(v) for v in value[_TUPLE])
        if _TYPE in value:
            name = value[_TYPE]
            if name not in _allowed_types():
                raise CacheSerializationError(f"cache entry of type {name!r}, which is not in CACHE_JSON_TYPES")
            return import_string(name)(**{k: _decode(v) for k, v in value["fields"].items()})
        return {k: _decode(v) for k, v in value.items()}
    return value


def dumps(value: Any) -> bytes:
    return json.dumps(_encode(value), separators=(",", ":"), allow_nan=False).encode()


def loads(data: bytes) -> Any:
    return _decode(json.loads(data))


class JSONSerializer:
    """Django's RedisCache serializer interface. Integers stay raw so that incr() and decr() work in Redis."""

    def __init__(self, protocol: object = None) -> None:
        del protocol  # the pickle protocol argument Django passes; JSON has none

    def dumps(self, obj: Any) -> bytes | int:
        if type(obj) is int:
            return obj
        return dumps(obj)

    def loads(self, data: bytes | int) -> Any:
        try:
            return int(data)
        except ValueError:
            pass
        try:
            return loads(data)  # type: ignore[arg-type]
        except (ValueError, TypeError):
            # Not JSON, or JSON naming a type outside the allowlist or with fields it does not have (an entry
            # pickled by an older release, or planted): a miss, never unpickled and never an error.
            return None
