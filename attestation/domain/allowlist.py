"""Matching a TD's measurements against the allowlist. Pure.

An entry names the MRTD (the TD's initial memory: the firmware) and RTMR0..3 (the runtime registers the boot
chain extends). The MRTD alone says which firmware booted, not what ran on it: every workload on the same
firmware image has the same MRTD. So an entry must pin the registers that measure the executor's image and
configuration — `REQUIRED_RTMRS` by default, RTMR1 (kernel / UKI), RTMR2 (command line and initrd, which carry
the root-filesystem hash) and RTMR3 (what the runtime measures: the workload) — and only a register outside
that set may be left empty ("any value"). A rule missing a required register (an entry stored before the rule
existed) matches nothing. The layout and reasoning: docs/attestation.md.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

MEASUREMENT_RE = re.compile(r"[0-9a-f]{96}")
REQUIRED_RTMRS: frozenset[int] = frozenset({1, 2, 3})


class MeasurementFormatError(ValueError):
    pass


class MeasurementUnpinnedError(ValueError):
    """An entry leaves a register empty that must be pinned; `registers` names them."""

    def __init__(self, registers: list[int]) -> None:
        names = ", ".join(f"rtmr{i}" for i in registers)
        super().__init__(f"an entry must pin {names}: the MRTD measures only the firmware, not the executor's image")
        self.registers = registers


def normalize(value: str, field: str, *, optional: bool = False) -> str:
    value = value.strip().lower().removeprefix("0x")
    if optional and not value:
        return ""
    if not MEASUREMENT_RE.fullmatch(value):
        raise MeasurementFormatError(f"{field} must be 48 bytes of hex (96 characters)")
    return value


def unpinned(rtmrs: tuple[str, str, str, str], required: Collection[int] = REQUIRED_RTMRS) -> list[int]:
    """The required registers an entry leaves empty."""
    return [i for i in sorted(required) if not rtmrs[i]]


def require_pinned(rtmrs: tuple[str, str, str, str], required: Collection[int] = REQUIRED_RTMRS) -> None:
    missing = unpinned(rtmrs, required)
    if missing:
        raise MeasurementUnpinnedError(missing)


@dataclass(frozen=True)
class Measurements:
    mrtd: str
    rtmrs: tuple[str, str, str, str]


@dataclass(frozen=True)
class Rule:
    id: int
    service: str
    mrtd: str
    rtmrs: tuple[str, str, str, str]  # "" = any, only where the register is not required

    def matches(self, service: str, measured: Measurements, required: Collection[int] = REQUIRED_RTMRS) -> bool:
        if service != self.service or measured.mrtd != self.mrtd or unpinned(self.rtmrs, required):
            return False
        return all(not want or want == got for want, got in zip(self.rtmrs, measured.rtmrs, strict=True))

    def mismatched(self, measured: Measurements) -> list[int]:
        """The registers this rule names that `measured` does not show."""
        return [i for i, (want, got) in enumerate(zip(self.rtmrs, measured.rtmrs, strict=True)) if want and want != got]


def first_match(
    rules: Iterable[Rule], service: str, measured: Measurements, required: Collection[int] = REQUIRED_RTMRS
) -> Rule | None:
    return next((rule for rule in rules if rule.matches(service, measured, required)), None)
