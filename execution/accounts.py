"""Exchange accounts and their sealed credentials: enrolment (the key's rights asked of the exchange), storage
sealed for the master key's public half and signed by the enrolment key (ADR 0015), opening in a worker only,
the scheduled re-probe, revocation and the master/enrolment key rotation (`credentials_rewrap_all`).

The one place a stored credential is opened and a credentialed ccxt client is built (`exchange_account_client`).
"""

from __future__ import annotations

import functools
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from execution.domain import envelope
from execution.errors import AccountRevoked, CredentialsNotHeld, CredentialsUntrusted, KeyPermissionsMismatch
from execution.models import ExchangeAccount, MMOrder
from execution.services import alert_raise
from mrmarket.errors import Conflict, NotFound
from mrmarket.exchanges.client import exchange_client, probe_permissions
from mrmarket.exchanges.credentials import ExchangeCredentials
from mrmarket.exchanges.errors import InvalidExchangeKey
from mrmarket.exchanges.permissions import KeyPermissions, KeyRole, role_problems
from mrmarket.observability.logging import get_logger
from wire.keys import SigningKey

log = get_logger(__name__)


def _seal_into(account: ExchangeAccount, credentials: ExchangeCredentials) -> None:
    # The public half only: the web process enrols keys without holding what would open a stored row.
    sealed = envelope.seal(
        credentials.to_bytes(),
        public_key=settings.CREDENTIALS_PUBLIC_KEY,
        key_id=settings.CREDENTIALS_MASTER_KEY_ID,
        context=account.context,
    )
    _put_sealed(account, sealed)
    account.api_key_hint = credentials.hint


def _put_sealed(account: ExchangeAccount, sealed: envelope.Sealed) -> None:
    account.credentials_scheme = sealed.scheme
    account.credentials_key_id = sealed.key_id
    account.credentials_wrapped_key = sealed.wrapped_key
    account.credentials_ciphertext = sealed.ciphertext
    account.credentials_signature = ""  # vouched for once the row has its id (_vouch_for)


def _sealed_of(account: ExchangeAccount) -> envelope.Sealed:
    return envelope.Sealed(
        key_id=account.credentials_key_id,
        wrapped_key=bytes(account.credentials_wrapped_key),
        ciphertext=bytes(account.credentials_ciphertext),
        scheme=account.credentials_scheme,
    )


def _master_keys() -> dict[str, bytes]:
    keys: dict[str, bytes] = getattr(settings, "CREDENTIALS_MASTER_KEYS", {})
    if not keys:
        raise CredentialsNotHeld(
            f"the {settings.PROCESS_ROLE} process holds no credentials master key: a worker opens stored credentials"
        )
    return keys


def _binding_of(account: ExchangeAccount) -> envelope.RowBinding:
    return envelope.RowBinding(
        account_id=account.pk,
        account_uid=str(account.uid),
        owner_id=account.owner_id,
        exchange=account.exchange,
        role=str(account.role),
    )


def _enrolment_key() -> SigningKey:
    seed: str = getattr(settings, "CREDENTIALS_SIGNING_KEY", "")
    if not seed:
        raise CredentialsNotHeld(
            f"the {settings.PROCESS_ROLE} process holds no credentials enrolment key (CREDENTIALS_SIGNING_KEY): "
            "it cannot write credential rows"
        )
    return SigningKey.from_seed(bytes.fromhex(seed))


def _vouch_for(account: ExchangeAccount) -> None:
    account.credentials_signature = envelope.sign_row(
        _sealed_of(account), _binding_of(account), signing_key=_enrolment_key()
    )


def _signer_of(account: ExchangeAccount) -> str | None:
    verify_keys: tuple[str, ...] = tuple(getattr(settings, "CREDENTIALS_VERIFY_KEYS", ()))
    return envelope.row_signer(
        _sealed_of(account), _binding_of(account), account.credentials_signature, verify_keys=verify_keys
    )


def _refuse_untrusted(account: ExchangeAccount) -> CredentialsUntrusted:
    """One critical alert per account while open; the row is left exactly as found (it is the evidence)."""
    reason = "unsigned" if not account.credentials_signature else "signature does not verify"
    detail = {"account_id": account.pk, "exchange": account.exchange, "owner_id": account.owner_id, "reason": reason}
    alert_raise(
        "credentials_untrusted",
        (
            f"the stored credentials of exchange account {account.pk} are not vouched for by the "
            f"enrolment key ({reason}): they were not opened; someone may have written the database"
        ),
        dedup=f"credentials-untrusted:a{account.pk}",
        detail=detail,
    )
    return CredentialsUntrusted(
        f"the credentials of exchange account {account.pk} are not vouched for by a configured enrolment key",
        extra={"account_id": account.pk, "reason": reason},
    )


def exchange_account_trusted(*, account: ExchangeAccount) -> None:
    """Refuse (CredentialsUntrusted, one alert) a row the enrolment key did not vouch for. A sealed box proves
    nothing about its writer: anyone with the public key and database access could seal a key of their own.
    Rows of the older symmetric scheme are authenticated by the master key itself (a writer needed it)."""
    if account.status != ExchangeAccount.Status.ACTIVE:
        raise AccountRevoked(f"exchange account {account.pk} is revoked")
    if account.credentials_scheme == envelope.SCHEME_SYMMETRIC and not account.credentials_signature:
        return
    if _signer_of(account) is None:
        raise _refuse_untrusted(account)


def exchange_account_store(
    *,
    owner_id: int,
    exchange: str,
    label: str,
    role: ExchangeAccount.Role,
    credentials: ExchangeCredentials,
    permissions: KeyPermissions | None = None,
) -> ExchangeAccount:
    """Store an account with its credentials encrypted (exchange_account_enrol probes the key first)."""
    account = ExchangeAccount(owner_id=owner_id, exchange=exchange, label=label, role=role)
    if permissions is not None:
        account.permissions = permissions.as_dict()
        account.permissions_checked_at = timezone.now()
    _seal_into(account, credentials)
    account.full_clean(exclude=["credentials_wrapped_key", "credentials_ciphertext"])
    with transaction.atomic():
        account.save()
        # The signature binds the row's id, known only now: the row is never committed unsigned.
        _vouch_for(account)
        account.save(update_fields=["credentials_signature"])
    log.info("exchange_account_stored", exchange=exchange, account_id=account.pk, key_hint=credentials.hint)
    return account


def exchange_account_enrol(
    *, owner_id: int, exchange: str, label: str, role: str, credentials: ExchangeCredentials
) -> ExchangeAccount:
    """Enrol a key after asking the exchange what it can really do; a key that lacks what its role needs, or
    has more than the role allows, is refused and nothing is stored."""
    key_role = KeyRole(role)
    if ExchangeAccount.objects.filter(owner_id=owner_id, exchange=exchange, label=label).exists():
        raise Conflict(f"you already have a {exchange} account labelled {label!r}", code="exchange_account_exists")
    permissions = probe_permissions(exchange, credentials)
    problems = role_problems(key_role, permissions)
    if problems:
        raise KeyPermissionsMismatch(
            "; ".join(problems), extra={"permissions": permissions.as_dict(), "problems": problems}
        )
    return exchange_account_store(
        owner_id=owner_id,
        exchange=exchange,
        label=label,
        role=ExchangeAccount.Role(key_role.value),
        credentials=credentials,
        permissions=permissions,
    )


def exchange_account_reprobe(*, account_id: int) -> ExchangeAccount:
    """Scheduled: ask the exchange again. A key that no longer fits its role (or no longer works) is revoked
    at once; the exchange being down changes nothing (ExchangeUnavailable propagates for a retry)."""
    account = ExchangeAccount.objects.get(pk=account_id)
    if account.status != ExchangeAccount.Status.ACTIVE:
        return account
    try:
        permissions = probe_permissions(account.exchange, exchange_account_credentials(account=account))
    except InvalidExchangeKey as exc:
        log.error("exchange_key_refused", account_id=account.pk, exchange=account.exchange, reason=exc.message)
        return exchange_account_revoke(account_id=account.pk)
    ExchangeAccount.objects.filter(pk=account.pk).update(
        permissions=permissions.as_dict(), permissions_checked_at=timezone.now()
    )
    problems = role_problems(KeyRole(account.role), permissions)
    if problems:
        log.error(
            "exchange_key_permissions_changed", account_id=account.pk, exchange=account.exchange, problems=problems
        )
        return exchange_account_revoke(account_id=account.pk)
    account.refresh_from_db()
    return account


def exchange_account_credentials(*, account: ExchangeAccount) -> ExchangeCredentials:
    """Decrypt an account's credentials, for the call about to use them; the plaintext never leaves that call.
    Only worker and beat processes hold the master key (ADR 0015): anywhere else this raises CredentialsNotHeld."""
    if account.status != ExchangeAccount.Status.ACTIVE:
        raise AccountRevoked(f"exchange account {account.pk} is revoked")
    master_keys = _master_keys()
    # Before anything is unwrapped: a row the enrolment key did not vouch for is not even decrypted.
    exchange_account_trusted(account=account)
    raw = envelope.decrypt(_sealed_of(account), master_keys=master_keys, context=account.context)
    return ExchangeCredentials.from_bytes(raw)


def exchange_account_client(*, account: ExchangeAccount) -> Any:
    """The ccxt client of an account, signed with its credentials (opened for this client only): the one place a
    credentialed client is built. Raises what `exchange_account_credentials` raises (revoked, untrusted, no key)."""
    return exchange_client(account.exchange, credentials=exchange_account_credentials(account=account))


@transaction.atomic
def exchange_account_revoke(*, account_id: int) -> ExchangeAccount:
    """Disable at once: the credentials are destroyed, not just flagged; every job trading with the key is told
    to wipe it (the executor cancels what rests while the key still works) and its order is stopped."""
    account = ExchangeAccount.objects.select_for_update().get(pk=account_id)
    if account.status == ExchangeAccount.Status.REVOKED:
        return account
    account.status = ExchangeAccount.Status.REVOKED
    account.revoked_at = timezone.now()
    account.credentials_wrapped_key = b""
    account.credentials_ciphertext = b""
    account.save(update_fields=["status", "revoked_at", "credentials_wrapped_key", "credentials_ciphertext"])
    log.info("exchange_account_revoked", account_id=account.pk, exchange=account.exchange)
    from execution import tasks  # noqa: PLC0415 — tasks imports this module: a module-level import is a cycle

    for order_id in MMOrder.objects.filter(exchange_account=account).exclude(job_id="").values_list("pk", flat=True):
        transaction.on_commit(functools.partial(tasks.revoke_job.delay, order_id))
    return account


def exchange_account_revoke_owned(*, owner_id: int, account_id: int) -> ExchangeAccount:
    """An owner revokes one of their own accounts (`exchange_account_revoke`); another's is not found."""
    if not ExchangeAccount.objects.filter(pk=account_id, owner_id=owner_id).exists():
        raise NotFound(f"no exchange account {account_id} of yours")
    return exchange_account_revoke(account_id=account_id)


def credentials_rewrap_all() -> int:
    """Move every active account to the current master key, sealed for its public half, and signed by the current
    enrolment key (ADR 0015), one row per transaction (no downtime). Runs where the master keys are held (a worker
    host), never in the web process. A row no configured key vouches for is left as it is, with an alert: signing
    it would launder whatever a database writer put there."""
    current = settings.CREDENTIALS_MASTER_KEY_ID
    master_keys = _master_keys()
    signer = _enrolment_key().public_hex
    moved = 0
    active = ExchangeAccount.objects.filter(status=ExchangeAccount.Status.ACTIVE).values_list("pk", flat=True)
    for pk in list(active.order_by("pk")):
        with transaction.atomic():
            account = ExchangeAccount.objects.select_for_update().get(pk=pk)
            if account.status != ExchangeAccount.Status.ACTIVE:
                continue
            sealed_now = (
                account.credentials_key_id == current and account.credentials_scheme == envelope.SCHEME_SEALED_BOX
            )
            if sealed_now and _signer_of(account) == signer:
                continue
            try:
                exchange_account_trusted(account=account)
            except CredentialsUntrusted:
                continue
            if not sealed_now:
                _put_sealed(
                    account,
                    envelope.rewrap(
                        _sealed_of(account), master_keys=master_keys, new_key_id=current, context=account.context
                    ),
                )
            _vouch_for(account)
            account.save(
                update_fields=[
                    "credentials_scheme",
                    "credentials_key_id",
                    "credentials_wrapped_key",
                    "credentials_ciphertext",
                    "credentials_signature",
                ]
            )
            moved += 1
    log.info("credentials_rewrapped", moved=moved, key_id=current, signed_by=signer)
    return moved
