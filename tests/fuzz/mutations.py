"""Hypothesis strategies that mutate a valid document or byte string a few edits at a time.

Random bytes rarely get past the first check of a parser; a valid document with one to three edits (a field
replaced by any JSON value, deleted, added, or nudged to a neighbour of its value) reaches every check behind it.
Shared by the fuzz tests of the parsers (test_parsers.py) and nothing else.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st

Path = tuple[str | int, ...]

# Values with a meaning somewhere in the contracts: empties, signs, hex of the lengths used, decimals written
# every way, the I-JSON edge, long strings, NUL and a lone surrogate.
EDGE_STRINGS = st.sampled_from(
    [
        "",
        " ",
        "0",
        "-0",
        "-1",
        "1e3",
        "0.0",
        "1.",
        ".5",
        "01",
        "NaN",
        "Infinity",
        "1/0",
        "0/0",
        "3/2",
        "9" * 80,
        "ab" * 16,
        "ab" * 32,
        "AB" * 32,
        "zz" * 32,
        "ab" * 48,
        "ab" * 64,
        "0x" + "ab" * 20,
        "x" * 5000,
        "\x00",
        "\ud800",
        "é",
        "MMT/USDT",
        "binance",
        "baseline",
    ]
)
EDGE_INTS = st.sampled_from([0, -1, 1, 2**31, 2**53 - 1, 2**53, -(2**53), 2**63, 2**64, 10**30])
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | EDGE_INTS
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | EDGE_STRINGS
)
JSON_VALUES = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def paths_of(doc: Any, prefix: Path = ()) -> Iterator[Path]:
    """Every path in `doc`, the root (empty path) included."""
    yield prefix
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from paths_of(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from paths_of(value, (*prefix, index))


def _get(doc: Any, path: Path) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def _nudge(draw: st.DrawFn, value: Any) -> Any:
    """A neighbour of `value`: what a careless or hostile writer of the same field would send."""
    if isinstance(value, bool):
        return draw(st.sampled_from([not value, int(value), str(value).lower(), None]))
    if isinstance(value, int):
        return draw(st.sampled_from([value + 1, value - 1, -value, value * 2**40, str(value), float(value)]))
    if isinstance(value, str):
        if not value:
            return draw(EDGE_STRINGS)
        at = draw(st.integers(0, len(value) - 1))
        return draw(
            st.sampled_from(
                [
                    value[:at],
                    value + value,
                    value[:at] + draw(st.characters()) + value[at + 1 :],
                    value.upper(),
                    " " + value,
                    value + "\x00",
                ]
            )
        )
    if isinstance(value, list):
        return [*value, *value] if value else [draw(JSON_VALUES)]
    if isinstance(value, dict):
        return {**value, draw(st.text(max_size=8)): draw(JSON_VALUES)}
    return draw(JSON_VALUES)


@st.composite
def mutated(draw: st.DrawFn, doc: Any, *, edits: int = 3) -> Any:
    """`doc` (deep-copied) after 1..`edits` edits, each at a path drawn from the document as it is then."""
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, edits))):
        path = draw(st.sampled_from(list(paths_of(doc))))
        action = draw(st.sampled_from(["replace", "nudge", "nudge", "delete", "add"]))
        if not path:
            if action == "replace":
                return draw(JSON_VALUES)
            target = doc
        else:
            parent, key = _get(doc, path[:-1]), path[-1]
            target = parent[key]
            if action == "replace":
                parent[key] = draw(JSON_VALUES)
                continue
            if action == "nudge":
                parent[key] = _nudge(draw, target)
                continue
            if action == "delete":
                del parent[key]
                continue
        if isinstance(target, dict):
            keys = st.text(max_size=8) | st.sampled_from(sorted(target)) if target else st.text(max_size=8)
            target[draw(keys)] = draw(JSON_VALUES)
        elif isinstance(target, list):
            target.insert(draw(st.integers(0, len(target))), draw(JSON_VALUES))
    return doc


@st.composite
def mutated_bytes(draw: st.DrawFn, raw: bytes, *, edits: int = 3) -> bytes:
    """`raw` after 1..`edits` byte-level edits: a flipped byte, a truncation, an overwrite, an insertion."""
    out = bytearray(raw)
    for _ in range(draw(st.integers(1, edits))):
        if not out:
            out += draw(st.binary(min_size=1, max_size=8))
            continue
        at = draw(st.integers(0, len(out) - 1))
        action = draw(st.sampled_from(["flip", "flip", "truncate", "overwrite", "insert", "delete"]))
        if action == "flip":
            out[at] ^= draw(st.integers(1, 255))
        elif action == "truncate":
            del out[at:]
        elif action == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            out[at : at + len(chunk)] = chunk
        elif action == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            del out[at : at + draw(st.integers(1, 16))]
    return bytes(out)
