"""Fill booking maths (pure, no database): what a report's fills and fees become in the ledger."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from execution.domain.fills import MAX_UNITS, fill_transactions, less
from execution.domain.ledger import Posting, Transaction
from wire.errors import TooLarge

DECIMALS = {"MMT": 18, "USDT": 6, "BNB": 18}


def _book(fills: list[dict[str, str]]) -> list[Transaction]:
    return fill_transactions(fills, order_id=7, exchange_account_id=3, symbol="MMT/USDT", decimals=DECIMALS.__getitem__)


def _fill(side: str, amount: str, price: str, fee: str = "0", fee_asset: str = "USDT", trade: str = "t1") -> dict:
    return {"trade_id": trade, "side": side, "amount": amount, "price": price, "fee": fee, "fee_asset": fee_asset}


def test_a_buy_brings_base_and_pays_quote_and_its_fee_goes_to_the_exchange() -> None:
    fill, fee = _book([_fill("buy", "2", "0.5", fee="0.001", fee_asset="BNB")])
    assert fill.key == "o7-fill-t1"
    assert fill.kind == "fill_settle"
    assert sorted(fill.postings) == sorted(
        (
            Posting("exchange:a3:free:MMT", "MMT", 2 * 10**18),
            Posting("external:market:MMT", "MMT", -(2 * 10**18)),
            Posting("exchange:a3:free:USDT", "USDT", -1_000_000),
            Posting("external:market:USDT", "USDT", 1_000_000),
        )
    )
    assert fee.key == "o7-fee-t1"
    assert fee.kind == "fee_debit"
    assert {p.account: p.amount for p in fee.postings} == {
        "exchange:a3:free:BNB": -(10**15),
        "external:fees:BNB": 10**15,
    }


def test_what_leaves_rounds_up_and_what_arrives_rounds_down() -> None:
    (fill,) = _book([_fill("buy", "1", "0.0000015")])  # 1.5 units of USDT leave: 2 are booked
    assert {p.account: p.amount for p in fill.postings}["exchange:a3:free:USDT"] == -2
    assert fill.kind == "fill_settle_rounded"
    (sale,) = _book([_fill("sell", "1", "0.0000015")])  # 1.5 units arrive: 1 is booked
    assert {p.account: p.amount for p in sale.postings}["exchange:a3:free:USDT"] == 1


def test_a_side_that_rounds_to_nothing_books_no_posting_and_no_fee_books_no_fee() -> None:
    (fill,) = _book([_fill("sell", "0.000000000000000001", "0.0000001")])  # quote: 1e-25 USDT, below a unit
    assert {p.asset for p in fill.postings} == {"MMT"}
    assert _book([_fill("sell", "0", "1")]) == []


def test_an_amount_beyond_a_ledger_column_is_refused() -> None:
    huge = f"{MAX_UNITS + 1}e-18"  # one base unit of MMT more than a ledger amount holds
    with pytest.raises(TooLarge):
        _book([_fill("buy", huge, "0")])


def test_less_moves_units_back_within_the_same_key_and_kind() -> None:
    (fill,) = _book([_fill("buy", "1", "0.0000015")])
    smaller = less(fill, account="exchange:a3:free:USDT", units=1)
    assert (smaller.key, smaller.kind) == (fill.key, fill.kind)
    assert {p.account: p.amount for p in smaller.postings}["exchange:a3:free:USDT"] == -1
    assert {p.account: p.amount for p in smaller.postings}["external:market:USDT"] == 1


amounts = st.decimals(min_value=0, max_value=10**9, places=12, allow_nan=False, allow_infinity=False)
prices = st.decimals(min_value=0, max_value=10**6, places=12, allow_nan=False, allow_infinity=False)
fill_docs = st.builds(
    _fill,
    side=st.sampled_from(["buy", "sell"]),
    amount=amounts.map(str),
    price=prices.map(str),
    fee=amounts.map(str),
    fee_asset=st.sampled_from(["MMT", "USDT", "BNB"]),
    trade=st.uuids().map(str),
)


@given(st.lists(fill_docs, max_size=5))
def test_every_transaction_balances_per_asset_and_the_account_never_gains_more_than_the_fill(fills) -> None:
    for tx in _book(fills):
        totals: dict[str, int] = defaultdict(int)
        for posting in tx.postings:
            totals[posting.asset] += posting.amount
        assert all(total == 0 for total in totals.values())  # counted by hand, not by Transaction's own check
        assert all(p.account.startswith(("exchange:a3:free:", "external:")) for p in tx.postings)
    for f, booked in zip(fills, _by_fill(fills), strict=True):
        base_in = booked.get("exchange:a3:free:MMT", 0)
        exact_base = Decimal(f["amount"]).scaleb(18)
        # What arrives is never more than the exact amount; what leaves is never less (ADR 0013).
        assert (base_in <= exact_base) if f["side"] == "buy" else (-base_in >= exact_base)


def _by_fill(fills: list[dict]) -> list[dict[str, int]]:
    """Each fill's own settlement postings (fees apart), by account."""
    out = []
    for f in fills:
        settle = [tx for tx in _book([f]) if tx.key.startswith("o7-fill-")]
        out.append({p.account: p.amount for tx in settle for p in tx.postings})
    return out
