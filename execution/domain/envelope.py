"""Envelope encryption of exchange credentials at rest (AES-256-GCM). Pure: no Django, no I/O.

Each secret gets its own random 256-bit data key (DEK). The DEK encrypts the secret; the DEK itself is wrapped
for a master key from the environment, named by a key id. The row stores the scheme, the key id, the wrapped DEK
and the ciphertext — never a plaintext or an unwrapped key. `context` (e.g. b"exchange_account:42") is bound into
both layers, so a ciphertext copied to another row does not decrypt there.

Two wrapping schemes (ADR 0015):
- `x25519` (what `seal` writes): the DEK is wrapped in an X25519 sealed box to the master key's public half.
  Writing a row needs only the public key, so the public web process can enrol a key without holding anything
  that opens a stored row; only the processes holding the master key (worker, beat) can unwrap.
- `aes256gcm` (rows written before): the DEK is wrapped by AES-256-GCM under the master key itself. Still read;
  `rewrap` moves such rows to `x25519`.

Rotation: `rewrap` re-encrypts one row for the new master key (with a fresh DEK, since the key id is bound in);
rows not yet re-wrapped keep decrypting under the old key while rotation runs.

Provenance: a sealed box proves nothing about who wrote it (anyone holding the public key can seal), so each
`x25519` row is also signed with the Ed25519 credentials enrolment key, over `row_statement` (the envelope and
the row it belongs to: account id and uid, owner, exchange, role, key id, scheme). Openers check the signature
against the configured verification keys before unwrapping anything (`row_signer`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from wire.canonical import canonical_bytes
from wire.errors import SignatureError
from wire.keys import SigningKey, verify_signature

NONCE_BYTES = 12
SCHEME_SYMMETRIC = "aes256gcm"
SCHEME_SEALED_BOX = "x25519"
SCHEMES = (SCHEME_SYMMETRIC, SCHEME_SEALED_BOX)
_WRAP_TAG = b"mrmarket.dek.v1"
_DATA_TAG = b"mrmarket.secret.v1"
_BOX_WRAP_TAG = b"mrmarket.dek.x25519.v1"
_BOX_DATA_TAG = b"mrmarket.secret.x25519.v1"
_BINDING_BYTES = 32
# Domain separation: a credential-row signature can never pass as any other signature made with the same helpers.
ROW_SIGNATURE_TAG = b"mrmarket.credentials.row.v1"


class EnvelopeError(Exception):
    pass


class UnknownKeyId(EnvelopeError):
    pass


class DecryptionFailed(EnvelopeError):
    pass


class UnknownScheme(EnvelopeError):
    pass


@dataclass(frozen=True)
class Sealed:
    key_id: str
    wrapped_key: bytes  # x25519: SealedBox(public, DEK || binding); aes256gcm: nonce || AES-GCM(master, DEK)
    ciphertext: bytes  # nonce || AES-GCM(DEK, secret)
    scheme: str = SCHEME_SYMMETRIC

    def __repr__(self) -> str:
        return f"Sealed(scheme={self.scheme!r}, key_id={self.key_id!r}, {len(self.ciphertext)} bytes)"


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


def public_key_of(master_key: bytes) -> bytes:
    """The public half of a master key: all that is needed to write (`seal`) a row, nothing that opens one."""
    _check_master(master_key)
    return bytes(PrivateKey(master_key).public_key)


def _binding(key_id: str, context: bytes) -> bytes:
    # A sealed box has no associated data: the row it is for goes inside, checked on unwrap.
    return hashlib.sha256(_aad(_BOX_WRAP_TAG, key_id, context)).digest()


def seal(plaintext: bytes, *, public_key: bytes, key_id: str, context: bytes) -> Sealed:
    """Encrypt for the holder of the master key whose public half is `public_key` (scheme `x25519`)."""
    if len(public_key) != 32:
        raise EnvelopeError("a public key is 32 bytes")
    dek = AESGCM.generate_key(bit_length=256)
    return Sealed(
        key_id=key_id,
        wrapped_key=SealedBox(PublicKey(public_key)).encrypt(dek + _binding(key_id, context)),
        ciphertext=_seal(dek, plaintext, _aad(_BOX_DATA_TAG, key_id, context)),
        scheme=SCHEME_SEALED_BOX,
    )


def encrypt(plaintext: bytes, *, master_key: bytes, key_id: str, context: bytes) -> Sealed:
    """Encrypt under the master key itself (scheme `aes256gcm`, how rows were written before `seal`)."""
    _check_master(master_key)
    dek = AESGCM.generate_key(bit_length=256)
    return Sealed(
        key_id=key_id,
        wrapped_key=_seal(master_key, dek, _aad(_WRAP_TAG, key_id, context)),
        ciphertext=_seal(dek, plaintext, _aad(_DATA_TAG, key_id, context)),
    )


def _data_tag(scheme: str) -> bytes:
    if scheme == SCHEME_SEALED_BOX:
        return _BOX_DATA_TAG
    if scheme == SCHEME_SYMMETRIC:
        return _DATA_TAG
    raise UnknownScheme(f"no envelope scheme {scheme!r}")


def _unwrap(sealed: Sealed, master_keys: Mapping[str, bytes], context: bytes) -> bytes:
    _data_tag(sealed.scheme)
    master = master_keys.get(sealed.key_id)
    if master is None:
        raise UnknownKeyId(f"no master key with id {sealed.key_id!r} is configured")
    _check_master(master)
    if sealed.scheme == SCHEME_SYMMETRIC:
        return _open(master, sealed.wrapped_key, _aad(_WRAP_TAG, sealed.key_id, context), "the wrapped data key")
    try:
        opened = SealedBox(PrivateKey(master)).decrypt(sealed.wrapped_key)
    except (CryptoError, ValueError, TypeError):
        raise DecryptionFailed("the wrapped data key does not authenticate (wrong key or altered)") from None
    dek, binding = opened[:-_BINDING_BYTES], opened[-_BINDING_BYTES:]
    if len(dek) != 32 or not hmac.compare_digest(binding, _binding(sealed.key_id, context)):
        raise DecryptionFailed("the wrapped data key does not authenticate (it is another row's)")
    return dek


def decrypt(sealed: Sealed, *, master_keys: Mapping[str, bytes], context: bytes) -> bytes:
    dek = _unwrap(sealed, master_keys, context)
    return _open(dek, sealed.ciphertext, _aad(_data_tag(sealed.scheme), sealed.key_id, context), "the secret")


def rewrap(sealed: Sealed, *, master_keys: Mapping[str, bytes], new_key_id: str, context: bytes) -> Sealed:
    """The same secret sealed (scheme `x25519`) for master key `new_key_id`. The key id is bound into both
    layers, so a row's key id cannot be swapped without detection; hence a fresh DEK and ciphertext. A row of
    the older `aes256gcm` scheme is moved even when its key id is already the new one."""
    new_master = master_keys.get(new_key_id)
    if new_master is None:
        raise UnknownKeyId(f"no master key with id {new_key_id!r} is configured")
    if sealed.key_id == new_key_id and sealed.scheme == SCHEME_SEALED_BOX:
        return sealed
    plaintext = decrypt(sealed, master_keys=master_keys, context=context)
    return seal(plaintext, public_key=public_key_of(new_master), key_id=new_key_id, context=context)


@dataclass(frozen=True)
class RowBinding:
    """The facts of the row a sealed credential belongs to, signed with it: copying a signed envelope to another
    row, or moving a row to another owner, exchange or role, breaks the signature."""

    account_id: int
    account_uid: str
    owner_id: int
    exchange: str
    role: str


def row_statement(sealed: Sealed, binding: RowBinding) -> bytes:
    """The canonical bytes the enrolment key signs for one credential row."""
    return canonical_bytes(
        {
            "v": 1,
            "account_id": binding.account_id,
            "account_uid": binding.account_uid,
            "owner_id": binding.owner_id,
            "exchange": binding.exchange,
            "role": binding.role,
            "key_id": sealed.key_id,
            "scheme": sealed.scheme,
            "wrapped_key": hashlib.sha256(sealed.wrapped_key).hexdigest(),
            "ciphertext": hashlib.sha256(sealed.ciphertext).hexdigest(),
        }
    )


def sign_row(sealed: Sealed, binding: RowBinding, *, signing_key: SigningKey) -> str:
    """Hex Ed25519 signature vouching that the writer of this row held the enrolment key."""
    return signing_key.sign(row_statement(sealed, binding), tag=ROW_SIGNATURE_TAG)


def row_signer(sealed: Sealed, binding: RowBinding, signature: str, *, verify_keys: tuple[str, ...]) -> str | None:
    """The verification key (public hex) under which `signature` vouches for this row, or None when none does."""
    if not signature:
        return None
    statement = row_statement(sealed, binding)
    for public_hex in verify_keys:
        try:
            verify_signature(public_hex, statement, signature, tag=ROW_SIGNATURE_TAG)
        except SignatureError:
            continue
        return public_hex
    return None
