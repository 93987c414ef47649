"""The database ledger: append-only, idempotent by key, never overdrawn, safe under concurrency."""

from __future__ import annotations

import threading
from collections import defaultdict

import pytest
from django.db import connections, transaction
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from execution import selectors, services
from execution.domain.ledger import Posting, Transaction, asset_totals, transfer
from execution.errors import LedgerConflict, LedgerOverdraft
from execution.models import AppendOnlyError, LedgerPosting, LedgerTransaction
from tests.plugins.require import require_postgresql

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
    require_postgresql("SQLite serializes writers itself; the advisory-lock path needs PostgreSQL")
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


def test_one_transaction_debiting_an_account_twice_is_checked_on_the_sum() -> None:
    deposit(amount=100)
    twice = Transaction(
        key="send-twice",
        kind="withdraw_debit",
        postings=(
            Posting("custody:USDT", "USDT", -60),
            Posting("custody:USDT", "USDT", -60),
            Posting("transit:o1:USDT", "USDT", 120),
        ),
    )
    with pytest.raises(LedgerOverdraft) as err:
        services.ledger_record(tx=twice)
    assert err.value.extra == {"account": "custody:USDT", "short": 20}
    assert selectors.ledger_balances() == {"custody:USDT": 100, "external:chain:USDT": -100}
    assert not LedgerTransaction.objects.filter(key="send-twice").exists()


def test_a_debit_covered_by_a_credit_in_the_same_transaction_is_checked_on_the_net() -> None:
    deposit(amount=100)
    netted = Transaction(
        key="net",
        kind="move",
        postings=(
            Posting("custody:USDT", "USDT", -120),
            Posting("custody:USDT", "USDT", 50),
            Posting("transit:o1:USDT", "USDT", 70),
        ),
    )
    assert services.ledger_record(tx=netted) is True
    assert selectors.ledger_balance(account="custody:USDT") == 30


# --- properties of the ledger production uses (services.ledger_record on PostgreSQL) ------------------------

INTERNAL = ["custody", "transit:o1", "exchange:a1:free", "exchange:a1:locked", "fees:o1"]
legs = st.tuples(
    st.sampled_from(["external:chain", *INTERNAL]),  # source
    st.sampled_from(["external:chain", *INTERNAL]),  # target
    st.sampled_from(["USDT", "MMT"]),
    st.integers(1, 10**20),
)
# Each step is a new transaction of one to three transfers (so one account can be debited twice in it), or the
# replay of an earlier key with its own content, or an earlier key reused for other content.
steps = st.lists(
    st.one_of(
        st.tuples(st.just("new"), st.lists(legs, min_size=1, max_size=3)),
        st.tuples(st.just("replay"), st.integers(0, 10**6)),
        st.tuples(st.just("reuse"), st.integers(0, 10**6), legs),
    ),
    max_size=25,
)


def _build(key: str, transfers: list[tuple[str, str, str, int]]) -> Transaction:
    postings: list[Posting] = []
    for source, target, asset, amount in transfers:
        postings += [Posting(f"{source}:{asset}", asset, -amount), Posting(f"{target}:{asset}", asset, amount)]
    return Transaction(key=key, kind="move", postings=tuple(postings))


def _snapshot() -> tuple[dict[str, int], int, int]:
    return selectors.ledger_balances(), LedgerTransaction.objects.count(), LedgerPosting.objects.count()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps)
def test_recorded_transactions_keep_every_invariant(plan) -> None:
    require_postgresql("the property is about the ledger production runs on")
    with transaction.atomic():
        recorded: list[Transaction] = []
        model: dict[str, int] = defaultdict(int)
        for i, step in enumerate(plan):
            before = _snapshot()
            if step[0] == "new":
                tx = _build(f"t{i}", step[1])
                net: dict[str, int] = defaultdict(int)
                for posting in tx.postings:
                    net[posting.account] += posting.amount
                overdraws = any(model[a] + v < 0 for a, v in net.items() if v < 0 and not a.startswith("external:"))
                if overdraws:
                    with pytest.raises(LedgerOverdraft):
                        services.ledger_record(tx=tx)
                    assert _snapshot() == before, "a refused transaction changed the ledger"
                    continue
                assert services.ledger_record(tx=tx) is True
                recorded.append(tx)
                for account, amount in net.items():
                    model[account] += amount
            elif not recorded:
                continue
            elif step[0] == "replay":
                assert services.ledger_record(tx=recorded[step[1] % len(recorded)]) is False
                assert _snapshot() == before, "replaying a key changed the ledger"
            else:
                old = recorded[step[1] % len(recorded)]
                other = _build(old.key, [step[2]])
                if other.same_as(old):
                    continue
                with pytest.raises(LedgerConflict):
                    services.ledger_record(tx=other)
                assert _snapshot() == before, "a conflicting key changed the ledger"
            balances = selectors.ledger_balances()
            assert balances == {a: v for a, v in model.items() if v}
            assert all(v > 0 for a, v in balances.items() if not a.startswith("external:")), balances
            assert asset_totals(balances) in ({}, {"USDT": 0}, {"MMT": 0}, {"USDT": 0, "MMT": 0})
        per_tx_asset = LedgerPosting.objects.values("transaction_id", "asset").annotate(total=Sum("amount"))
        assert [row for row in per_tx_asset if row["total"] != 0] == []
        assert LedgerTransaction.objects.count() == len(recorded)
        transaction.set_rollback(True)
