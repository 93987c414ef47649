"""Canonical JSON (RFC 8785, the JSON Canonicalization Scheme) and SHA-256 digests.

Rules on top of RFC 8785, so that every party gets the same bytes from the same facts:
- no floats anywhere: amounts and prices are decimal strings as the exchange reports them, times are
  integer milliseconds; a float is refused, not rounded;
- integers must fit in the I-JSON range (|n| < 2^53), as RFC 8785 requires;
- object keys are strings; tuples are arrays.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import rfc8785

from wire.errors import CanonicalFormError

_MAX_SAFE_INT = 2**53 - 1
# JSON from the other side nests at most this deep. A bound of our own, not the interpreter's recursion limit:
# py_ecc (imported with web3) raises that limit to 100 000, so a document nested deeper than the C stack holds
# (100 kB of `[`) would crash the process in `json.loads` instead of raising RecursionError.
MAX_DEPTH = 128
# A string, escapes included; one left open runs to the end of the text, so that no match ever fails (and the
# scan stays linear whatever the quotes and backslashes).
_STRING = re.compile(r'"[^"\\]*(?:\\(?:.|\Z)[^"\\]*)*(?:"|\Z)', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")


def _check(value: Any, path: str) -> None:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if abs(value) > _MAX_SAFE_INT:
            raise CanonicalFormError("integer outside the I-JSON range; encode it as a decimal string", path=path)
        return
    if isinstance(value, float):
        raise CanonicalFormError("floats are not allowed; use a decimal string", path=path)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalFormError("object keys must be strings", path=path)
            _check(item, f"{path}.{key}" if path else key)
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]")
        return
    raise CanonicalFormError(f"{type(value).__name__} is not a JSON value", path=path)


def _valid(value: Any, depth: int = 0) -> bool:
    """`_check` without the error paths (the common case, kept cheap); `_check` says where a value went wrong. False
    too past MAX_DEPTH levels: the standard library's C encoder is then not used (its recursion is on the C stack)."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT
    if depth >= MAX_DEPTH:
        return False
    if kind is dict:
        return all(type(k) is str for k in value) and all(_valid(v, depth + 1) for v in value.values())
    if kind is list or kind is tuple:
        return all(_valid(v, depth + 1) for v in value)
    return False


def canonical_bytes(value: Any) -> bytes:
    if not _valid(value):
        _check(value, "")  # raises, with the path (or accepts a deep value, or a subclass of a JSON type)
        return _rfc8785(value)
    # Within the rules above (strings, safe integers, booleans, null, arrays, objects with string keys), the
    # standard library's sorted, compact, non-ASCII-escaping output IS the RFC 8785 form when it is all ASCII:
    # integers print as RFC 8785 prints them, strings escape the same characters the same way, and ASCII keys sort
    # by code point as by UTF-16 unit. Anything else (non-ASCII text, whose keys may sort differently) goes through
    # the RFC 8785 library. tests/wire/test_canonical.py holds the two to the same bytes.
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    if text.isascii():
        return text.encode("ascii")
    return _rfc8785(value)


def _rfc8785(value: Any) -> bytes:
    try:
        encoded: bytes = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:
        raise CanonicalFormError(str(exc)) from None
    return encoded


def digest(value: Any) -> str:
    """Lower-case hex SHA-256 of the canonical form."""
    return hashlib.sha256(canonical_bytes(value)).hexdigest()


def check_depth(text: str, *, limit: int = MAX_DEPTH) -> None:
    """Refuse (CanonicalFormError) JSON text whose arrays and objects nest deeper than `limit`, before any parser
    recurses into it. Linear in the text; the common case (few brackets) is two `count` calls."""
    if text.count("[") + text.count("{") <= limit:
        return
    depth = 0
    for char in _NOT_BRACKETS.sub("", _STRING.sub("", text)):
        if char in "[{":
            depth += 1
            if depth > limit:
                raise CanonicalFormError(f"nested deeper than {limit} levels")
        else:
            depth -= 1


def parse(data: bytes | str) -> Any:
    """Parse JSON received from the other side, refusing floats (NaN and Infinity too), duplicate keys (both
    ambiguous), bytes that are not UTF-8 and nesting deeper than the interpreter recurses: every refusal is a
    CanonicalFormError, whatever the bytes."""

    def no_float(text: str) -> Any:
        raise CanonicalFormError(f"float literal {text} is not allowed; use a decimal string")

    def no_constant(text: str) -> Any:
        raise CanonicalFormError(f"{text} is not JSON (and floats are not allowed)")

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise CanonicalFormError(f"duplicate key {key!r}")
            result[key] = value
        return result

    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CanonicalFormError(f"not UTF-8 at byte {exc.start}") from None
    check_depth(data)
    try:
        return json.loads(data, parse_float=no_float, parse_constant=no_constant, object_pairs_hook=no_duplicates)
    except CanonicalFormError:
        raise
    except json.JSONDecodeError as exc:
        raise CanonicalFormError(f"not JSON: {exc.msg} at {exc.pos}") from None
    except ValueError as exc:  # an integer literal longer than int() converts (sys.get_int_max_str_digits)
        raise CanonicalFormError(f"not JSON we read: {str(exc)[:80]}") from None
