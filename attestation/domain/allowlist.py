"""Matching a TD's measurements against the allowlist. Pure.

An entry names the MRTD (the TD's initial memory: firmware and the build) and, optionally, RTMR0..3 (boot
chain and runtime measurements); an RTMR left empty in the entry matches any value. A TD is allowed when an
active entry for its service matches every measurement the entry names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

MEASUREMENT_RE = re.compile(r"[0-9a-f]{96}")


class MeasurementFormatError(ValueError):
    pass


def normalize(value: str, field: str, *, optional: bool = False) -> str:
    value = value.strip().lower().removeprefix("0x")
    if optional and not value:
        return ""
    if not MEASUREMENT_RE.fullmatch(value):
        raise MeasurementFormatError(f"{field} must be 48 bytes of hex (96 characters)")
    return value


@dataclass(frozen=True)
class Measurements:
    mrtd: str
    rtmrs: tuple[str, str, str, str]


@dataclass(frozen=True)
class Rule:
    id: int
    service: str
    mrtd: str
    rtmrs: tuple[str, str, str, str]  # "" = any

    def matches(self, service: str, measured: Measurements) -> bool:
        if service != self.service or measured.mrtd != self.mrtd:
            return False
        return all(not want or want == got for want, got in zip(self.rtmrs, measured.rtmrs, strict=True))


def first_match(rules: Iterable[Rule], service: str, measured: Measurements) -> Rule | None:
    return next((rule for rule in rules if rule.matches(service, measured)), None)
