"""Envelope encryption of exchange credentials at rest (AES-256-GCM). Pure: no Django, no I/O.

Each secret gets its own random 256-bit data key (DEK). The DEK encrypts the secret; a master key, from the
environment and named by a key id, encrypts (wraps) the DEK. The row stores the key id, the wrapped DEK and
the ciphertext — never a plaintext or an unwrapped key. `context` (e.g. b"exchange_account:42") is bound as
associated data into both layers, so a ciphertext copied to another row does not decrypt there.

Rotation: `rewrap` re-encrypts one row under the new master key (with a fresh DEK, since the key id is bound
as associated data); rows not yet re-wrapped keep decrypting under the old key while rotation runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
_WRAP_TAG = b"mrmarket.dek.v1"
_DATA_TAG = b"mrmarket.secret.v1"


class EnvelopeError(Exception):
    pass


class UnknownKeyId(EnvelopeError):
    pass


class DecryptionFailed(EnvelopeError):
    pass


@dataclass(frozen=True)
class Sealed:
    key_id: str
    wrapped_key: bytes  # nonce || AES-GCM(master, DEK)
    ciphertext: bytes  # nonce || AES-GCM(DEK, secret)

    def __repr__(self) -> str:
        return f"Sealed(key_id={self.key_id!r}, {len(self.ciphertext)} bytes)"


def _aad(tag: bytes, key_id: str, context: bytes) -> bytes:
    return b"|".join((tag, key_id.encode(), context))


def _check_master(key: bytes) -> None:
    if len(key) != 32:
        raise EnvelopeError("a master key is 32 bytes")


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _open(key: bytes, blob: bytes, aad: bytes, what: str) -> bytes:
    try:
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except (InvalidTag, ValueError):
        raise DecryptionFailed(f"{what} does not authenticate (wrong key, other row, or altered)") from None


def encrypt(plaintext: bytes, *, master_key: bytes, key_id: str, context: bytes) -> Sealed:
    _check_master(master_key)
    dek = AESGCM.generate_key(bit_length=256)
    return Sealed(
        key_id=key_id,
        wrapped_key=_seal(master_key, dek, _aad(_WRAP_TAG, key_id, context)),
        ciphertext=_seal(dek, plaintext, _aad(_DATA_TAG, key_id, context)),
    )


def _unwrap(sealed: Sealed, master_keys: Mapping[str, bytes], context: bytes) -> bytes:
    master = master_keys.get(sealed.key_id)
    if master is None:
        raise UnknownKeyId(f"no master key with id {sealed.key_id!r} is configured")
    _check_master(master)
    return _open(master, sealed.wrapped_key, _aad(_WRAP_TAG, sealed.key_id, context), "the wrapped data key")


def decrypt(sealed: Sealed, *, master_keys: Mapping[str, bytes], context: bytes) -> bytes:
    dek = _unwrap(sealed, master_keys, context)
    return _open(dek, sealed.ciphertext, _aad(_DATA_TAG, sealed.key_id, context), "the secret")


def rewrap(sealed: Sealed, *, master_keys: Mapping[str, bytes], new_key_id: str, context: bytes) -> Sealed:
    """The same secret under master key `new_key_id`. The key id is part of the associated data of both layers,
    so a row's key id cannot be swapped without detection; hence a fresh DEK and ciphertext."""
    new_master = master_keys.get(new_key_id)
    if new_master is None:
        raise UnknownKeyId(f"no master key with id {new_key_id!r} is configured")
    if sealed.key_id == new_key_id:
        return sealed
    dek = _unwrap(sealed, master_keys, context)
    plaintext = _open(dek, sealed.ciphertext, _aad(_DATA_TAG, sealed.key_id, context), "the secret")
    new_dek = AESGCM.generate_key(bit_length=256)
    return Sealed(
        key_id=new_key_id,
        wrapped_key=_seal(new_master, new_dek, _aad(_WRAP_TAG, new_key_id, context)),
        ciphertext=_seal(new_dek, plaintext, _aad(_DATA_TAG, new_key_id, context)),
    )
