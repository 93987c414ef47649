"""What must hold after a crash, a partition or a restart, for the MM order's money flow (custody → exchange →
custody): the order settled with each step once in its timeline, the ledger balanced with nothing left in
transit or reserved, one transfer on the chain and one credited deposit on the exchange, one withdrawal per asset
on the exchange and in the database, and the custody wallet's balance on the chain moved exactly as the ledger
says. Shared by test_crash_*, test_restart_*; built on the chaos matrix's generic checks (invariants.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from web3 import Web3

from devnet.chain import token
from devnet.exchange.fixtures import RunningExchange
from execution import homeward, outbound, selectors, services
from execution.domain import mm_order as mm
from execution.domain import withdrawal as wd
from execution.domain.ledger import asset_totals
from execution.models import Alert, CustodyTransfer, ExchangeWithdrawal, LedgerTransaction, MMOrder
from mrmarket.exchanges.errors import ExchangeUnavailable
from tests.chaos import invariants
from tests.chaos.crash_fixtures import CUSTODY, CUSTODY_SEED, FUNDING, Flow

MONEY_FLOW = ["fund", "transfer_sent", "transfer_mined", "deposit_confirmed", "stop", "orders_settled",
              "withdrawal_arrived"]  # fmt: skip


def wait(
    predicate: Callable[[], bool], what: str, timeout: float = 60.0, step: Callable[[], Any] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not reached in {timeout} s")
        if step is not None:
            step()
        time.sleep(0.1)


def resume_money_flow(order_id: int, treasury_id: int, w3: Web3, timeout: float = 90.0) -> MMOrder:
    """What the system does after a worker died, until the order settles: Celery redelivers the task the worker
    held (acks_late: fund_order, withdraw_back), the beat runs track_deposits and track_withdrawals, and the
    operator, whose stop request failed with the process, asks again. Nothing here knows where it died."""

    def state() -> str:
        return str(MMOrder.objects.get(pk=order_id).state)

    def one_pass() -> None:
        current = state()
        try:
            if current == mm.State.CREATED:
                # Nothing was written yet: only fund_order itself, redelivered (acks_late) or asked again, moves it.
                outbound.mm_order_fund(order_id=order_id)
            elif current in (mm.State.FUNDING, mm.State.WITHDRAWING_TO_EXCHANGE, mm.State.DEPOSIT_CONFIRMING):
                outbound.mm_order_track_deposit(order_id=order_id)  # the track_deposits beat
            elif current == mm.State.DEPOSIT_CONFIRMED:
                services.mm_order_stop(order_id=order_id)  # the operator's stop, asked again
            elif current == mm.State.STOPPING:
                homeward.mm_order_withdraw_back_queued(order_id=order_id, treasury_account_id=treasury_id)
            if (
                current == mm.State.WITHDRAWING_BACK
                or ExchangeWithdrawal.objects.filter(order_id=order_id, status__in=list(wd.IN_FLIGHT)).exists()
            ):
                homeward.mm_order_track_withdrawal(order_id=order_id)  # the track_withdrawals beat
        except (ExchangeUnavailable, ConnectionError):
            pass  # the task retries with backoff: the next pass
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    wait(lambda: state() in (mm.State.SETTLED, mm.State.FAILED), "the order settles", timeout, one_pass)
    return MMOrder.objects.get(pk=order_id)


def assert_money_flow_settled(flow: Flow, *, sim: RunningExchange, w3: Web3, usdt: str) -> None:
    order_id, venue, custody, funding = flow.order.pk, flow.venue, CUSTODY.address, FUNDING
    order = MMOrder.objects.get(pk=order_id)
    assert invariants.assert_resumed_or_parked(order.state, resumed=[mm.State.SETTLED]) == "resumed"
    assert order.state == mm.State.SETTLED, (order.state, order.failure_reason)
    events = list(order.transitions.order_by("pk").values_list("event", flat=True))
    assert events == MONEY_FLOW, "a step of the order was lost or applied twice"

    # The chain: one custody transfer, one Transfer event from custody to the deposit address.
    (sent,) = CustodyTransfer.objects.filter(order=order)
    contract = token(w3, usdt)
    outgoing = contract.events.Transfer().get_logs(
        from_block=flow.from_block, argument_filters={"from": Web3.to_checksum_address(custody)}
    )
    assert [(e["args"]["to"].lower(), e["args"]["value"]) for e in outgoing] == [(sent.to_address, funding)]
    # The exchange: the deposit credited once, one withdrawal of the asset, nothing left on the account.
    assert sim.sim.funds is not None
    credited = [d for d in sim.sim.funds.deposit_history(venue, "USDT") if d.get("txId", "").lower() == sent.tx_hash]
    assert len(credited) == 1, credited
    on_exchange = [w for w in sim.sim.funds.withdrawals.values() if w.account_id == venue]
    assert len(on_exchange) == 1, "a withdrawal reached the exchange twice (or never)"
    (row,) = ExchangeWithdrawal.objects.filter(order=order)
    assert (row.status, row.exchange_id) == (wd.State.CONFIRMED, on_exchange[0].withdraw_id)
    assert sim.sim.engine.account(venue).balance("USDT").total == 0

    # The shared checks (tests/chaos/invariants.py): the ledger, the database's rows, the exchange's own API, the chain.
    invariants.assert_ledger_balanced()
    invariants.assert_no_duplicates([order])
    invariants.assert_exchange_agrees(flow.trading)
    invariants.assert_withdrawals_once(order, flow.treasury)
    invariants.assert_custody_transfers_once(w3, [sent])
    # The ledger: balanced, nothing in transit, reserved or left on the exchange, every key once.
    balances = selectors.ledger_balances()
    assert asset_totals(balances) == {"USDT": 0}
    assert {a: v for a, v in balances.items() if a.startswith(("transit:", "exchange:", "custody:reserved"))} == {}
    keys = list(LedgerTransaction.objects.values_list("key", flat=True))
    assert len(keys) == len(set(keys))
    # Custody on the chain moved as the ledger says (the exchange's withdrawal fee is the only loss).
    fee = int(row.fee)
    onchain = contract.functions.balanceOf(Web3.to_checksum_address(custody)).call()
    assert onchain - flow.custody_on_chain_before == -fee
    assert selectors.ledger_balance(account="custody:USDT") - CUSTODY_SEED == -fee
    assert not Alert.objects.filter(resolved_at__isnull=True, kind__in=["withdrawal_failed", "custody_parked"]).exists()
