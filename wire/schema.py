"""A small strict validator for the wire documents: exact keys, exact types, errors that name the path.

Kept in-house (not jsonschema) so that the executor image stays lean and the rules the verifier applies are
in one readable place; `docs/api/report-v1.md` describes the same rules for people.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from wire.errors import SchemaError, TooLarge

Check = Callable[[Any, str], None]

DECIMAL_RE = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?")
ID_RE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
# Longer than any amount an exchange writes (36 integer digits and 18 decimals fit with room to spare): a longer
# string is refused before it is parsed, so no report can make a verifier do arithmetic on huge numbers.
DECIMAL_MAX_LEN = 64
MAPPING_MAX_ITEMS = 64


def string(*, pattern: re.Pattern[str] | None = None, max_len: int = 256) -> Check:
    def check(value: Any, path: str) -> None:
        if not isinstance(value, str):
            raise SchemaError("must be a string", path=path)
        if len(value) > max_len:
            raise TooLarge(f"longer than {max_len} characters", path=path)
        if pattern is not None and not pattern.fullmatch(value):
            raise SchemaError(f"does not match {pattern.pattern}", path=path)

    return check


def integer(*, minimum: int | None = None) -> Check:
    def check(value: Any, path: str) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise SchemaError("must be an integer", path=path)
        if minimum is not None and value < minimum:
            raise SchemaError(f"must be ≥ {minimum}", path=path)

    return check


def decimal(*, positive: bool = False, non_negative: bool = False) -> Check:
    """A decimal string as exchanges write them: no exponent, no leading '+', no leading zeros."""

    def check(value: Any, path: str) -> None:
        if isinstance(value, str) and len(value) > DECIMAL_MAX_LEN:
            raise TooLarge(f"longer than {DECIMAL_MAX_LEN} characters", path=path)
        if not isinstance(value, str) or not DECIMAL_RE.fullmatch(value):
            raise SchemaError("must be a decimal string like '123.45'", path=path)
        try:
            number = Decimal(value)
        except InvalidOperation:  # pragma: no cover - the regex admits only valid decimals
            raise SchemaError("must be a decimal string", path=path) from None
        if positive and number <= 0:
            raise SchemaError("must be > 0", path=path)
        if non_negative and number < 0:
            raise SchemaError("must be ≥ 0", path=path)

    return check


def hex_string(n_bytes: int) -> Check:
    pattern = re.compile(f"[0-9a-f]{{{2 * n_bytes}}}")

    def check(value: Any, path: str) -> None:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise SchemaError(f"must be {n_bytes} bytes of lower-case hex", path=path)

    return check


def one_of(*choices: str) -> Check:
    def check(value: Any, path: str) -> None:
        if value not in choices:
            raise SchemaError(f"must be one of {', '.join(choices)}", path=path)

    return check


def nullable(inner: Check) -> Check:
    def check(value: Any, path: str) -> None:
        if value is not None:
            inner(value, path)

    return check


def array(item: Check, *, max_items: int) -> Check:
    def check(value: Any, path: str) -> None:
        if not isinstance(value, list):
            raise SchemaError("must be an array", path=path)
        if len(value) > max_items:
            raise TooLarge(f"more than {max_items} items", path=path)
        for index, element in enumerate(value):
            item(element, f"{path}[{index}]")

    return check


def mapping(key: Check, value: Check, *, max_items: int = MAPPING_MAX_ITEMS) -> Check:
    def check(obj: Any, path: str) -> None:
        if not isinstance(obj, dict):
            raise SchemaError("must be an object", path=path)
        if len(obj) > max_items:
            raise TooLarge(f"more than {max_items} entries", path=path)
        for k, v in obj.items():
            key(k, f"{path}.{k}")
            value(v, f"{path}.{k}")

    return check


def anything() -> Check:
    """Any JSON value (canonical form still applies: no floats); for values another layer checks."""

    def check(value: Any, path: str) -> None:
        return None

    return check


def obj(fields: Mapping[str, Check], *, optional: Mapping[str, Check] | None = None) -> Check:
    """An object with exactly these keys (every key of `fields` required; use nullable() for optional values).
    Keys in `optional` may be absent — a field added to a versioned schema after documents without it were signed."""
    extra = dict(optional or {})
    known = set(fields) | set(extra)

    def check(value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise SchemaError("must be an object", path=path)
        missing = sorted(set(fields) - set(value))
        unknown = sorted(set(value) - known)
        if missing:
            raise SchemaError(f"missing {', '.join(missing)}", path=path)
        if unknown:
            raise SchemaError(f"unknown {', '.join(unknown)}", path=path)
        for name, field_check in fields.items():
            field_check(value[name], f"{path}.{name}" if path else name)
        for name, field_check in extra.items():
            if name in value:
                field_check(value[name], f"{path}.{name}" if path else name)

    return check
