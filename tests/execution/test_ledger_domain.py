"""Double-entry ledger rules and invariants (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from execution.domain.ledger import (
    LedgerError,
    Posting,
    Transaction,
    Unbalanced,
    asset_totals,
    balances,
    transfer,
)


def test_a_full_round_trip_is_explained_by_entries() -> None:
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
    bal = balances(steps)
    assert bal.get("custody:USDT", 0) == 400_000
    assert bal.get("exchange:a3:free:USDT", 0) == 500_000
    assert bal.get("exchange:a3:locked:USDT", 0) == 0
    assert bal.get("exchange:a3:free:MRM", 0) == 99_900
    assert bal.get("fees:o7:MRM", 0) == 100
    assert asset_totals(bal) == {"USDT": 0, "MRM": 0}


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: Transaction("k", "x", (Posting("custody:USDT", "USDT", 5),)),
            "a transaction needs at least two postings",
        ),
        (
            lambda: Transaction("k", "x", (Posting("custody:USDT", "USDT", 5), Posting("transit:o:USDT", "USDT", -4))),
            "postings do not sum to zero per asset: {'USDT': 1}",
        ),
        (lambda: Posting("custody:USDT", "MRM", 5), "account custody:USDT does not hold MRM"),
        (lambda: Posting("wallet:USDT", "USDT", 5), "malformed account name 'wallet:USDT'"),
        (lambda: Posting("custody:USDT", "USDT", 0), "a posting of zero moves nothing"),
        (lambda: Posting("custody:USDT", "USDT", 1.5), "amounts are integers in base units"),  # type: ignore[arg-type]
        (lambda: Posting("custody:USDT", "USDT", True), "amounts are integers in base units"),
        (
            lambda: transfer("bad key!", "x", asset="A", amount=1, source="custody", target="transit:o"),
            "malformed idempotency key 'bad key!'",
        ),
        (
            lambda: transfer("k", "x", asset="A", amount=-1, source="custody", target="transit:o"),
            "a transfer moves a positive amount",
        ),
        # Zero is refused by `transfer` itself, before a zero posting is built.
        (
            lambda: transfer("k", "x", asset="A", amount=0, source="custody", target="transit:o"),
            "a transfer moves a positive amount",
        ),
    ],
)
def test_malformed_transactions_are_refused(build, message: str) -> None:
    with pytest.raises((LedgerError, Unbalanced)) as refused:
        build()
    assert str(refused.value) == message


def test_a_transfer_is_two_postings_of_its_kind_from_source_to_target() -> None:
    tx = transfer("o7-send", "withdraw_debit", asset="USDT", amount=5, source="custody", target="transit:o7")
    assert (tx.key, tx.kind) == ("o7-send", "withdraw_debit")
    assert tx.postings == (Posting("custody:USDT", "USDT", -5), Posting("transit:o7:USDT", "USDT", 5))


def test_the_same_transaction_is_the_same_kind_and_postings_in_any_order() -> None:
    a, b = Posting("custody:USDT", "USDT", -5), Posting("transit:o7:USDT", "USDT", 5)
    tx = Transaction("k1", "withdraw_debit", (a, b))
    assert tx.same_as(Transaction("k1", "withdraw_debit", (b, a)))
    assert not tx.same_as(Transaction("k1", "reversal", (a, b)))
    c, d = Posting("custody:USDT", "USDT", -6), Posting("transit:o7:USDT", "USDT", 6)
    assert not tx.same_as(Transaction("k1", "withdraw_debit", (c, d)))


def test_asset_totals_show_what_an_inconsistent_ledger_is_off_by() -> None:
    assert asset_totals({"custody:USDT": 5, "transit:o7:USDT": 2, "custody:MRM": -3}) == {"USDT": 7, "MRM": -3}


moves = st.lists(
    st.tuples(
        st.sampled_from(["external:chain", "custody", "transit:o1", "exchange:a1:free"]),
        st.sampled_from(["custody", "transit:o1", "exchange:a1:free", "fees:o1"]),
        st.sampled_from(["USDT", "MMT"]),
        st.integers(1, 10**24),
    ),
    max_size=40,
)


@given(moves)
def test_balances_are_each_accounts_running_sum_and_the_totals_cancel(steps) -> None:
    txs = [
        transfer(f"t{i}", "move", asset=asset, amount=amount, source=source, target=target)
        for i, (source, target, asset, amount) in enumerate(steps)
    ]
    # Counted by hand, move by move, not through the module's postings.
    expected: dict[str, int] = {}
    for source, target, asset, amount in steps:
        expected[f"{source}:{asset}"] = expected.get(f"{source}:{asset}", 0) - amount
        expected[f"{target}:{asset}"] = expected.get(f"{target}:{asset}", 0) + amount
    assert balances(txs) == {account: n for account, n in expected.items() if n}
    assert all(total == 0 for total in asset_totals(balances(txs)).values())
