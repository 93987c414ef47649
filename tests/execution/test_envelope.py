"""Envelope encryption of credentials: per-row data keys, bound to the row, rotatable master keys."""

from __future__ import annotations

import os

import pytest

from execution.domain.envelope import DecryptionFailed, EnvelopeError, Sealed, UnknownKeyId, decrypt, encrypt, rewrap

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
