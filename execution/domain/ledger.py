"""Double-entry ledger maths. Pure: no Django, no I/O (ADR 0007).

Every movement of value is a transaction of postings in integer base units; within a transaction the
postings of each asset sum to zero. Balances are derived from postings, never stored. Value enters or leaves
the system only through the `external:` accounts (a deposit from outside, a withdrawal to outside, a fee an
exchange keeps, a trading gain or loss against the market), so the sum over all accounts of each asset is
always zero, and the sum over the non-external accounts equals what the external accounts record as
having come in.

Account names are `kind:scope...:asset`, for example:
    custody:USDT                          the custody wallet, free
    custody:reserved:o7:USDT              in the custody wallet, reserved for order 7 until its transfer is sent
    transit:o7:USDT                       sent from custody (or back to it), not yet credited at the other end
    exchange:a3:free:USDT                 on exchange account 3, available
    fees:order-7:USDT                     fees paid (the exchange's side is external:fees)
    external:chain:USDT / external:market:USDT / external:fees:USDT
    external:unbooked:a3:BNB              held on exchange account 3 before the ledger saw it arrive (see below)

The functions below (`custody_reserved`, `in_transit`, `exchange_holdings`, ...) are the only place these names
are built.

What an MM order holds on its exchange account is, per asset, the sum of its own entries (keys `o<pk>-…`) on
`exchange:a<id>:free:<asset>`: every asset its fills and fees touch, custody's or not. An asset custody does not
hold is counted in `NON_CUSTODY_DECIMALS` base units. When a fill or fee spends such an asset from a balance the
ledger never saw arrive (a fee paid in BNB the account already held), the shortfall is first credited from
`external:unbooked:a<id>:<asset>` under a key of the account, not the order: the account's balance stays
non-negative and the order's holdings show, negative, what it consumed.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

ACCOUNT_RE = re.compile(r"(custody|transit|exchange|fees|pnl|rewards|external)(:[A-Za-z0-9._\-]+)+")
KEY_RE = re.compile(r"[A-Za-z0-9._:\-]{1,200}")
# The base-unit scale of an asset custody does not hold: fixed (never an exchange's precision, which can change
# under entries already booked), and fine enough for any exchange's balances, so such amounts book exactly.
NON_CUSTODY_DECIMALS = 18


# --- named accounts: the one place their names are spelt (rows already booked depend on these exact strings) --
# Each returns the account *prefix*; `transfer` (or `:<asset>`) completes it with the asset.

CUSTODY = "custody"  # the custody wallet, free
EXTERNAL_CHAIN = "external:chain"  # value from outside arriving on chain (a top-up of the custody wallet)
EXTERNAL_FEES = "external:fees"  # a fee an exchange (or the chain) keeps


def custody_reserved(order_id: int) -> str:
    """In the custody wallet, reserved for an order from `fund` until its transfer is booked as sent."""
    return f"custody:reserved:o{order_id}"


def in_transit(order_id: int) -> str:
    """Sent between custody and the order's exchange account (either way), not yet credited at the other end."""
    return f"transit:o{order_id}"


def exchange_holdings(exchange_account_id: int) -> str:
    """The account prefix of what an exchange account holds, available; `:<asset>` completes it."""
    return f"exchange:a{exchange_account_id}:free"


def exchange_scope(exchange_account_id: int) -> str:
    """Every ledger account of one exchange account (`exchange:a<id>`): a prefix to sum or filter by."""
    return f"exchange:a{exchange_account_id}"


def unbooked_source(exchange_account_id: int) -> str:
    """Where a balance the exchange account held before the ledger saw it arrive is recognised from."""
    return f"external:unbooked:a{exchange_account_id}"


def market(asset: str) -> str:
    """The market's side of a fill: what a trade gives or takes in `asset` (a whole account name)."""
    return f"external:market:{asset}"


def of_asset(account: str, asset: str) -> str:
    """A whole account name: an account prefix above with the asset it holds."""
    return f"{account}:{asset}"


class LedgerError(ValueError):
    pass


class Unbalanced(LedgerError):
    pass


@dataclass(frozen=True, order=True)
class Posting:
    account: str
    asset: str
    amount: int  # base units; positive = debit (value into the account), negative = credit

    def __post_init__(self) -> None:
        if not ACCOUNT_RE.fullmatch(self.account):
            raise LedgerError(f"malformed account name {self.account!r}")
        if not self.account.endswith(f":{self.asset}"):
            raise LedgerError(f"account {self.account} does not hold {self.asset}")
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise LedgerError("amounts are integers in base units")
        if self.amount == 0:
            raise LedgerError("a posting of zero moves nothing")

    @property
    def is_external(self) -> bool:
        return self.account.startswith("external:")


@dataclass(frozen=True)
class Transaction:
    key: str  # idempotency key: applying the same transaction twice records it once
    kind: str  # deposit_credit, withdraw_debit, reserve_lock, fill_settle, fee_debit, reward_credit, reversal...
    postings: tuple[Posting, ...]

    def __post_init__(self) -> None:
        if not KEY_RE.fullmatch(self.key):
            raise LedgerError(f"malformed idempotency key {self.key!r}")
        if len(self.postings) < 2:
            raise Unbalanced("a transaction needs at least two postings")
        totals: dict[str, int] = defaultdict(int)
        for posting in self.postings:
            totals[posting.asset] += posting.amount
        unbalanced = {asset: total for asset, total in totals.items() if total != 0}
        if unbalanced:
            raise Unbalanced(f"postings do not sum to zero per asset: {unbalanced}")

    def same_as(self, other: Transaction) -> bool:
        return self.kind == other.kind and sorted(self.postings) == sorted(other.postings)


def transfer(key: str, kind: str, *, asset: str, amount: int, source: str, target: str) -> Transaction:
    """The common two-posting transaction: `amount` of `asset` from `source` to `target`."""
    if amount <= 0:
        raise LedgerError("a transfer moves a positive amount")
    return Transaction(
        key=key,
        kind=kind,
        postings=(Posting(f"{source}:{asset}", asset, -amount), Posting(f"{target}:{asset}", asset, amount)),
    )


def balances(transactions: Iterable[Transaction]) -> dict[str, int]:
    result: dict[str, int] = defaultdict(int)
    for tx in transactions:
        for posting in tx.postings:
            result[posting.account] += posting.amount
    return {account: amount for account, amount in result.items() if amount != 0}


def asset_totals(balance: Mapping[str, int]) -> dict[str, int]:
    """Per asset, the sum over every account: always zero for a consistent ledger."""
    totals: dict[str, int] = defaultdict(int)
    for account, amount in balance.items():
        totals[account.rsplit(":", 1)[1]] += amount
    return dict(totals)
