"""The one sender of signed Ethereum transactions that must land: custody's ERC-20 transfers
(`execution.custody`) and the oracles' escrow calls (`payouts.oracle_tx`) are adapters over it.

The discipline, once:
- A transaction is signed and stored before it is broadcast; its nonce is allocated under a row lock, never below
  the chain's pending count, so a retry after a crash sends the same bytes again.
- A send error means what the chain's state says, not what its text says: our hash is known ("already known"),
  the nonce is used ("nonce too low": by one of our versions or not, the receipt tells), else it is refused.
- Whichever stored version mined is found by receipt, and settles only once it is `CHAIN_CONFIRMATIONS` deep
  (`buried`): until then a reorg can take it off the chain, nonce and all, and it must still be sent again.
- A transaction pending too long is replaced by the same call, same nonce, at a higher gas price (stored before it
  is broadcast, capped, with alerts); a replacement the node refuses while an earlier version still waits in its
  pool is no failure.
- A nonce the chain used for none of our versions parks the transaction with a critical alert.

What differs stays with the adapters: their rows (seen here as `Pending`), how a replacement is signed and stored,
their settings (`Bump`), their alert texts (`Alert`) and their error types. The alert sink is passed in (the
alerts table is execution's), so this module imports no app.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.db import models
from django.utils import timezone
from eth_typing import HexStr
from web3 import Web3
from web3.exceptions import TransactionNotFound
from web3.types import TxReceipt

Row = TypeVar("Row")
# `execution.services.alert_raise(kind, message, *, dedup, detail, warning=False)`.
AlertSink = Callable[..., object]


@dataclass(frozen=True)
class Pending:
    """What the sender reads of a stored transaction: a view of its row, taken when it is needed."""

    sender: str
    nonce: int | None  # None: nothing of ours was signed (an adopted row)
    tx_hash: str | None  # the newest version until one mines
    raw_tx: str
    versions: Callable[[], Iterable[str]]  # the hashes of its stored versions, newest first


@dataclass(frozen=True)
class Bump:
    """When a pending transaction is replaced and at what price: after `seconds`, `percent` more (at least the
    node's price), never above `cap` wei (no cap when 0)."""

    seconds: int
    percent: int
    cap: int | None


@dataclass(frozen=True)
class Alert:
    kind: str
    message: str
    dedup: str
    detail: dict[str, Any]
    warning: bool = False


class BroadcastRefused(Exception):
    """The node refused the bytes and the chain's state explains nothing: neither our hash nor a used nonce."""

    def __init__(self, cause: str) -> None:
        super().__init__(f"the chain refused the transaction ({cause})")
        self.cause = cause


def raise_alert(sink: AlertSink, alert: Alert) -> None:
    if alert.warning:
        sink(alert.kind, alert.message, dedup=alert.dedup, detail=alert.detail, warning=True)
    else:
        sink(alert.kind, alert.message, dedup=alert.dedup, detail=alert.detail)


# ---------------------------------------------------------------------------------------------- nonces


def allocate_nonce(w3: Web3, address: str, *, counters: type[models.Model]) -> int:
    """The next nonce of `address` on the served chain, under a row lock on its counter (a model with `chain_id`,
    `address` and `next_nonce`: execution's `CustodyNonce`); never below the chain's pending count."""
    chain_id = w3.eth.chain_id
    manager: Any = counters._default_manager
    row, _ = manager.get_or_create(chain_id=chain_id, address=address.lower())
    row = manager.select_for_update().get(pk=row.pk)
    nonce = max(row.next_nonce, w3.eth.get_transaction_count(Web3.to_checksum_address(address), "pending"))
    row.next_nonce = nonce + 1
    row.save(update_fields=["next_nonce"])
    return int(nonce)


# ---------------------------------------------------------------------------------------------- chain reads


def known(w3: Web3, tx_hash: str | None) -> bool:
    """The node knows the transaction (pending or mined)."""
    if not tx_hash:
        return False
    try:
        w3.eth.get_transaction(HexStr(tx_hash))
    except TransactionNotFound:
        return False
    return True


def nonce_used(w3: Web3, sender: str, nonce: int | None) -> bool:
    """A mined transaction of `sender` holds `nonce` (ours or not)."""
    count = int(w3.eth.get_transaction_count(Web3.to_checksum_address(sender), "latest"))
    return nonce is not None and count > nonce


def mined_version(w3: Web3, tx: Pending) -> tuple[str, TxReceipt] | None:
    """The stored version the chain mined, with its receipt (the newest is asked first); None while none has."""
    hashes = [tx.tx_hash] if tx.tx_hash else []
    hashes += [h for h in tx.versions() if h != tx.tx_hash]
    for tx_hash in hashes:
        try:
            return tx_hash, w3.eth.get_transaction_receipt(HexStr(tx_hash))
        except TransactionNotFound:
            continue
    return None


def buried(w3: Web3, receipt: TxReceipt, confirmations: int) -> bool:
    """The receipt's block has `confirmations` blocks on it, itself included (1: mined is enough)."""
    return int(w3.eth.block_number) - int(receipt["blockNumber"]) + 1 >= confirmations


# ---------------------------------------------------------------------------------------------- sending


def send(
    w3: Web3,
    tx: Pending,
    *,
    send_raw: Callable[[str], object],
    refusals: tuple[type[BaseException], ...] = (Exception,),
    on_sent: Callable[[], object] | None = None,
) -> bool:
    """Broadcast the newest version through `send_raw`. False when the chain has used its nonce already (by one
    of our versions or by a transaction that is not ours: the caller finds out which by receipt); a refusal
    (`refusals`) the chain's state does not explain raises BroadcastRefused. `on_sent` runs when the node took
    the bytes."""
    try:
        send_raw(tx.raw_tx)
    except refusals as exc:  # "already known", "nonce too low", "underpriced": the chain's state decides, not the text
        if known(w3, tx.tx_hash):
            return True
        if nonce_used(w3, tx.sender, tx.nonce):
            return False
        raise BroadcastRefused(type(exc).__name__) from None
    if on_sent is not None:
        on_sent()
    return True


def keep_moving(
    w3: Web3,
    row: Row,
    *,
    view: Callable[[Row], Pending],
    replace: Callable[[Row], Row] | None,
    send: Callable[[Row], bool],
    refused: type[Exception],
    on_refused: Callable[[Row], object],
) -> None:
    """A pending transaction: replaced first when `replace` is given (its bump is due), then sent again if the
    node dropped it. `send` raising `refused` for a replacement while an earlier version still waits in the
    node's pool is no failure (that version can still mine, and the next bump offers more): `on_refused` notes it."""
    if replace is not None:
        row = replace(row)
    tx = view(row)
    if known(w3, tx.tx_hash):
        return
    try:
        send(row)  # False: the nonce was used meanwhile; the next step finds by receipt which version
    except refused:
        earlier = [h for h in tx.versions() if h != tx.tx_hash]
        if not any(known(w3, tx_hash) for tx_hash in earlier):
            raise
        on_refused(row)


# ---------------------------------------------------------------------------------------------- replacing


def bump_due(*, since: datetime, seconds: int) -> bool:
    """The newest version, signed at `since`, has waited `seconds` or more."""
    return timezone.now() - since >= timedelta(seconds=seconds)


def bump_price(*, current: int, node_price: int, percent: int, cap: int | None) -> int | None:
    """The replacement's gas price: `percent` more than `current` (at least 1 wei more), at least the node's
    price, held at `cap`; None when `current` is at the cap already (nothing higher may be offered)."""
    price = max(node_price, current + max(1, -(-current * percent // 100)))
    if cap and price > cap:
        if current >= cap:
            return None
        price = cap
    return price


def replace(
    w3: Web3,
    *,
    current: int,
    bump: Bump,
    resign: Callable[[int], object],
    cap_alert: Callable[[int], Alert],
    stuck_alert: Callable[[int], Alert],
    sink: AlertSink,
) -> int | None:
    """Replace a transaction pending at `current`: `resign(price)` signs and stores the new version (before
    anything broadcasts it), then the stuck alert (`stuck_alert(price)`) is raised. At the cap already, only the
    cap alert (`cap_alert(cap)`) is raised and nothing is signed. The new price, or None."""
    price = bump_price(current=current, node_price=int(w3.eth.gas_price), percent=bump.percent, cap=bump.cap)
    if price is None:
        raise_alert(sink, cap_alert(int(bump.cap or 0)))
        return None
    resign(price)
    raise_alert(sink, stuck_alert(price))
    return price


def park(*, mark: Callable[[], object], alert: Alert, sink: AlertSink) -> None:
    """The nonce went to a transaction that is none of ours: `mark` records the row parked, then the critical
    alert is raised."""
    mark()
    raise_alert(sink, alert)
