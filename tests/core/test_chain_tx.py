"""The one sender's own logic, against a stand-in node: the replacement price and its cap, what a send error means
(the chain's state, not the text), which version mined, the refused replacement, the nonce counter. The adapters'
behaviour on a real chain is tested with them (tests/execution, tests/payouts)."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
from django.utils import timezone
from web3 import Web3
from web3.exceptions import TransactionNotFound, Web3RPCError

from execution.models import CustodyNonce
from mrmarket import chain_tx

SENDER = "0x" + "ab" * 20


class Node:
    """The few eth_* reads the sender makes, over sets the test fills in."""

    def __init__(self, *, pool: set[str] | None = None, mined: set[str] | None = None, count: int = 0) -> None:
        self.pool = pool or set()
        self.mined = mined or set()
        self.count = count
        self.pending_count = count
        self.gas_price = 1
        self.chain_id = 31337
        self.receipts_asked: list[str] = []

    def get_transaction(self, tx_hash: str) -> dict[str, Any]:
        if tx_hash not in self.pool | self.mined:
            raise TransactionNotFound(f"no {tx_hash}")
        return {"hash": tx_hash}

    def get_transaction_receipt(self, tx_hash: str) -> dict[str, Any]:
        self.receipts_asked.append(tx_hash)
        if tx_hash not in self.mined:
            raise TransactionNotFound(f"no receipt for {tx_hash}")
        return {"transactionHash": tx_hash, "status": 1, "blockNumber": 7}

    def get_transaction_count(self, address: str, block: str) -> int:
        return self.pending_count if block == "pending" else self.count


def node(**kwargs: Any) -> tuple[Web3, Node]:
    eth = Node(**kwargs)
    return cast(Web3, SimpleNamespace(eth=eth)), eth


def pending(
    tx_hash: str | None = "0xnew", *, nonce: int | None = 5, versions: tuple[str, ...] = ()
) -> chain_tx.Pending:
    return chain_tx.Pending(sender=SENDER, nonce=nonce, tx_hash=tx_hash, raw_tx="0xraw", versions=lambda: versions)


def refusing(exc: Exception) -> Any:
    def send_raw(raw: str) -> None:
        raise exc

    return send_raw


class Sink:
    def __init__(self) -> None:
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> bool:
        self.calls.append((args, kwargs))
        return True


# ---------------------------------------------------------------------------------------------- the price


@pytest.mark.parametrize(
    ("current", "node_price", "percent", "cap", "expected"),
    [
        (100, 1, 25, None, 125),  # the bump
        (101, 1, 25, None, 127),  # rounded up
        (1, 1, 25, None, 2),  # at least one wei more
        (0, 0, 25, None, 1),
        (100, 500, 25, None, 500),  # never below the node's price
        (100, 1, 25, 110, 110),  # held at the cap
        (100, 1, 25, 0, 125),  # 0: no cap
        (110, 1, 25, 110, None),  # at the cap already: nothing higher
        (120, 1, 25, 110, None),  # above it (the cap was lowered)
        (100, 1, 25, 125, 125),  # exactly the cap is allowed
    ],
)
def test_the_replacement_price_is_bumped_and_capped(current, node_price, percent, cap, expected) -> None:
    assert chain_tx.bump_price(current=current, node_price=node_price, percent=percent, cap=cap) == expected


def test_a_bump_is_due_after_its_seconds() -> None:
    now = timezone.now()
    assert chain_tx.bump_due(since=now - timedelta(seconds=180), seconds=180)
    assert not chain_tx.bump_due(since=now - timedelta(seconds=170), seconds=180)


def test_a_replacement_is_stored_then_alerted_as_a_warning() -> None:
    w3, eth = node()
    eth.gas_price = 3
    signed: list[int] = []
    sink = Sink()
    price = chain_tx.replace(
        w3,
        current=100,
        bump=chain_tx.Bump(seconds=1, percent=25, cap=1000),
        resign=signed.append,
        cap_alert=lambda cap: chain_tx.Alert("cap", f"cap {cap}", dedup="c", detail={}),
        stuck_alert=lambda p: chain_tx.Alert("stuck", f"at {p}", dedup="s", detail={"gas_price": p}, warning=True),
        sink=sink,
    )
    assert (price, signed) == (125, [125])
    assert sink.calls == [(("stuck", "at 125"), {"dedup": "s", "detail": {"gas_price": 125}, "warning": True})]


def test_at_the_cap_nothing_is_signed_and_the_cap_alert_is_critical() -> None:
    w3, _ = node()
    signed: list[int] = []
    sink = Sink()
    price = chain_tx.replace(
        w3,
        current=1000,
        bump=chain_tx.Bump(seconds=1, percent=25, cap=1000),
        resign=signed.append,
        cap_alert=lambda cap: chain_tx.Alert("cap", f"cap {cap}", dedup="c", detail={"n": 1}),
        stuck_alert=lambda p: chain_tx.Alert("stuck", f"at {p}", dedup="s", detail={}, warning=True),
        sink=sink,
    )
    assert (price, signed) == (None, [])
    assert sink.calls == [(("cap", "cap 1000"), {"dedup": "c", "detail": {"n": 1}})]  # no warning: critical


# ---------------------------------------------------------------------------------------------- sending


def test_a_send_the_node_takes_runs_on_sent() -> None:
    w3, _ = node()
    sent: list[str] = []
    assert chain_tx.send(w3, pending(), send_raw=sent.append, on_sent=lambda: sent.append("on_sent"))
    assert sent == ["0xraw", "on_sent"]


def test_a_refusal_for_a_hash_the_node_knows_is_a_send() -> None:
    w3, _ = node(pool={"0xnew"})
    ran: list[str] = []
    assert chain_tx.send(
        w3, pending(), send_raw=refusing(Web3RPCError("already known")), on_sent=lambda: ran.append("x")
    )
    assert ran == []  # the node took it earlier, not now


def test_a_refusal_for_a_used_nonce_is_false_for_the_receipt_to_explain() -> None:
    w3, _ = node(count=6)  # nonce 5 is mined
    assert not chain_tx.send(w3, pending(), send_raw=refusing(Web3RPCError("nonce too low")))


def test_a_refusal_the_chain_does_not_explain_is_refused_by_its_type() -> None:
    w3, _ = node(count=5)
    with pytest.raises(chain_tx.BroadcastRefused) as refused:
        chain_tx.send(w3, pending(), send_raw=refusing(Web3RPCError("nonce too low, whatever the text says")))
    assert refused.value.cause == "Web3RPCError"


def test_only_the_named_refusals_are_classified() -> None:
    w3, _ = node(pool={"0xnew"})
    with pytest.raises(KeyError):
        chain_tx.send(w3, pending(), send_raw=refusing(KeyError("bug")), refusals=(Web3RPCError, OSError))


def test_an_unsigned_row_has_no_nonce_used_and_nothing_known() -> None:
    w3, _ = node(count=10)
    assert not chain_tx.nonce_used(w3, SENDER, None)
    assert chain_tx.nonce_used(w3, SENDER, 9)
    assert not chain_tx.nonce_used(w3, SENDER, 10)
    assert not chain_tx.known(w3, None)
    assert not chain_tx.known(w3, "")


# ---------------------------------------------------------------------------------------------- receipts


def test_the_newest_version_is_asked_first_then_the_stored_ones() -> None:
    w3, eth = node(mined={"0xold"})
    found = chain_tx.mined_version(w3, pending("0xnew", versions=("0xnew", "0xmid", "0xold")))
    assert found is not None
    assert found[0] == "0xold"
    assert eth.receipts_asked == ["0xnew", "0xmid", "0xold"]


def test_no_version_mined_is_none() -> None:
    w3, eth = node()
    assert chain_tx.mined_version(w3, pending(None, versions=())) is None
    assert eth.receipts_asked == []


# ---------------------------------------------------------------------------------------------- keep moving


class Refused(Exception):
    pass


def keep(w3: Web3, tx: chain_tx.Pending, *, replace: Any = None) -> list[str]:
    noted: list[str] = []

    def send(row: chain_tx.Pending) -> bool:
        noted.append(f"send {row.tx_hash}")
        raise Refused

    chain_tx.keep_moving(
        w3,
        tx,
        view=lambda row: row,
        replace=replace,
        send=send,
        refused=Refused,
        on_refused=lambda row: noted.append(f"refused {row.tx_hash}"),
    )
    return noted


def test_a_refused_replacement_while_an_earlier_version_waits_is_no_failure() -> None:
    w3, _ = node(pool={"0xold"})
    replaced = pending("0xnew", versions=("0xnew", "0xold"))
    assert keep(w3, pending("0xold", versions=("0xold",)), replace=lambda row: replaced) == [
        "send 0xnew",
        "refused 0xnew",
    ]


def test_a_refused_send_with_nothing_of_ours_in_the_pool_raises() -> None:
    w3, _ = node()
    with pytest.raises(Refused):
        keep(w3, pending("0xnew", versions=("0xnew", "0xold")))


def test_a_version_the_node_holds_is_not_sent_again() -> None:
    w3, _ = node(pool={"0xnew"})
    assert keep(w3, pending("0xnew")) == []


def test_park_marks_then_raises_the_critical_alert() -> None:
    order: list[str] = []
    sink = Sink()

    def recorded(*args: Any, **kwargs: Any) -> bool:
        order.append("alert")
        return sink(*args, **kwargs)

    chain_tx.park(
        mark=lambda: order.append("marked"),
        alert=chain_tx.Alert("nonce_taken", "parked", dedup="p", detail={"nonce": 5}),
        sink=recorded,
    )
    assert order == ["marked", "alert"]
    assert sink.calls == [(("nonce_taken", "parked"), {"dedup": "p", "detail": {"nonce": 5}})]


# ---------------------------------------------------------------------------------------------- nonces


@pytest.mark.django_db
def test_the_nonce_counter_never_goes_below_the_chains_pending_count() -> None:
    w3, eth = node(count=0)
    eth.pending_count = 3
    assert chain_tx.allocate_nonce(w3, SENDER.upper().replace("0X", "0x"), counters=CustodyNonce) == 3
    assert chain_tx.allocate_nonce(w3, SENDER, counters=CustodyNonce) == 4  # ahead of the chain: the counter
    row = CustodyNonce.objects.get(chain_id=31337, address=SENDER)
    assert row.next_nonce == 5
    eth.pending_count = 9
    assert chain_tx.allocate_nonce(w3, SENDER, counters=CustodyNonce) == 9
