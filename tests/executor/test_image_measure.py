"""The RTMR3 a TD running an executor image must show: the event encoding and the extend, bit for bit, computed here
independently of the module from the documented formula, plus every refusal."""

from __future__ import annotations

import hashlib
import struct

import pytest

from wire import measurement as measure

DIGEST = "sha256:" + "ab" * 32


def reference_rtmr3(payloads: list[tuple[str, bytes]]) -> str:
    register = bytes(48)
    for name, payload in payloads:
        event = hashlib.sha384(struct.pack("<I", 0x08000001) + b":" + name.encode() + b":" + payload).digest()
        register = hashlib.sha384(register + event).digest()
    return register.hex()


def test_expected_rtmr3_is_one_image_event_extended_into_a_zero_register() -> None:
    got = measure.expected_rtmr3(DIGEST)
    assert got == reference_rtmr3([("mrmarket.executor-image", DIGEST.encode())])
    assert len(got) == 96
    assert got == got.lower()
    # the event type as dstack writes it: 0x08000001 little-endian
    assert struct.pack("<I", measure.RUNTIME_EVENT_TYPE) == bytes([0x01, 0x00, 0x00, 0x08])


def test_a_known_vector_pins_the_format() -> None:
    # Written down once from the formula in docs/executor-image.md; a change of name, type or encoding breaks it.
    event = hashlib.sha384(b"\x01\x00\x00\x08:mrmarket.executor-image:" + DIGEST.encode()).digest()
    assert measure.image_event(DIGEST).digest() == event
    assert measure.expected_rtmr3(DIGEST) == hashlib.sha384(bytes(48) + event).hexdigest()


def test_another_image_is_another_register_and_order_matters() -> None:
    other = "sha256:" + "cd" * 32
    assert measure.expected_rtmr3(DIGEST) != measure.expected_rtmr3(other)
    a, b = measure.image_event(DIGEST), measure.image_event(other)
    assert measure.replay([a, b]) != measure.replay([b, a])
    assert measure.replay([a, b]).hex() == reference_rtmr3([(a.name, a.payload), (b.name, b.payload)])
    # a second extend of the same image (a runtime that re-measures on restart) is not the expected value
    assert measure.replay([a, a]).hex() != measure.expected_rtmr3(DIGEST)


def test_replay_of_nothing_is_the_initial_register() -> None:
    assert measure.replay([]) == bytes(48)


@pytest.mark.parametrize(
    "bad",
    [
        "ab" * 32,  # no algorithm
        "sha256:" + "AB" * 32,  # upper case: the digest has one spelling
        "sha256:" + "ab" * 31,  # short
        "sha512:" + "ab" * 32,
        " sha256:" + "ab" * 32,
        "sha256:" + "ab" * 32 + "\n",
        "",
    ],
)
def test_a_malformed_image_digest_is_refused(bad: str) -> None:
    with pytest.raises(measure.InvalidImageDigest) as caught:
        measure.expected_rtmr3(bad)
    assert caught.value.code == "invalid_image_digest"


def test_extend_refuses_wrong_sizes_and_names_with_a_separator() -> None:
    with pytest.raises(measure.InvalidRegister):
        measure.extend(bytes(47), bytes(48))
    with pytest.raises(measure.InvalidRegister):
        measure.replay([measure.image_event(DIGEST)], initial=bytes(32))
    with pytest.raises(measure.MeasurementError):
        measure.RuntimeEvent(name="a:b", payload=b"x").digest()
