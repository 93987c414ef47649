"""Double-entry ledger rules and invariants (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from execution.domain.ledger import (
    IdempotencyConflict,
    Ledger,
    LedgerError,
    Posting,
    Transaction,
    Unbalanced,
    asset_totals,
    balances,
    transfer,
)


def test_a_full_round_trip_is_explained_by_entries() -> None:
    ledger = Ledger()
    steps = [
        transfer("dep-1", "deposit_credit", asset="USDT", amount=1_000_000, source="external:chain", target="custody"),
        transfer("o7-send", "withdraw_debit", asset="USDT", amount=600_000, source="custody", target="transit:o7"),
        transfer(
            "o7-credit", "deposit_credit", asset="USDT", amount=600_000, source="transit:o7", target="exchange:a3:free"
        ),
        transfer(
            "o7-lock",
            "reserve_lock",
            asset="USDT",
            amount=100_000,
            source="exchange:a3:free",
            target="exchange:a3:locked",
        ),
        Transaction(
            key="o7-fill-t1",
            kind="fill_settle",
            postings=(
                Posting("exchange:a3:locked:USDT", "USDT", -100_000),
                Posting("external:market:USDT", "USDT", 100_000),
                Posting("exchange:a3:free:MRM", "MRM", 99_900),
                Posting("external:market:MRM", "MRM", -100_000),
                Posting("fees:o7:MRM", "MRM", 100),
            ),
        ),
    ]
    for tx in steps:
        assert ledger.apply(tx) is True
    assert ledger.balance("custody:USDT") == 400_000
    assert ledger.balance("exchange:a3:free:USDT") == 500_000
    assert ledger.balance("exchange:a3:locked:USDT") == 0
    assert ledger.balance("exchange:a3:free:MRM") == 99_900
    assert ledger.balance("fees:o7:MRM") == 100
    assert asset_totals(ledger.balances()) == {"USDT": 0, "MRM": 0}


def test_the_same_key_twice_is_recorded_once() -> None:
    ledger = Ledger()
    tx = transfer("dep-1", "deposit_credit", asset="USDT", amount=5, source="external:chain", target="custody")
    assert ledger.apply(tx) is True
    assert ledger.apply(tx) is False
    assert ledger.balance("custody:USDT") == 5
    assert len(ledger.transactions) == 1


def test_reusing_a_key_for_something_else_is_a_conflict() -> None:
    ledger = Ledger()
    ledger.apply(transfer("k", "deposit_credit", asset="USDT", amount=5, source="external:chain", target="custody"))
    with pytest.raises(IdempotencyConflict):
        ledger.apply(transfer("k", "deposit_credit", asset="USDT", amount=6, source="external:chain", target="custody"))
    assert ledger.balance("custody:USDT") == 5


def test_internal_accounts_never_go_negative_and_nothing_changes() -> None:
    ledger = Ledger()
    with pytest.raises(LedgerError, match="custody:USDT would go below zero"):
        ledger.apply(transfer("w", "withdraw_debit", asset="USDT", amount=1, source="custody", target="transit:o1"))
    assert ledger.balances() == {}
    assert ledger.transactions == []


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Transaction("k", "x", (Posting("custody:USDT", "USDT", 5),)), "at least two postings"),
        (
            lambda: Transaction("k", "x", (Posting("custody:USDT", "USDT", 5), Posting("transit:o:USDT", "USDT", -4))),
            "do not sum to zero",
        ),
        (lambda: Posting("custody:USDT", "MRM", 5), "does not hold MRM"),
        (lambda: Posting("wallet:USDT", "USDT", 5), "malformed account name"),
        (lambda: Posting("custody:USDT", "USDT", 0), "moves nothing"),
        (lambda: Posting("custody:USDT", "USDT", 1.5), "integers in base units"),  # type: ignore[arg-type]
        (lambda: transfer("bad key!", "x", asset="A", amount=1, source="custody", target="transit:o"), "idempotency"),
        (lambda: transfer("k", "x", asset="A", amount=-1, source="custody", target="transit:o"), "positive amount"),
    ],
)
def test_malformed_transactions_are_refused(build, message: str) -> None:
    with pytest.raises((LedgerError, Unbalanced), match=message):
        build()


ACCOUNTS = ["custody", "transit:o1", "exchange:a1:free", "exchange:a1:locked", "fees:o1"]
moves = st.lists(
    st.tuples(st.sampled_from(["external:chain", *ACCOUNTS]), st.sampled_from(ACCOUNTS), st.integers(1, 10**12)),
    max_size=60,
)


@given(moves)
def test_value_is_only_created_or_destroyed_through_external_accounts(steps) -> None:
    ledger = Ledger()
    for i, (source, target, amount) in enumerate(steps):
        if source == target:
            continue
        try:
            ledger.apply(transfer(f"t{i}", "move", asset="USDT", amount=amount, source=source, target=target))
        except LedgerError:
            continue  # refused: would overdraw; nothing recorded
    bal = ledger.balances()
    assert asset_totals(bal) in ({}, {"USDT": 0})
    assert all(v >= 0 for a, v in bal.items() if not a.startswith("external:"))
    internal = sum(v for a, v in bal.items() if not a.startswith("external:"))
    assert internal == -bal.get("external:chain:USDT", 0)
    assert balances(ledger.transactions) == bal
