"""The executor's identity: keys generated in memory at boot, never written anywhere, gone with the process.

The Ed25519 key signs reports; the X25519 key opens credentials sealed to it. Both public keys are bound into
the TDX quote's REPORTDATA (`wire.attestation.report_data`), so a verifier that accepted the quote knows that
only this TD — this build, in this boot — holds them.
"""

from __future__ import annotations

from dataclasses import dataclass

from wire.keys import SealingKey, SigningKey


@dataclass(frozen=True)
class Identity:
    signing: SigningKey
    sealing: SealingKey

    @classmethod
    def generate(cls) -> Identity:
        return cls(SigningKey.generate(), SealingKey.generate())

    def public(self) -> dict[str, str]:
        return {"signing_key": self.signing.public_hex, "sealing_key": self.sealing.public_hex}
