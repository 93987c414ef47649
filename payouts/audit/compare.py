"""The first place two parsed JSON documents differ, as a JSON path (`bundle.participants[0].depth`) and both values.

The walk follows the recomputed document's key order (the order its writer gives, the schema's), then the keys only
the other has, so the first difference named is the first a reader of the recomputed document would reach.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from payouts.audit.schemas import json_path

ABSENT = object()  # a key or item one side does not have
_SHOWN = 120  # characters of a value shown in a message


@dataclass(frozen=True)
class Difference:
    path: str
    recomputed: Any  # ABSENT when only the given document has it
    given: Any  # ABSENT when only the recomputed document has it

    def describe(self) -> str:
        return f"{self.path}: recomputed {_show(self.recomputed)}, given {_show(self.given)}"


def _show(value: Any) -> str:
    if value is ABSENT:
        return "(absent)"
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _same_kind(a: Any, b: Any) -> bool:
    # JSON has no separate boolean and integer (True == 1 in Python), nor int and float kinds we accept.
    return type(a) is type(b)


def first_difference(recomputed: Any, given: Any, *, root: str) -> Difference | None:
    """None when the documents are equal as JSON values; else the first differing path."""
    return _walk(recomputed, given, [], root)


def _walk(a: Any, b: Any, parts: list[str | int], root: str) -> Difference | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*a, *(k for k in b if k not in a)]:
            found = _walk(a.get(key, ABSENT), b.get(key, ABSENT), [*parts, key], root)
            if found is not None:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i in range(max(len(a), len(b))):
            found = _walk(a[i] if i < len(a) else ABSENT, b[i] if i < len(b) else ABSENT, [*parts, i], root)
            if found is not None:
                return found
        return None
    if a is ABSENT or b is ABSENT or not _same_kind(a, b) or a != b:
        return Difference(json_path(root, parts), a, b)
    return None
