"""Exchange credentials at rest: encrypted per row, bound to it, revocable at once, rotatable."""

from __future__ import annotations

import base64
import os
import uuid
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from execution import accounts
from execution.domain import envelope
from execution.domain.envelope import DecryptionFailed
from execution.errors import AccountRevoked, CredentialsNotHeld, CredentialsUntrusted
from execution.models import Alert, ExchangeAccount
from mrmarket.exchanges.credentials import ExchangeCredentials
from tests.factories import user_with
from wire.keys import SigningKey

pytestmark = pytest.mark.django_db
CREDS = ExchangeCredentials(api_key="AKIA-PLAIN-1234", secret="VERY-SECRET-VALUE")


def store(label: str = "main") -> ExchangeAccount:
    return accounts.exchange_account_store(
        owner_id=user_with().pk, exchange="binance", label=label, role=ExchangeAccount.Role.TRADING, credentials=CREDS
    )


def settings_keys() -> dict[str, bytes]:
    from django.conf import settings

    return dict(settings.CREDENTIALS_MASTER_KEYS)


def raw_row(pk: int) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM execution_exchangeaccount WHERE id = %s", [pk])
        row = cursor.fetchone()
    return b"|".join(bytes(v) if isinstance(v, (bytes, memoryview)) else str(v).encode() for v in row)


def test_stored_encrypted_and_opened_only_by_the_service() -> None:
    account = store()
    row = raw_row(account.pk)
    assert b"VERY-SECRET-VALUE" not in row
    assert b"AKIA-PLAIN" not in row
    assert account.api_key_hint == "1234"
    assert accounts.exchange_account_credentials(account=ExchangeAccount.objects.get(pk=account.pk)) == CREDS
    assert "VERY-SECRET" not in repr(CREDS)
    assert "VERY-SECRET" not in str(account)


def test_ciphertext_copied_to_another_row_does_not_open() -> None:
    a, b = store("a"), store("b")
    b.credentials_key_id = a.credentials_key_id
    b.credentials_wrapped_key = a.credentials_wrapped_key
    b.credentials_ciphertext = a.credentials_ciphertext
    b.credentials_signature = a.credentials_signature
    b.save()
    # Refused by the row signature (it binds the row) before anything is unwrapped...
    with pytest.raises(CredentialsUntrusted):
        accounts.exchange_account_credentials(account=ExchangeAccount.objects.get(pk=b.pk))
    # ...and the envelope is bound to its row on its own as well.
    with pytest.raises(DecryptionFailed):
        envelope.decrypt(
            accounts._sealed_of(b), master_keys=settings_keys(), context=ExchangeAccount.objects.get(pk=b.pk).context
        )


def test_revoke_destroys_the_credentials_at_once() -> None:
    account = store()
    accounts.exchange_account_revoke(account_id=account.pk)
    account.refresh_from_db()
    assert account.status == ExchangeAccount.Status.REVOKED
    assert bytes(account.credentials_ciphertext) == b""
    with pytest.raises(AccountRevoked):
        accounts.exchange_account_credentials(account=account)
    assert accounts.exchange_account_revoke(account_id=account.pk).status == "revoked"  # idempotent


def test_rotation_rewraps_every_row_under_the_new_key(settings) -> None:
    account = store()
    old_id = settings.CREDENTIALS_MASTER_KEY_ID
    new_key = os.urandom(32)
    settings.CREDENTIALS_MASTER_KEY_ID = "k2"
    settings.CREDENTIALS_MASTER_KEYS = {**settings.CREDENTIALS_MASTER_KEYS, "k2": new_key}
    out = StringIO()
    call_command("rewrap_credentials", stdout=out)
    assert "re-wrapped 1 account(s) under key id k2" in out.getvalue()
    account.refresh_from_db()
    assert account.credentials_key_id == "k2"
    assert accounts._signer_of(account) == settings.CREDENTIALS_VERIFY_KEYS[0]  # re-sealed and signed again
    # The old key can now be retired: the row opens with the new key alone.
    settings.CREDENTIALS_MASTER_KEYS = {"k2": new_key}
    assert accounts.exchange_account_credentials(account=account) == CREDS
    call_command("rewrap_credentials", stdout=out)  # nothing left to do
    assert "re-wrapped 0 account(s)" in out.getvalue()
    assert old_id != "k2"


def test_retired_keys_setting_parses_and_names_bad_entries() -> None:
    from mrmarket.config import ConfigError, parse_key_ring

    key = base64.b64encode(os.urandom(32)).decode()
    assert set(parse_key_ring("CREDENTIALS_RETIRED_KEYS", f"k0:{key}, k00:{key}")) == {"k0", "k00"}
    with pytest.raises(ConfigError, match="KEY_ID:BASE64"):
        parse_key_ring("CREDENTIALS_RETIRED_KEYS", key)


def test_a_row_enrolled_where_only_the_public_key_is_held_opens_only_where_the_master_key_is(settings) -> None:
    worker_keys = settings.CREDENTIALS_MASTER_KEYS
    settings.CREDENTIALS_MASTER_KEYS = {}  # the web process: the public half only (mrmarket.settings.prod)
    account = store()
    assert account.credentials_scheme == envelope.SCHEME_SEALED_BOX
    before = raw_row(account.pk)
    with pytest.raises(CredentialsNotHeld) as refused:
        accounts.exchange_account_credentials(account=ExchangeAccount.objects.get(pk=account.pk))
    assert refused.value.code == "credentials_not_held"
    with pytest.raises(CredentialsNotHeld):
        accounts.credentials_rewrap_all()
    assert raw_row(account.pk) == before  # nothing was changed by the refusals
    settings.CREDENTIALS_MASTER_KEYS = worker_keys  # a worker
    assert accounts.exchange_account_credentials(account=ExchangeAccount.objects.get(pk=account.pk)) == CREDS


def test_rows_written_before_sealed_boxes_still_open_and_are_moved_by_rewrap(settings) -> None:
    account = store()
    key_id = settings.CREDENTIALS_MASTER_KEY_ID
    older = envelope.encrypt(
        CREDS.to_bytes(), master_key=settings.CREDENTIALS_MASTER_KEYS[key_id], key_id=key_id, context=account.context
    )
    ExchangeAccount.objects.filter(pk=account.pk).update(
        credentials_scheme=envelope.SCHEME_SYMMETRIC,
        credentials_wrapped_key=older.wrapped_key,
        credentials_ciphertext=older.ciphertext,
        credentials_signature="",  # written before rows were signed: the master key itself authenticates it
    )
    account.refresh_from_db()
    assert accounts.exchange_account_credentials(account=account) == CREDS
    assert accounts.credentials_rewrap_all() == 1
    account.refresh_from_db()
    assert (account.credentials_scheme, account.credentials_key_id) == (envelope.SCHEME_SEALED_BOX, key_id)
    assert accounts._signer_of(account) == settings.CREDENTIALS_VERIFY_KEYS[0]  # vouched for by the rewrap
    assert accounts.exchange_account_credentials(account=account) == CREDS
    assert accounts.credentials_rewrap_all() == 0


# --- provenance: rows are vouched for by the enrolment key, which the database does not hold ----------------

ATTACKER = ExchangeCredentials(api_key="ATTACKER-KEY-6666", secret="ATTACKER-SECRET")
OTHER_SIGNER = SigningKey.from_seed(b"an-enrolment-key-nobody-trusts!!")


def swap_in_attackers_credentials(account: ExchangeAccount, *, signed_by: SigningKey | None) -> None:
    """What a database writer who knows the public key can do: seal a key of their own, correctly, as this row's."""
    from django.conf import settings

    sealed = envelope.seal(
        ATTACKER.to_bytes(),
        public_key=settings.CREDENTIALS_PUBLIC_KEY,
        key_id=settings.CREDENTIALS_MASTER_KEY_ID,
        context=account.context,
    )
    binding = accounts._binding_of(account)
    signature = envelope.sign_row(sealed, binding, signing_key=signed_by) if signed_by else ""
    ExchangeAccount.objects.filter(pk=account.pk).update(
        credentials_scheme=sealed.scheme,
        credentials_key_id=sealed.key_id,
        credentials_wrapped_key=sealed.wrapped_key,
        credentials_ciphertext=sealed.ciphertext,
        credentials_signature=signature,
        api_key_hint=ATTACKER.hint,
    )


def assert_refused_untouched(account: ExchangeAccount, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused with the typed error, nothing decrypted, the row unchanged, one critical alert (not one per try)."""
    opened: list[bytes] = []
    real_decrypt = envelope.decrypt

    def recording_decrypt(*args: Any, **kwargs: Any) -> bytes:
        opened.append(b"")
        return real_decrypt(*args, **kwargs)

    monkeypatch.setattr(envelope, "decrypt", recording_decrypt)
    before = raw_row(account.pk)
    for _ in range(2):
        with pytest.raises(CredentialsUntrusted) as refused:
            accounts.exchange_account_credentials(account=ExchangeAccount.objects.get(pk=account.pk))
        assert refused.value.code == "credentials_untrusted"
    assert opened == []
    assert raw_row(account.pk) == before
    alerts = Alert.objects.filter(kind="credentials_untrusted")
    assert [(a.severity, a.detail["account_id"]) for a in alerts] == [(Alert.Severity.CRITICAL, account.pk)]


def test_every_stored_row_is_signed_by_the_enrolment_key(settings) -> None:
    account = store()
    assert len(account.credentials_signature) == 128
    assert accounts._signer_of(ExchangeAccount.objects.get(pk=account.pk)) == settings.CREDENTIALS_VERIFY_KEYS[0]


@pytest.mark.parametrize("signed_by", [None, OTHER_SIGNER], ids=["unsigned", "signed-by-another-key"])
def test_credentials_swapped_for_an_attackers_are_refused_before_anything_is_decrypted(
    signed_by: SigningKey | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = store()
    swap_in_attackers_credentials(account, signed_by=signed_by)
    assert_refused_untouched(account, monkeypatch)


def test_a_row_signature_copied_to_another_row_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = store("a"), store("b")
    # B re-bound to A's credentials wholesale: envelope, signature, and even A's uid (the envelope's binding).
    ExchangeAccount.objects.filter(pk=a.pk).update(uid=uuid.uuid4())
    ExchangeAccount.objects.filter(pk=b.pk).update(
        uid=a.uid,
        owner_id=a.owner_id,
        credentials_key_id=a.credentials_key_id,
        credentials_wrapped_key=a.credentials_wrapped_key,
        credentials_ciphertext=a.credentials_ciphertext,
        credentials_signature=a.credentials_signature,
    )
    assert_refused_untouched(b, monkeypatch)


@pytest.mark.parametrize("moved", ["owner", "role"])
def test_a_row_moved_to_another_owner_or_role_is_refused(monkeypatch: pytest.MonkeyPatch, moved: str) -> None:
    account = store()
    change = {"owner_id": user_with().pk} if moved == "owner" else {"role": ExchangeAccount.Role.TREASURY}
    ExchangeAccount.objects.filter(pk=account.pk).update(**change)
    assert_refused_untouched(account, monkeypatch)


def test_rewrap_keeps_rows_trusted_and_moves_them_to_a_new_enrolment_key(settings) -> None:
    account = store()
    old_verify = settings.CREDENTIALS_VERIFY_KEYS[0]
    # Rotation: the new verification key is added first, then rows are re-signed with the new enrolment key...
    new_signer = SigningKey.from_seed(os.urandom(32))
    settings.CREDENTIALS_SIGNING_KEY = bytes(new_signer._key).hex()
    settings.CREDENTIALS_VERIFY_KEYS = (old_verify, new_signer.public_hex)
    assert accounts.credentials_rewrap_all() == 1
    account.refresh_from_db()
    assert accounts._signer_of(account) == new_signer.public_hex
    assert accounts.credentials_rewrap_all() == 0
    # ...and the old one can be dropped: the row opens with the new key alone.
    settings.CREDENTIALS_VERIFY_KEYS = (new_signer.public_hex,)
    assert accounts.exchange_account_credentials(account=account) == CREDS


def test_rewrap_never_signs_a_row_nobody_vouched_for(settings) -> None:
    account = store()
    swap_in_attackers_credentials(account, signed_by=None)
    settings.CREDENTIALS_MASTER_KEY_ID = "k2"  # a master-key rotation would otherwise re-seal and sign it
    settings.CREDENTIALS_MASTER_KEYS = {**settings.CREDENTIALS_MASTER_KEYS, "k2": os.urandom(32)}
    before = raw_row(account.pk)
    assert accounts.credentials_rewrap_all() == 0
    assert raw_row(account.pk) == before
    assert Alert.objects.filter(kind="credentials_untrusted", detail__account_id=account.pk).count() == 1
    with pytest.raises(CredentialsUntrusted):
        accounts.exchange_account_credentials(account=ExchangeAccount.objects.get(pk=account.pk))


def test_an_unsigned_row_relabelled_as_the_older_scheme_does_not_open() -> None:
    # The older scheme needs no signature because its wrap needs the master key: a relabelled sealed box fails it.
    account = store()
    swap_in_attackers_credentials(account, signed_by=None)
    ExchangeAccount.objects.filter(pk=account.pk).update(credentials_scheme=envelope.SCHEME_SYMMETRIC)
    with pytest.raises(DecryptionFailed):
        accounts.exchange_account_credentials(account=ExchangeAccount.objects.get(pk=account.pk))
