from __future__ import annotations

import hashlib

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from wire.canonical import MAX_DEPTH, canonical_bytes, check_depth, digest, parse
from wire.errors import CanonicalFormError


def test_rfc8785_ordering_and_escaping() -> None:
    # Keys sorted by UTF-16 code units, no whitespace, minimal escapes (RFC 8785 §3.2).
    value = {"b": [1, True, None], "a": "x\u2028y", "€": "é", "\r": "\n"}
    assert canonical_bytes(value) == b'{"\\r":"\\n","a":"x\xe2\x80\xa8y","b":[1,true,null],"\xe2\x82\xac":"\xc3\xa9"}'


def test_digest_is_sha256_of_canonical_bytes() -> None:
    value = {"z": 1, "a": [2, 3]}
    assert digest(value) == hashlib.sha256(b'{"a":[2,3],"z":1}').hexdigest()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"price": 1.5}, "price: floats are not allowed"),
        ({"n": 2**53}, "n: integer outside the I-JSON range"),
        ({"a": [{"b": b"x"}]}, r"a\[0\].b: bytes is not a JSON value"),
        ({1: "x"}, "object keys must be strings"),
    ],
)
def test_values_without_one_meaning_are_refused(value: object, message: str) -> None:
    with pytest.raises(CanonicalFormError, match=message):
        canonical_bytes(value)


def test_parse_refuses_floats_and_duplicate_keys() -> None:
    with pytest.raises(CanonicalFormError, match=r"float literal 1\.0"):
        parse(b'{"a": 1.0}')
    with pytest.raises(CanonicalFormError, match="duplicate key 'a'"):
        parse(b'{"a": 1, "a": 2}')
    with pytest.raises(CanonicalFormError, match="not JSON"):
        parse(b"{")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)


@given(json_values)
def test_canonical_form_round_trips(value: object) -> None:
    encoded = canonical_bytes(value)
    assert parse(encoded) == value
    assert canonical_bytes(parse(encoded)) == encoded


@given(st.dictionaries(st.text(max_size=6), st.integers(0, 100), max_size=8), st.randoms())
def test_key_order_does_not_change_the_digest(value: dict, rnd) -> None:
    items = list(value.items())
    rnd.shuffle(items)
    assert digest(dict(items)) == digest(value)


ascii_heavy_text = st.text(st.characters(max_codepoint=0x7F)) | st.text()
ascii_heavy_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | ascii_heavy_text,
    lambda children: (
        st.lists(children, max_size=5)
        | st.tuples(children, children)
        | st.dictionaries(ascii_heavy_text, children, max_size=5)
    ),
    max_leaves=30,
)


@given(ascii_heavy_values)
def test_the_fast_path_gives_the_rfc8785_bytes(value: object) -> None:
    # canonical_bytes takes the standard library's encoder for all-ASCII output: the same bytes as RFC 8785's own
    # implementation, control characters, quotes, backslashes and key order included.
    assert canonical_bytes(value) == rfc8785.dumps(value)  # type: ignore[arg-type]


def test_control_characters_escape_as_rfc8785_says() -> None:
    value = {"k\x00": '\x01\x08\x09\x0a\x0b\x0c\x0d\x1f\x7f"\\/'}
    assert canonical_bytes(value) == rfc8785.dumps(value)
    assert canonical_bytes(value) == b'{"k\\u0000":"\\u0001\\b\\t\\n\\u000b\\f\\r\\u001f\x7f\\"\\\\/"}'


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff", "not UTF-8 at byte 0"),  # was UnicodeDecodeError
        (b'{"a": "\xc3"}', "not UTF-8 at byte 7"),
        (b"[" * 100_000, "nested deeper than 128 levels"),  # crashed the process (py_ecc lifts the recursion limit)
        (b"1" * 5_000, "Exceeds the limit"),  # was a bare ValueError (int() digit limit)
        (b"NaN", "NaN is not JSON"),  # were accepted as floats
        (b'{"a": Infinity}', "Infinity is not JSON"),
        (b"[-Infinity]", "-Infinity is not JSON"),
    ],
)
def test_parse_refuses_every_bad_input_with_its_own_error(data: bytes, message: str) -> None:
    """Found by tests/fuzz/test_parsers.py: each of these escaped as another exception type, or parsed."""
    with pytest.raises(CanonicalFormError, match=message):
        parse(data)


def test_nesting_is_counted_outside_strings_only() -> None:
    deep = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    with pytest.raises(CanonicalFormError, match="nested deeper"):
        check_depth(deep)
    check_depth("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    assert parse('["' + "[{" * 500 + '"]') == ["[{" * 500]
    assert parse('["\\"' + "[" * 500 + '"]') == ['"' + "[" * 500]
    with pytest.raises(CanonicalFormError, match="nested deeper"):
        parse('["a\\\\"' + "[" * 500)  # the string closes after the escaped backslash
