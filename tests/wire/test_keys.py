from __future__ import annotations

import pytest

from wire.errors import SealError, SignatureError
from wire.keys import SealingKey, SigningKey, seal, verify_signature


def test_signature_verifies_and_binds_payload_key_and_tag() -> None:
    key = SigningKey.generate()
    sig = key.sign(b"payload")
    verify_signature(key.public_hex, b"payload", sig)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_signature(key.public_hex, b"payload!", sig)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_signature(SigningKey.generate().public_hex, b"payload", sig)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_signature(key.public_hex, b"payload", sig, tag=b"another.purpose")


@pytest.mark.parametrize(
    ("public", "signature", "message"),
    [("zz" * 32, "00" * 64, "not hex"), ("00" * 31, "00" * 64, "32 bytes"), (None, "00" * 63, "64 bytes")],
)
def test_malformed_keys_and_signatures_are_typed_errors(public, signature, message) -> None:
    key = SigningKey.generate()
    with pytest.raises(SignatureError, match=message):
        verify_signature(public or key.public_hex, b"x", signature)


def test_sealed_box_opens_only_with_the_sealing_key() -> None:
    key = SealingKey.generate()
    sealed = seal(key.public_hex, b'{"api_key":"k","secret":"s"}')
    assert b"secret" not in sealed
    assert key.open(sealed) == b'{"api_key":"k","secret":"s"}'
    with pytest.raises(SealError, match="does not open"):
        SealingKey.generate().open(sealed)
    with pytest.raises(SealError, match="32 bytes"):
        seal("00" * 16, b"x")


def test_key_reprs_never_show_private_material() -> None:
    signing, sealing = SigningKey.from_seed(b"\x07" * 32), SealingKey.from_seed(b"\x07" * 32)
    assert "07070707" not in repr(signing) + repr(sealing)
    assert signing.public_hex in repr(signing)
