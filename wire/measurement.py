"""The RTMR3 an executor's TD must show for a given executor image: the measurement the allowlist pins.

RTMR3 is zero when a TD starts: TDVF and the kernel extend RTMR0–2 only; RTMR3 is left to the runtime inside the
TD. The runtime measures the workload it is about to start by extending RTMR3 with one event, so a verifier
replays the event log it expects and compares the result with the quote:

    RTMR_new = SHA-384(RTMR_old ‖ event digest)                      (the TDX module's TDG.MR.RTMR.EXTEND)
    event digest = SHA-384(u32-le(event type) ‖ ":" ‖ name ‖ ":" ‖ payload)

The event digest is dstack's runtime-event encoding (event type 0x08000001, which the TCG PC client profile does
not assign), so tools that replay dstack's RTMR3 log replay ours. The executor image is one event: name
`IMAGE_EVENT`, payload the image's manifest digest as text (`sha256:` and 64 lowercase hex digits, the form
`docker pull name@sha256:…` takes). Nothing else may be extended into RTMR3: a second workload, or the same one
extended twice, gives another value and the gate refuses the executor (fail closed). docs/executor-image.md says
what the runtime must do; the runtime configuration is not here because the executor binds it into REPORTDATA
(ADR 0012).
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass

REGISTER_BYTES = 48  # SHA-384
RUNTIME_EVENT_TYPE = 0x08000001  # dstack's runtime event type; not a TCG-assigned value, so no boot event has it
IMAGE_EVENT = "mrmarket.executor-image"
IMAGE_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
INITIAL_RTMR = bytes(REGISTER_BYTES)


class MeasurementError(ValueError):
    """An input the measurement refuses; `code` names the refusal."""

    code = "measurement"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidImageDigest(MeasurementError):
    code = "invalid_image_digest"


class InvalidRegister(MeasurementError):
    code = "invalid_register"


@dataclass(frozen=True)
class RuntimeEvent:
    """One entry of the RTMR3 event log: what was measured (`name`) and the bytes measured (`payload`)."""

    name: str
    payload: bytes
    event_type: int = RUNTIME_EVENT_TYPE

    def digest(self) -> bytes:
        if ":" in self.name:
            raise MeasurementError("an event name must not contain ':' (it separates the name from the payload)")
        tag = struct.pack("<I", self.event_type)
        return hashlib.sha384(tag + b":" + self.name.encode("ascii") + b":" + self.payload).digest()


def extend(register: bytes, digest: bytes) -> bytes:
    """One RTMR extend: the new value is SHA-384 of the old value followed by the 48-byte digest."""
    if len(register) != REGISTER_BYTES or len(digest) != REGISTER_BYTES:
        raise InvalidRegister(f"an RTMR and an extend digest are {REGISTER_BYTES} bytes each")
    return hashlib.sha384(register + digest).digest()


def replay(events: Iterable[RuntimeEvent], initial: bytes = INITIAL_RTMR) -> bytes:
    """The register after extending `initial` with each event's digest, in order."""
    register = initial
    for event in events:
        register = extend(register, event.digest())
    return register


def image_event(image_digest: str) -> RuntimeEvent:
    """The event the runtime extends for the executor image named by its manifest digest."""
    if not isinstance(image_digest, str) or not IMAGE_DIGEST.fullmatch(image_digest):
        raise InvalidImageDigest("an image digest is 'sha256:' followed by 64 lowercase hex digits")
    return RuntimeEvent(name=IMAGE_EVENT, payload=image_digest.encode("ascii"))


def expected_rtmr3(image_digest: str) -> str:
    """RTMR3 (96 lowercase hex digits, as the allowlist stores it) of a TD whose runtime started this image."""
    return replay([image_event(image_digest)]).hex()
