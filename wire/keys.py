"""Executor identity keys: Ed25519 for report signatures, X25519 for sealed credentials (PyNaCl / libsodium).

Public keys travel as lower-case hex of their 32 raw bytes. Signatures are over a domain-separated message
(`tag || 0x00 || payload`) so that a report signature can never be replayed as any other kind of signature.
"""

from __future__ import annotations

from dataclasses import dataclass

import nacl.exceptions
import nacl.public
import nacl.signing

from wire.errors import SealError, SignatureError

REPORT_SIGNATURE_TAG = b"mrmarket.report.v1"


def _domain(tag: bytes, payload: bytes) -> bytes:
    return tag + b"\x00" + payload


def _key_bytes(hex_key: str, what: str) -> bytes:
    try:
        raw = bytes.fromhex(hex_key)
    except ValueError:
        raise SignatureError(f"{what} is not hex") from None
    if len(raw) != 32:
        raise SignatureError(f"{what} must be 32 bytes, got {len(raw)}")
    return raw


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key; lives only in the executor's memory."""

    _key: nacl.signing.SigningKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(nacl.signing.SigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """Deterministic key for tests and fixtures only."""
        return cls(nacl.signing.SigningKey(seed))

    @property
    def public_hex(self) -> str:
        return bytes(self._key.verify_key).hex()

    def sign(self, payload: bytes, *, tag: bytes = REPORT_SIGNATURE_TAG) -> str:
        return self._key.sign(_domain(tag, payload)).signature.hex()

    def __repr__(self) -> str:  # never print key material
        return f"SigningKey(public={self.public_hex})"


def verify_signature(public_hex: str, payload: bytes, signature_hex: str, *, tag: bytes = REPORT_SIGNATURE_TAG) -> None:
    key = nacl.signing.VerifyKey(_key_bytes(public_hex, "signing key"))
    try:
        signature = bytes.fromhex(signature_hex)
    except ValueError:
        raise SignatureError("signature is not hex") from None
    if len(signature) != 64:
        raise SignatureError(f"signature must be 64 bytes, got {len(signature)}")
    try:
        key.verify(_domain(tag, payload), signature)
    except nacl.exceptions.BadSignatureError:
        raise SignatureError("signature does not verify under the executor's signing key") from None


@dataclass(frozen=True)
class SealingKey:
    """An X25519 private key; credentials sealed to its public half open only in the executor's memory."""

    _key: nacl.public.PrivateKey

    @classmethod
    def generate(cls) -> SealingKey:
        return cls(nacl.public.PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SealingKey:
        """Deterministic key for tests and fixtures only."""
        return cls(nacl.public.PrivateKey.from_seed(seed))

    @property
    def public_hex(self) -> str:
        return bytes(self._key.public_key).hex()

    def open(self, sealed: bytes) -> bytes:
        try:
            opened: bytes = nacl.public.SealedBox(self._key).decrypt(sealed)
        except nacl.exceptions.CryptoError:
            raise SealError("sealed box does not open with this executor's key") from None
        return opened

    def __repr__(self) -> str:
        return f"SealingKey(public={self.public_hex})"


def seal(public_hex: str, plaintext: bytes) -> bytes:
    """libsodium sealed box (ephemeral X25519 + XSalsa20-Poly1305) to the executor's attested sealing key."""
    try:
        raw = bytes.fromhex(public_hex)
    except ValueError:
        raise SealError("sealing key is not hex") from None
    if len(raw) != 32:
        raise SealError(f"sealing key must be 32 bytes, got {len(raw)}")
    sealed: bytes = nacl.public.SealedBox(nacl.public.PublicKey(raw)).encrypt(plaintext)
    return sealed
