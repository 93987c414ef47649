"""The database ledger: append-only, idempotent by key, never overdrawn, safe under concurrency."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from execution import selectors, services
from execution.domain.ledger import transfer
from execution.errors import LedgerConflict, LedgerOverdraft
from execution.models import AppendOnlyError, LedgerPosting, LedgerTransaction

pytestmark = pytest.mark.django_db


def deposit(key: str = "dep-1", amount: int = 1_000) -> bool:
    return services.ledger_record(
        tx=transfer(key, "deposit_credit", asset="USDT", amount=amount, source="external:chain", target="custody")
    )


def test_recorded_once_per_key() -> None:
    assert deposit() is True
    assert deposit() is False
    assert LedgerTransaction.objects.count() == 1
    assert selectors.ledger_balance(account="custody:USDT") == 1_000
    assert selectors.ledger_balances() == {"custody:USDT": 1_000, "external:chain:USDT": -1_000}


def test_same_key_other_content_is_a_conflict_and_changes_nothing() -> None:
    deposit()
    with pytest.raises(LedgerConflict):
        deposit(amount=2_000)
    assert selectors.ledger_balance(account="custody:USDT") == 1_000


def test_overdraft_is_refused_with_nothing_written() -> None:
    deposit(amount=100)
    tx = transfer("send-1", "withdraw_debit", asset="USDT", amount=101, source="custody", target="transit:o1")
    with pytest.raises(LedgerOverdraft) as err:
        services.ledger_record(tx=tx)
    assert err.value.extra == {"account": "custody:USDT", "short": 1}
    assert LedgerTransaction.objects.count() == 1
    assert selectors.ledger_balance(account="transit:o1:USDT") == 0


def test_amounts_beyond_64_bits_are_exact() -> None:
    big = 10**27 + 1  # a billion 18-decimal tokens and one wei
    deposit(amount=big)
    assert selectors.ledger_balance(account="custody:USDT") == big


def test_rows_are_append_only() -> None:
    deposit()
    row = LedgerTransaction.objects.get()
    row.memo = "edited"
    with pytest.raises(AppendOnlyError):
        row.save()
    with pytest.raises(AppendOnlyError):
        row.delete()
    with pytest.raises(AppendOnlyError):
        LedgerPosting.objects.all().update(amount=5)
    with pytest.raises(AppendOnlyError):
        LedgerPosting.objects.filter(account="custody:USDT").delete()


@pytest.mark.django_db(transaction=True)
def test_concurrent_debits_never_overdraw() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serializes writers itself; the advisory-lock path needs PostgreSQL (CI)")
    deposit(amount=100)
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def spend(i: int) -> None:
        try:
            barrier.wait()
            tx = transfer(f"spend-{i}", "withdraw_debit", asset="USDT", amount=40, source="custody", target="transit:o")
            services.ledger_record(tx=tx)
            outcomes.append("ok")
        except LedgerOverdraft:
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=spend, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["ok", "ok", "refused", "refused"]
    assert selectors.ledger_balance(account="custody:USDT") == 20
