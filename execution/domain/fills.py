"""Booking a job's fills in the ledger: each fill against the market, and its fee to the exchange, as balanced
transactions in base units. Pure: no Django, no I/O; the caller passes the order's plain values and how many
decimals each asset is booked in (ADR 0007, ADR 0013)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from execution.domain.ledger import (
    EXTERNAL_FEES,
    Posting,
    Transaction,
    exchange_holdings,
    market,
    of_asset,
    transfer,
)
from execution.domain.units import exact_product, to_decimal, units_toward
from wire.errors import TooLarge

# What a ledger amount column holds (NUMERIC(78,0), ±uint256): a fill beyond it is refused, never truncated.
MAX_UNITS = 2**256 - 1


def _units(value: Decimal, asset: str, decimals: int, *, up: bool) -> tuple[int, bool]:
    """In base units: what leaves the account rounded up, what arrives rounded down (ADR 0013); and whether
    that rounded anything."""
    whole, rounded = units_toward(value, decimals, up=up)
    if whole > MAX_UNITS:
        raise TooLarge(f"{value} {asset} is more base units than a ledger amount holds", path="report.fills")
    return whole, rounded


def _pair(account: str, counter: str, asset: str, units: int) -> tuple[Posting, ...]:
    """`units` of `asset` into `account` from `counter`; nothing when it rounds to zero base units."""
    return (Posting(account, asset, units), Posting(counter, asset, -units)) if units else ()


def fill_transactions(
    fills: Sequence[Mapping[str, Any]],
    *,
    order_id: int,
    exchange_account_id: int,
    symbol: str,
    decimals: Callable[[str], int],
) -> list[Transaction]:
    """Each fill against the market, and its fee to the exchange, in base units of each asset (`decimals(asset)`:
    custody's token decimals, or the fixed scale for an asset custody does not hold), so every asset the exchange
    reports is booked. TooLarge (refusing the report) for an amount beyond what the ledger holds.

    The exchange keeps balances finer than a token's base unit; where a value does not fit, we book what we
    may hold at most (what leaves the account — a buy's quote, a sale's base, fees — rounded up, what arrives
    rounded down), so the ledger never claims more than the exchange holds; such entries are of a `_rounded`
    kind (booked with the memo `rounded`, which reconciliation tolerates as dust)."""
    base, quote = symbol.split("/")
    here = exchange_holdings(exchange_account_id)
    out: list[Transaction] = []
    for f in fills:
        amount, price = to_decimal(f["amount"]), to_decimal(f["price"])
        buy = f["side"] == "buy"
        base_units, base_rounded = _units(amount, base, decimals(base), up=not buy)
        quote_units, quote_rounded = _units(exact_product(amount, price), quote, decimals(quote), up=buy)
        sign = 1 if buy else -1
        postings = (
            *_pair(of_asset(here, base), market(base), base, sign * base_units),
            *_pair(of_asset(here, quote), market(quote), quote, -sign * quote_units),
        )
        kind = "fill_settle_rounded" if base_rounded or quote_rounded else "fill_settle"
        if postings:
            out.append(Transaction(key=f"o{order_id}-fill-{f['trade_id']}", kind=kind, postings=postings))
        fee = to_decimal(f["fee"])
        if fee > 0:
            fee_asset = f["fee_asset"]
            fee_units, fee_rounded = _units(fee, fee_asset, decimals(fee_asset), up=True)
            out.append(
                transfer(
                    f"o{order_id}-fee-{f['trade_id']}",
                    "fee_debit_rounded" if fee_rounded else "fee_debit",
                    asset=fee_asset,
                    amount=fee_units,
                    source=here,
                    target=EXTERNAL_FEES,
                )
            )
    return out


def less(tx: Transaction, *, account: str, units: int) -> Transaction:
    """`tx` with `units` fewer leaving `account` (and arriving at its counterpart): the same key and kind."""
    postings = list(tx.postings)
    i = next(i for i, p in enumerate(postings) if p.account == account and p.amount < 0)
    asset = postings[i].asset
    j = next(j for j, p in enumerate(postings) if j != i and p.asset == asset and p.amount > 0)
    postings[i] = Posting(account, asset, postings[i].amount + units)
    postings[j] = Posting(postings[j].account, asset, postings[j].amount - units)
    return Transaction(key=tx.key, kind=tx.kind, postings=tuple(p for p in postings if p.amount))
