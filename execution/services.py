"""Writes of the execution app: `<entity>_<action>(*, ...)`, typed, atomic, idempotent where they touch the outside.

The ledger, alerts and order transitions every flow module calls (the flows themselves live in their own modules;
exchange accounts and their credentials in `execution.accounts`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, connection, transaction

from execution import selectors

# The alert sink every flow module calls as `services.alert_raise` (alerts live in their own module).
from execution.alerts import alert_raise
from execution.domain import mm_order as mm
from execution.domain.ledger import Posting, Transaction
from execution.errors import InvalidOrderTransition, LedgerConflict, LedgerOverdraft
from execution.models import LedgerPosting, LedgerTransaction, MMOrder, MMOrderTransition
from mrmarket.observability import context
from mrmarket.observability.logging import get_logger

__all__ = ["alert_raise", "ledger_record", "mm_order_stop", "mm_order_transition"]

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


def _recorded(tx: Transaction) -> bool:
    """Whether the key is recorded already, identically; another transaction under it is a conflict."""
    existing = LedgerTransaction.objects.filter(key=tx.key).prefetch_related("postings").first()
    if existing is None:
        return False
    if not _as_domain(existing).same_as(tx):
        raise LedgerConflict(f"ledger key {tx.key} was already used for another transaction")
    return True


def _as_domain(row: LedgerTransaction) -> Transaction:
    postings = tuple(Posting(p.account, p.asset, int(p.amount)) for p in row.postings.all())
    return Transaction(key=row.key, kind=row.kind, postings=postings)


@transaction.atomic
def ledger_record(*, tx: Transaction, memo: str = "") -> bool:
    """Record a balanced transaction once. Returns False when its key was already recorded identically.

    Internal accounts never go below zero; a refused transaction writes nothing.
    """
    if _recorded(tx):
        return False
    _lock_accounts(p.account for p in tx.postings)
    # Another worker may have recorded this very key while we waited for the locks (two pulls of the same report
    # page): ours is then its duplicate, not a debit to check against the balance it has just spent.
    if _recorded(tx):
        return False
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
    previous, order.state = order.state, new_state.value
    if event is mm.Event.FAIL:
        order.failure_reason = str((detail or {}).get("reason", ""))[:500]
        # A failed order waits for a person (nothing retries it): tell one, in the transaction that fails it, so a
        # worker that dies leaves either neither or both.
        alert_raise(
            "mm_order_failed",
            f"order {order.pk} failed while {previous}: {order.failure_reason}",
            dedup=f"order-failed:{key}",
            detail={"order": order.pk, "key": key, "reason": order.failure_reason},
            owner_id=order.owner_id,
        )
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
