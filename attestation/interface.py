"""The trust gate's contract with the apps above it: what an executor client must offer the gate
(`AttestingExecutor`, and `CheckedExecutor` for the scheduled re-attestation) and what the gate hands back
(`ExecutorIdentity`). Its refusals are `attestation.errors.ProvisioningRefused` and `gate.AttestationFailed`.

Errors of a client's `attestation(nonce)`: `attestation.errors.EvidenceRefused` when the executor answers but
declines to attest (the gate counts it as a failed check); any other error is the executor's silence, which the
gate lets through to its caller and which says nothing against the executor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class ExecutorIdentity:
    """The keys credentials are sealed to and reports must be signed with, and how they were established."""

    url: str
    signing_key: str
    sealing_key: str
    attested: bool
    evidence_id: int | None = None


class AttestingExecutor(Protocol):
    """An executor as the gate sees it: where it is, and its evidence for one of our nonces."""

    @property
    def base_url(self) -> str: ...

    def attestation(self, nonce: str) -> dict[str, Any]: ...


class CheckedExecutor(AttestingExecutor, Protocol):
    """An executor as a scheduled check sees it: its evidence, its announced identity and its free capacity."""

    def health(self) -> dict[str, Any]: ...

    def capacity(self) -> dict[str, Any]: ...
