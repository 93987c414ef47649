"""The one assertion behind every chaos test (docs/reliability.md), in pieces any test can call after its fault:

- `assert_ledger_balanced`: every ledger transaction balances per asset, the whole ledger sums to zero per asset,
  and no account that holds real value (custody, transit, an exchange account) is below zero.
- `assert_no_duplicates`: no transfer, withdrawal, order, report or payment counted twice, by the database's
  rows (and, given a chain, by the chain's own events).
- `assert_exchange_agrees` / `assert_exchange_orders_once` / `assert_withdrawals_once`: the exchange, asked through
  its public API with the account's own key (never the simulator's internals), says what the ledger says.
- `assert_custody_transfers_once`: each custody transfer the database holds as mined is one `Transfer` on chain.
- `assert_paid_once` / `assert_recorded_once` / `assert_published_once`: the escrow's events pay every leaf exactly
  once and record or publish an epoch once.
- `assert_resumed_or_parked`: the flow went on by itself, or it stopped where it is with an open alert.

Generic on purpose: each takes the rows or clients it checks, none builds a fixture, so a test of any fault (the
matrix here, the crash tests, the restart tests) imports them as they are.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from web3 import Web3

from execution import accounts, selectors
from execution.domain.ledger import asset_totals
from execution.domain.units import units_down
from execution.funds import asset_decimals
from execution.models import (
    Alert,
    CustodyTransfer,
    ExchangeAccount,
    ExchangeWithdrawal,
    ExecutionReport,
    LedgerPosting,
    LedgerTransaction,
    MMOrder,
    MMOrderTransition,
)

# Accounts that stand for value held somewhere real: never negative. (`external:` accounts are the world's side,
# `fees:`/`pnl:`/`rewards:` are bookkeeping of flows, both signed by nature.)
HELD = ("custody:", "transit:", "exchange:")

# Steps an order takes at most once per attempt (an attempt ends with `fail`): a second one is a double count.
ONCE_PER_ATTEMPT = ("fund", "transfer_sent", "transfer_mined", "deposit_confirmed", "orders_settled")


# ---------------------------------------------------------------------------------------------- the ledger


def assert_ledger_balanced() -> None:
    """Each transaction's postings sum to zero per asset; the ledger's accounts sum to zero per asset; no account
    of real holdings is negative."""
    per_tx: dict[tuple[int, str], int] = defaultdict(int)
    for tx_id, asset, amount in LedgerPosting.objects.values_list("transaction_id", "asset", "amount"):
        per_tx[(tx_id, asset)] += int(amount)
    unbalanced = {key: total for key, total in per_tx.items() if total}
    assert not unbalanced, f"ledger transactions that do not balance (transaction, asset): {unbalanced}"
    empty = LedgerTransaction.objects.filter(postings__isnull=True).values_list("key", flat=True)
    assert not list(empty), f"ledger transactions without postings: {list(empty)}"
    balances = selectors.ledger_balances()
    totals = {asset: total for asset, total in asset_totals(balances).items() if total}
    assert not totals, f"the ledger does not sum to zero per asset: {totals}"
    negative = {a: b for a, b in balances.items() if a.startswith(HELD) and b < 0}
    assert not negative, f"accounts of real holdings below zero: {negative}"


# ---------------------------------------------------------------------------------------------- the database


def assert_no_duplicates(orders: Iterable[MMOrder] | None = None) -> None:
    """No fact counted twice in the database: for each order (every order when None), each once-per-attempt step
    at most once per attempt, at most one custody transfer per direction, at most one withdrawal in flight or
    confirmed per asset and attempt, its reports a gapless run from 0 per job, and one ledger entry per fill its
    reports carry."""
    chosen = list(MMOrder.objects.all() if orders is None else orders)
    for order in chosen:
        events = list(
            MMOrderTransition.objects.filter(order_id=order.pk).order_by("pk").values_list("event", flat=True)
        )
        attempt, seen = 0, Counter[tuple[int, str]]()
        for event in events:
            if event == "fail":
                attempt += 1
            elif event in ONCE_PER_ATTEMPT:
                seen[(attempt, event)] += 1
        twice = {key: n for key, n in seen.items() if n > 1}
        assert not twice, f"order {order.pk}: steps taken more than once (attempt, event): {twice}"

        directions = Counter(CustodyTransfer.objects.filter(order_id=order.pk).values_list("direction", flat=True))
        assert all(n == 1 for n in directions.values()), f"order {order.pk}: custody transfers {dict(directions)}"

        # A failed withdrawal is history; what it left is asked for again under a new row. Live or confirmed: one
        # per asset for what the order holds (a second would withdraw the same holdings twice).
        live = Counter(
            ExchangeWithdrawal.objects.filter(order_id=order.pk)
            .exclude(status=ExchangeWithdrawal.Status.FAILED)
            .values_list("asset", flat=True)
        )
        assert all(n <= max(1, attempt + 1) for n in live.values()), f"order {order.pk}: withdrawals {dict(live)}"

        reports = ExecutionReport.objects.filter(order_id=order.pk)
        per_job: dict[str, list[int]] = defaultdict(list)
        for job_id, sequence in reports.order_by("job_id", "sequence").values_list("job_id", "sequence"):
            per_job[job_id].append(sequence)
        for job_id, sequences in per_job.items():
            assert sequences == list(range(len(sequences))), f"job {job_id}: report sequences {sequences}"
        fills = sum(reports.values_list("fills", flat=True))
        booked = LedgerTransaction.objects.filter(key__startswith=f"o{order.pk}-fill-").count()
        if "job_lost" in events:
            # A lost job's fills after its last report are booked from the exchange's trade history instead
            # (execution.lost_job), under the same key by trade id: more than reported, never fewer. The caller
            # holds them to the exchange's trades (`assert_fills_are_the_trades`).
            assert booked >= fills, f"order {order.pk}: {fills} fills reported, only {booked} booked"
        else:
            assert booked == fills, f"order {order.pk}: {fills} fills reported, {booked} booked"


# ---------------------------------------------------------------------------------------------- the exchange


def exchange_holdings(account: ExchangeAccount) -> dict[str, int]:
    """What the exchange says the account holds (free + locked), per asset, in base units, asked with its key."""
    client = accounts.exchange_account_client(account=account)
    total = client.fetch_balance().get("total") or {}
    return {asset: units_down(amount, asset_decimals(asset)) for asset, amount in total.items() if amount}


def assert_exchange_agrees(account: ExchangeAccount, *, assets: Iterable[str] | None = None) -> None:
    """The ledger's holdings of `account` are what the exchange holds, to the base unit but for the documented dust
    of rounded entries (call it when no job trades on the account and no transfer is on its way: the reports are
    the record while a job runs)."""
    actual = exchange_holdings(account)
    ledger = {
        posting.rsplit(":", 1)[1]: amount
        for posting, amount in selectors.ledger_balances(prefix=f"exchange:a{account.pk}:free:").items()
    }
    chosen = set(assets) if assets is not None else set(actual) | set(ledger)
    differ = {}
    for asset in chosen:
        # A fill or fee booked rounded (memo "rounded", toward us never holding more than is there, ADR 0013)
        # leaves at most one base unit on the exchange that the ledger does not count: that dust, never less.
        dust = (
            LedgerTransaction.objects.filter(memo="rounded", postings__account=f"exchange:a{account.pk}:free:{asset}")
            .distinct()
            .count()
        )
        if not 0 <= actual.get(asset, 0) - ledger.get(asset, 0) <= dust:
            differ[asset] = (ledger.get(asset, 0), actual.get(asset, 0), dust)
    assert not differ, f"exchange account {account.pk} (ledger, exchange, rounded entries): {differ}"


def assert_exchange_orders_once(account: ExchangeAccount, symbol: str, *, open_allowed: bool = False) -> list[Any]:
    """Every client order id reached the exchange once; nothing rests unless `open_allowed`. The orders."""
    client = accounts.exchange_account_client(account=account)
    orders: list[Any] = client.fetch_orders(symbol, limit=1000)
    cids = Counter(o["clientOrderId"] for o in orders)
    twice = {cid: n for cid, n in cids.items() if n > 1}
    assert not twice, f"client order ids that reached the exchange twice: {twice}"
    if not open_allowed:
        resting = [o["clientOrderId"] for o in orders if o["status"] == "open"]
        assert not resting, f"orders still resting: {resting}"
    return orders


def assert_fills_are_the_trades(order: MMOrder) -> None:
    """Every trade the exchange lists for the order's key (its own account: nothing else trades on it) is one
    booked fill of the order, and no fill is booked that the exchange does not list."""
    client = accounts.exchange_account_client(account=order.exchange_account)
    trades = Counter(str(t["id"]) for t in client.fetch_my_trades(order.symbol, limit=1000))
    assert all(n == 1 for n in trades.values()), f"trades listed twice: {trades}"
    prefix = f"o{order.pk}-fill-"
    keys = LedgerTransaction.objects.filter(key__startswith=prefix).values_list("key", flat=True)
    booked = {key.removeprefix(prefix) for key in keys}  # a ledger key is unique: each booked once
    listed = set(trades)
    assert booked == listed, f"traded, not booked: {listed - booked}; booked, not traded: {booked - listed}"


def assert_withdrawals_once(order: MMOrder, treasury: ExchangeAccount) -> None:
    """Each withdrawal row not failed is one withdrawal in the exchange's own history (by our client id), and the
    exchange holds no withdrawal of ours that no row knows."""
    client = accounts.exchange_account_client(account=treasury)
    rows = list(ExchangeWithdrawal.objects.filter(order=order))
    for asset in {r.asset for r in rows}:
        listed = Counter(
            str(w["info"].get("withdrawOrderId") or "")
            for w in client.fetch_withdrawals(asset)
            if w["info"].get("withdrawOrderId")
        )
        ours = {r.client_id: r for r in rows if r.asset == asset}
        for cid, n in listed.items():
            if cid in ours:
                assert n == 1, f"withdrawal {cid} is {n} withdrawals on the exchange"
        for row in ours.values():
            if row.status in (ExchangeWithdrawal.Status.SENT, ExchangeWithdrawal.Status.CONFIRMED):
                assert listed[row.client_id] == 1, f"withdrawal {row.client_id} ({row.status}) unknown to the exchange"


# ---------------------------------------------------------------------------------------------- the chain


ERC20_TRANSFER = Web3.keccak(text="Transfer(address,address,uint256)")


def assert_custody_transfers_once(w3: Web3, transfers: Iterable[CustodyTransfer]) -> None:
    """Each transfer the database holds as mined is exactly one ERC-20 `Transfer` on chain, the one it names
    (whichever version mined), and the chain holds no other transfer of that amount from that sender to that
    address than the rows say (read from the chain's logs)."""
    groups: dict[tuple[str, str, str, int], list[CustodyTransfer]] = defaultdict(list)
    for sent in transfers:
        sent.refresh_from_db()
        groups[(sent.token.lower(), sent.from_address.lower(), sent.to_address.lower(), int(sent.amount))].append(sent)
    for (token, sender, to, amount), rows in groups.items():
        topics: list[Any] = [
            ERC20_TRANSFER,
            "0x" + "00" * 12 + sender.removeprefix("0x"),
            "0x" + "00" * 12 + to.removeprefix("0x"),
        ]
        logs = w3.eth.get_logs(
            {"address": Web3.to_checksum_address(token), "fromBlock": 0, "toBlock": "latest", "topics": topics}
        )
        hashes = Counter(
            "0x" + bytes(log["transactionHash"]).hex().removeprefix("0x")
            for log in logs
            if int.from_bytes(bytes(log["data"]), "big") == amount
        )
        mined = [r for r in rows if r.status == CustodyTransfer.Status.MINED]
        for row in mined:
            assert hashes[row.tx_hash.lower()] == 1, f"custody transfer {row.pk} is not one transfer on chain: {hashes}"
        extra = sum(hashes.values()) - len(mined)
        assert 0 <= extra <= len(rows) - len(mined), f"transfers on chain no mined row explains: {hashes}"


def escrow_events(w3: Web3, escrow: Any, name: str, **filters: Any) -> list[Any]:
    return list(getattr(escrow.events, name)().get_logs(from_block=0, argument_filters=filters or None))


def leaves_paid(w3: Web3, escrow: Any, epoch: int) -> Counter[int]:
    """How many times the escrow's events say each leaf of `epoch` was paid (claimed or distributed)."""
    seen: Counter[int] = Counter()
    for event in escrow_events(w3, escrow, "Claimed", epoch=epoch):
        seen[int(event.args.index)] += 1
    for event in escrow_events(w3, escrow, "Distributed", epoch=epoch):
        for index in range(event.args.firstIndex, event.args.firstIndex + event.args.count):
            seen[index] += 1
    return seen


def assert_paid_once(
    w3: Web3, escrow: Any, epoch: int, paid: Mapping[str, int], before: Mapping[str, int], token: Any
) -> None:
    """Each payee's balance rose by its amount, the chain's events pay each leaf once, nothing remains."""
    after = {a: int(token.functions.balanceOf(Web3.to_checksum_address(a)).call()) for a in paid}
    assert {a: after[a] - before[a] for a in paid} == dict(paid)
    assert leaves_paid(w3, escrow, epoch) == Counter(range(len(paid)))
    assert escrow.functions.epochs(epoch).call()[0] == 0  # remaining: the published total is paid to the unit


def assert_recorded_once(w3: Web3, escrow: Any, epoch: int) -> Any:
    (event,) = escrow_events(w3, escrow, "ResultsRecorded", epoch=epoch)
    return event


def assert_published_once(w3: Web3, escrow: Any, epoch: int) -> Any:
    (event,) = escrow_events(w3, escrow, "PayoutPublished", epoch=epoch)
    return event


# ---------------------------------------------------------------------------------------------- the outcome


def open_alerts(kind: str | None = None) -> list[Alert]:
    alerts = Alert.objects.filter(resolved_at__isnull=True)
    return list(alerts.filter(kind=kind) if kind else alerts)


def assert_resumed_or_parked(state: str, *, resumed: Iterable[str], parked: Mapping[str, str] | None = None) -> str:
    """The flow's `state` is one it reaches by itself (`resumed`), or one it is parked in (`parked`: state → the
    alert kind that must be open for it). Returns "resumed" or "parked"."""
    if state in set(resumed):
        return "resumed"
    kinds = dict(parked or {})
    assert state in kinds, f"state {state}: neither resumed ({sorted(resumed)}) nor parked ({sorted(kinds)})"
    assert open_alerts(kinds[state]), f"parked in {state} without an open {kinds[state]} alert"
    return "parked"
