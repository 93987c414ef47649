"""Envelope encryption of credentials: per-row data keys, bound to the row, rotatable master keys."""

from __future__ import annotations

import os

import pytest

from execution.domain.envelope import (
    SCHEME_SEALED_BOX,
    SCHEME_SYMMETRIC,
    DecryptionFailed,
    EnvelopeError,
    RowBinding,
    Sealed,
    UnknownKeyId,
    UnknownScheme,
    decrypt,
    encrypt,
    public_key_of,
    rewrap,
    row_signer,
    row_statement,
    seal,
    sign_row,
)
from wire.keys import SigningKey

K1, K2 = os.urandom(32), os.urandom(32)
KEYS = {"k1": K1, "k2": K2}
SECRET = b'{"apiKey":"AK","secret":"S3CRET"}'
ROW = b"exchange_account:42"


def test_round_trip_and_nothing_readable_at_rest() -> None:
    sealed = encrypt(SECRET, master_key=K1, key_id="k1", context=ROW)
    assert b"S3CRET" not in sealed.ciphertext + sealed.wrapped_key
    assert decrypt(sealed, master_keys=KEYS, context=ROW) == SECRET
    assert "S3CRET" not in repr(sealed)


def test_each_encryption_uses_a_fresh_data_key() -> None:
    a = encrypt(SECRET, master_key=K1, key_id="k1", context=ROW)
    b = encrypt(SECRET, master_key=K1, key_id="k1", context=ROW)
    assert a.wrapped_key != b.wrapped_key
    assert a.ciphertext != b.ciphertext


def test_a_ciphertext_moved_to_another_row_does_not_decrypt() -> None:
    sealed = encrypt(SECRET, master_key=K1, key_id="k1", context=ROW)
    with pytest.raises(DecryptionFailed, match="wrapped data key does not authenticate"):
        decrypt(sealed, master_keys=KEYS, context=b"exchange_account:43")


def test_tampering_is_detected() -> None:
    sealed = encrypt(SECRET, master_key=K1, key_id="k1", context=ROW)
    flipped = bytearray(sealed.ciphertext)
    flipped[-1] ^= 1
    with pytest.raises(DecryptionFailed, match="the secret does not authenticate"):
        decrypt(Sealed("k1", sealed.wrapped_key, bytes(flipped)), master_keys=KEYS, context=ROW)
    with pytest.raises(DecryptionFailed):
        decrypt(Sealed("k2", sealed.wrapped_key, sealed.ciphertext), master_keys=KEYS, context=ROW)


def test_unknown_key_id_is_named() -> None:
    sealed = encrypt(SECRET, master_key=K1, key_id="k1", context=ROW)
    with pytest.raises(UnknownKeyId, match="'k1'"):
        decrypt(sealed, master_keys={"k2": K2}, context=ROW)


def test_rewrap_moves_a_row_to_the_new_master_key() -> None:
    sealed = encrypt(SECRET, master_key=K1, key_id="k1", context=ROW)
    moved = rewrap(sealed, master_keys=KEYS, new_key_id="k2", context=ROW)
    assert moved.key_id == "k2"
    assert decrypt(moved, master_keys={"k2": K2}, context=ROW) == SECRET
    assert rewrap(moved, master_keys=KEYS, new_key_id="k2", context=ROW) is moved  # idempotent
    with pytest.raises(UnknownKeyId):
        rewrap(sealed, master_keys=KEYS, new_key_id="k3", context=ROW)


def test_master_keys_must_be_32_bytes() -> None:
    with pytest.raises(EnvelopeError, match="32 bytes"):
        encrypt(SECRET, master_key=b"short", key_id="k1", context=ROW)


# -- sealed for the public half (what the web process writes, ADR 0015) ---------------------------------------


def test_a_row_sealed_with_the_public_key_alone_opens_with_the_master_key() -> None:
    sealed = seal(SECRET, public_key=public_key_of(K1), key_id="k1", context=ROW)
    assert sealed.scheme == SCHEME_SEALED_BOX
    assert b"S3CRET" not in sealed.ciphertext + sealed.wrapped_key
    assert decrypt(sealed, master_keys=KEYS, context=ROW) == SECRET
    # The public key opens nothing: it is not a master key of the ring.
    with pytest.raises(DecryptionFailed):
        decrypt(sealed, master_keys={"k1": public_key_of(K1)}, context=ROW)
    with pytest.raises(DecryptionFailed):
        decrypt(sealed, master_keys={"k1": K2}, context=ROW)
    with pytest.raises(UnknownKeyId, match="'k1'"):
        decrypt(sealed, master_keys={}, context=ROW)


def test_a_sealed_row_is_bound_to_its_row_and_key_id_and_tampering_is_detected() -> None:
    sealed = seal(SECRET, public_key=public_key_of(K1), key_id="k1", context=ROW)
    with pytest.raises(DecryptionFailed, match="another row's"):
        decrypt(sealed, master_keys=KEYS, context=b"exchange_account:43")
    relabelled = Sealed("k2", sealed.wrapped_key, sealed.ciphertext, scheme=SCHEME_SEALED_BOX)
    with pytest.raises(DecryptionFailed):
        decrypt(relabelled, master_keys={"k2": K1}, context=ROW)  # the key id is bound in: no swapping it
    flipped = bytearray(sealed.ciphertext)
    flipped[-1] ^= 1
    with pytest.raises(DecryptionFailed, match="the secret does not authenticate"):
        decrypt(Sealed("k1", sealed.wrapped_key, bytes(flipped), SCHEME_SEALED_BOX), master_keys=KEYS, context=ROW)
    # Read as the other scheme it does not open either (the scheme is part of what each layer is bound to).
    with pytest.raises(DecryptionFailed):
        decrypt(Sealed("k1", sealed.wrapped_key, sealed.ciphertext, SCHEME_SYMMETRIC), master_keys=KEYS, context=ROW)
    with pytest.raises(UnknownScheme):
        decrypt(Sealed("k1", sealed.wrapped_key, sealed.ciphertext, "rot13"), master_keys=KEYS, context=ROW)


def test_rewrap_moves_an_older_row_to_a_sealed_one_even_under_the_same_key_id() -> None:
    older = encrypt(SECRET, master_key=K1, key_id="k1", context=ROW)
    moved = rewrap(older, master_keys=KEYS, new_key_id="k1", context=ROW)
    assert (moved.scheme, moved.key_id) == (SCHEME_SEALED_BOX, "k1")
    assert decrypt(moved, master_keys={"k1": K1}, context=ROW) == SECRET
    assert rewrap(moved, master_keys=KEYS, new_key_id="k1", context=ROW) is moved
    rotated = rewrap(moved, master_keys=KEYS, new_key_id="k2", context=ROW)
    assert decrypt(rotated, master_keys={"k2": K2}, context=ROW) == SECRET


def test_public_keys_must_be_32_bytes() -> None:
    with pytest.raises(EnvelopeError, match="a public key is 32 bytes"):
        seal(SECRET, public_key=b"short", key_id="k1", context=ROW)


# --- row signatures (the enrolment key vouches for who wrote a row) ---------------------------------------

SIGNER = SigningKey.from_seed(b"test-only-credentials-row-key-32")
BINDING = RowBinding(account_id=42, account_uid="uid-42", owner_id=7, exchange="binance", role="treasury")


def test_a_row_signature_vouches_for_the_envelope_and_its_row_only() -> None:
    sealed = seal(SECRET, public_key=public_key_of(K1), key_id="k1", context=ROW)
    signature = sign_row(sealed, BINDING, signing_key=SIGNER)
    other_key = SigningKey.from_seed(b"another-key-that-nobody-trusts!!").public_hex
    assert row_signer(sealed, BINDING, signature, verify_keys=(other_key, SIGNER.public_hex)) == SIGNER.public_hex
    assert row_signer(sealed, BINDING, signature, verify_keys=(other_key,)) is None
    assert row_signer(sealed, BINDING, "", verify_keys=(SIGNER.public_hex,)) is None
    for field, value in [("account_id", 43), ("account_uid", "uid-43"), ("owner_id", 8), ("exchange", "okx")]:
        rebound = RowBinding(**{**BINDING.__dict__, field: value})
        assert row_signer(sealed, rebound, signature, verify_keys=(SIGNER.public_hex,)) is None
    resealed = seal(SECRET, public_key=public_key_of(K1), key_id="k1", context=ROW)  # same secret, other envelope
    assert row_signer(resealed, BINDING, signature, verify_keys=(SIGNER.public_hex,)) is None
    relabelled = Sealed(sealed.key_id, sealed.wrapped_key, sealed.ciphertext, scheme=SCHEME_SYMMETRIC)
    assert row_signer(relabelled, BINDING, signature, verify_keys=(SIGNER.public_hex,)) is None
    # A signature made by the same key for another purpose (an executor report tag) does not pass.
    foreign = SIGNER.sign(row_statement(sealed, BINDING))
    assert row_signer(sealed, BINDING, foreign, verify_keys=(SIGNER.public_hex,)) is None
    assert row_signer(sealed, BINDING, "zz", verify_keys=(SIGNER.public_hex,)) is None
