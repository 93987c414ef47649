"""The chaos matrix, exchange side (2): every simulator fault that can meet custody → exchange funding — the
deposit address the transfer is signed to (asked of the exchange), and the deposit's confirmation (the exchange's
deposit history must show this very transaction credited) — on the devnet (Anvil + the simulator watching it).

After each: nothing was signed before the exchange answered, one transfer is on chain and one deposit on the
exchange, the ledger balances and holds what the exchange holds, and the order reached `deposit_confirmed` by
itself once the fault was lifted (docs/reliability.md, section 1)."""

from __future__ import annotations

from typing import Any

import pytest
from web3 import Web3

from devnet.exchange.faults import Fault, FaultKind
from devnet.exchange.fixtures import RunningExchange
from execution import accounts, outbound, selectors
from execution.models import CustodyTransfer, ExchangeAccount, MMOrder
from mrmarket.exchanges.errors import ExchangeUnavailable
from tests.chaos import invariants
from tests.chaos.test_matrix_chain import confirmed_once
from tests.chaos.test_matrix_exchange import REQUEST_FAULTS
from tests.execution import conftest as execution_fixtures
from tests.execution import test_funds as funds
from tests.execution.test_funds import UNIT, new_order

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.chain, pytest.mark.django_db, pytest.mark.timeout(120)]

# The funding leg's own fixtures (tests/execution/test_funds.py), on a chain of this module's own.
anvil, w3 = execution_fixtures.anvil, execution_fixtures.w3
dev_token, sim, account = funds.dev_token, funds.sim, funds.account


@pytest.fixture
def short_timeout(settings) -> None:
    settings.OUTBOUND_HTTP_TIMEOUT_SECONDS = 1  # a hung exchange costs the test one second a call


def venue(sim: RunningExchange, account: ExchangeAccount) -> str:
    key = sim.sim.keys.get(accounts.exchange_account_credentials(account=account).api_key)
    assert key is not None
    return key.account_id


def add(sim: RunningExchange, account: ExchangeAccount, fields: dict[str, Any], **more: Any) -> Fault:
    return sim.sim.faults.add(Fault(**{**fields, **more}, account=venue(sim, account)))


@pytest.mark.usefixtures("short_timeout")
@pytest.mark.parametrize("fault", list(REQUEST_FAULTS))
def test_funding_x_request_fault(account, sim: RunningExchange, w3: Web3, fault: str) -> None:
    """The deposit address is asked of the exchange before anything is signed: a failing answer signs nothing
    (the reservation stays), a slow one signs once; the retry signs and sends once."""
    rule = add(sim, account, REQUEST_FAULTS[fault], endpoint="/sapi/v1/capital/deposit/address")
    order = new_order(account)
    if fault == "latency":
        order = outbound.mm_order_fund(order_id=order.pk)
    else:
        with pytest.raises(ExchangeUnavailable):
            outbound.mm_order_fund(order_id=order.pk)
        assert MMOrder.objects.get(pk=order.pk).state == "funding"
        assert not CustodyTransfer.objects.filter(order=order).exists()
        assert selectors.ledger_balance(account=f"custody:reserved:o{order.pk}:USDT") == 1_000 * UNIT
        invariants.assert_ledger_balanced()
        sim.sim.faults.remove(rule.fault_id)
        order = outbound.mm_order_fund(order_id=order.pk)
    assert sim.sim.faults.events(fault_id=rule.fault_id), "the fault acted on the deposit address"
    sim.sim.faults.remove(rule.fault_id)
    confirmed_once(order, account, w3)


@pytest.mark.usefixtures("short_timeout")
@pytest.mark.parametrize("fault", [*REQUEST_FAULTS, "deposit_delay"])
def test_deposit_confirmation_x_fault(account, sim: RunningExchange, w3: Web3, fault: str) -> None:
    """The deposit history fails, answers slowly, or the exchange holds the deposit pending: the order waits in
    `deposit_confirming` however many confirmations the chain shows, and is confirmed once, by this transaction."""
    order = outbound.mm_order_track_deposit(order_id=outbound.mm_order_fund(order_id=new_order(account).pk).pk)
    assert order.state == "deposit_confirming"
    fields = {"kind": FaultKind.DEPOSIT_DELAY} if fault == "deposit_delay" else REQUEST_FAULTS[fault]
    endpoint = {} if fault == "deposit_delay" else {"endpoint": "/sapi/v1/capital/deposit/hisrec"}
    rule = add(sim, account, fields, **endpoint)
    for _ in range(4):
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        assert sim.sim.funds is not None
        sim.sim.funds.poll_deposits()
        state = outbound.mm_order_track_deposit(order_id=order.pk).state
        assert state == "deposit_confirming" or fault == "latency"  # a slow answer is still an answer
    if fault != "deposit_delay":
        assert sim.sim.faults.events(fault_id=rule.fault_id), "the fault acted on the deposit history"
    assert fault == "latency" or selectors.ledger_balance(account=f"exchange:a{account.pk}:free:USDT") == 0
    invariants.assert_ledger_balanced()
    sim.sim.faults.remove(rule.fault_id)
    confirmed_once(order, account, w3)
