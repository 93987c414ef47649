"""Writes of the execution app: `<entity>_<action>(*, ...)`, typed, atomic, idempotent where they touch the outside.

Over 400 lines: the ledger, exchange-key and order-transition writes every flow module calls stay together as
the one `services.<name>` surface their callers and tests reach (the flows themselves live in their own modules).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from execution import selectors
from execution.credentials import ExchangeCredentials
from execution.domain import envelope
from execution.domain import mm_order as mm
from execution.domain.ledger import Posting, Transaction
from execution.domain.permissions import KeyPermissions, KeyRole, role_problems
from execution.errors import (
    AccountRevoked,
    CredentialsNotHeld,
    CredentialsUntrusted,
    InvalidExchangeKey,
    InvalidOrderTransition,
    KeyPermissionsMismatch,
    LedgerConflict,
    LedgerOverdraft,
)
from execution.exchanges import exchange_client, probe_permissions
from execution.models import Alert, ExchangeAccount, LedgerPosting, LedgerTransaction, MMOrder, MMOrderTransition
from mrmarket.errors import Conflict, NotFound
from mrmarket.observability import context
from mrmarket.observability.logging import get_logger
from wire.keys import SigningKey

log = get_logger(__name__)


def _lock_accounts(accounts: Iterable[str]) -> None:
    """Serialize concurrent movements on the same accounts (PostgreSQL advisory locks, sorted: no deadlock).

    SQLite takes a database-wide write lock per transaction, which serializes writers already.
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for account in sorted(set(accounts)):
            lock_id = int.from_bytes(hashlib.sha256(account.encode()).digest()[:8], "big", signed=True)
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_id])


def _as_domain(row: LedgerTransaction) -> Transaction:
    postings = tuple(Posting(p.account, p.asset, int(p.amount)) for p in row.postings.all())
    return Transaction(key=row.key, kind=row.kind, postings=postings)


@transaction.atomic
def ledger_record(*, tx: Transaction, memo: str = "") -> bool:
    """Record a balanced transaction once. Returns False when its key was already recorded identically.

    Internal accounts never go below zero; a refused transaction writes nothing.
    """
    existing = LedgerTransaction.objects.filter(key=tx.key).prefetch_related("postings").first()
    if existing is not None:
        if not _as_domain(existing).same_as(tx):
            raise LedgerConflict(f"ledger key {tx.key} was already used for another transaction")
        return False
    _lock_accounts(p.account for p in tx.postings)
    # The net movement per account, not each posting alone: a transaction that debits one account twice
    # must be checked against the sum of both debits, or each would pass against the same starting balance.
    net: dict[str, int] = {}
    for posting in tx.postings:
        if not posting.is_external:
            net[posting.account] = net.get(posting.account, 0) + posting.amount
    for account in sorted(net):
        if net[account] < 0:
            after = selectors.ledger_balance(account=account) + net[account]
            if after < 0:
                raise LedgerOverdraft(f"{account} would go below zero", extra={"account": account, "short": -after})
    try:
        with transaction.atomic():
            row = LedgerTransaction.objects.create(key=tx.key, kind=tx.kind, memo=memo)
            LedgerPosting.objects.bulk_create(
                LedgerPosting(transaction=row, account=p.account, asset=p.asset, amount=p.amount) for p in tx.postings
            )
    except IntegrityError:
        # Another worker recorded the same key between our check and our insert.
        winner = LedgerTransaction.objects.prefetch_related("postings").get(key=tx.key)
        if not _as_domain(winner).same_as(tx):
            raise LedgerConflict(f"ledger key {tx.key} was already used for another transaction") from None
        return False
    log.info("ledger_recorded", key=tx.key, kind=tx.kind, postings=len(tx.postings))
    return True


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


def alert_raise(kind: str, message: str, *, dedup: str, detail: dict[str, Any], warning: bool = False) -> bool:
    """Open an alert for a fact, once while it is open (`dedup` is unique among open alerts); True when this call
    opened it. Critical unless `warning`."""
    severity = Alert.Severity.WARNING if warning else Alert.Severity.CRITICAL
    try:
        with transaction.atomic():
            Alert.objects.create(kind=kind, severity=severity, message=message[:500], detail=detail, dedup_key=dedup)
    except IntegrityError:
        return False  # already open for this fact
    (log.warning if warning else log.error)(kind, **{k: str(v) for k, v in detail.items()})
    return True


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
    from execution import tasks  # noqa: PLC0415, RUF100 — tasks imports this module: a module-level import is a cycle

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


@transaction.atomic
def mm_order_transition(
    *,
    order_id: int,
    event: mm.Event,
    key: str,
    detail: dict[str, Any] | None = None,
    ledger: Iterable[Transaction] = (),
) -> MMOrder:
    """Apply one event to an order, once per `key`, together with the ledger entries it causes.

    The order row is locked, so two workers handling the same step serialize; the second finds the
    transition recorded under the same key and returns the order unchanged (a retry is never a second step).
    """
    order = MMOrder.objects.select_for_update().get(pk=order_id)
    if MMOrderTransition.objects.filter(order=order, key=key).exists():
        return order
    try:
        new_state = mm.next_state(mm.State(order.state), event)
    except mm.InvalidTransition as exc:
        raise InvalidOrderTransition(
            str(exc),
            extra={
                "state": order.state,
                "event": event.value,
                "allowed": sorted(mm.allowed_events(mm.State(order.state))),
            },
        ) from None
    for tx in ledger:
        ledger_record(tx=tx)
    MMOrderTransition.objects.create(
        order=order,
        key=key,
        event=event.value,
        from_state=order.state,
        to_state=new_state.value,
        detail=detail or {},
        request_id=context.current_request_id() or "",
    )
    order.state = new_state.value
    if event is mm.Event.FAIL:
        order.failure_reason = str((detail or {}).get("reason", ""))[:500]
    order.save(update_fields=["state", "failure_reason", "updated_at"])
    with context.bound(order_id=order.pk):
        log.info("mm_order_transition", order_event=event.value, to_state=new_state.value, key=key)
    return order


@transaction.atomic
def mm_order_stop(*, order_id: int, reason: str = "operator") -> MMOrder:
    """Stop an order, once per attempt: a repeated stop is a no-op, and a failed order (a new attempt) can always
    be stopped again to bring its funds back. The key is chosen under the row lock, so it names the attempt the
    stop really applies to."""
    MMOrder.objects.select_for_update().get(pk=order_id)
    attempt = selectors.mm_order_attempt(order_id=order_id)
    return mm_order_transition(
        order_id=order_id,
        event=mm.Event.STOP,
        key=mm.step_key(order_id, "stop", attempt),
        detail={"reason": reason},
    )
