"""The chaos matrix, chain side (1): a bad RPC node — one that stops answering, one that lags behind the head, a
chain that reorganises — at each step of custody → exchange funding: the transfer's broadcast and its tracking to
a confirmed deposit. Product code reaches Anvil only through the proxy (CHAIN_RPC_URL); the exchange simulator
watches Anvil itself, as an exchange runs its own node.

After each fault: the ledger balances, the order's transfer is one `Transfer` on chain and one deposit on the
exchange, the ledger holds what the exchange holds, and the order reached `deposit_confirmed` by itself once the
node was healthy again (docs/reliability.md, section 1)."""

from __future__ import annotations

import pytest
from eth_typing import HexStr
from web3 import Web3
from web3.exceptions import TransactionNotFound

from devnet.exchange.funds import DepositStatus
from execution import accounts, outbound, selectors
from execution.models import CustodyTransfer, ExchangeAccount, MMOrder
from tests.chaos import invariants
from tests.chaos.rpc_proxy import RpcProxy
from tests.execution import conftest as execution_fixtures
from tests.execution import test_funds as funds
from tests.execution.running_job import wait
from tests.execution.test_funds import UNIT, new_order, track_until
from tests.fixtures.chain import mine, reorg

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.chain, pytest.mark.django_db, pytest.mark.timeout(120)]

# The funding leg's own fixtures (tests/execution/test_funds.py), on a chain of this module's own.
anvil, w3 = execution_fixtures.anvil, execution_fixtures.w3
dev_token, sim, account = funds.dev_token, funds.sim, funds.account

TIMEOUT = 0.5  # seconds: the product's RPC timeout here, so a hung node costs the test little
HAPPY = ["fund", "transfer_sent", "transfer_mined", "deposit_confirmed"]


@pytest.fixture
def rpc(settings, account: ExchangeAccount, node: RpcProxy) -> RpcProxy:
    """The product's node is the proxy (set after `account`, which points it at Anvil)."""
    settings.CHAIN_RPC_URL = node.url
    settings.OUTBOUND_HTTP_TIMEOUT_SECONDS = TIMEOUT
    return node


def confirmed_once(order: MMOrder, account: ExchangeAccount, w3: Web3) -> MMOrder:
    """The common ending: the order confirmed by itself, and every invariant holds."""
    order = track_until(order, "deposit_confirmed", w3)
    assert invariants.assert_resumed_or_parked(order.state, resumed=["deposit_confirmed"]) == "resumed"
    assert list(order.transitions.values_list("event", flat=True)) == HAPPY
    invariants.assert_ledger_balanced()
    invariants.assert_no_duplicates([order])
    invariants.assert_custody_transfers_once(w3, CustodyTransfer.objects.filter(order=order))
    assert selectors.ledger_balance(account=f"exchange:a{account.pk}:free:USDT") == 1_000 * UNIT
    invariants.assert_exchange_agrees(account)
    return order


# ---------------------------------------------------------------------------------------------- funding


@pytest.mark.parametrize("lost", ["request", "answer"])
def test_funding_x_timeout(account, w3: Web3, rpc: RpcProxy, lost: str) -> None:
    """The broadcast times out: before the node got the bytes, or after (the answer lost). Nothing is sent twice;
    the next beat broadcasts the same bytes or finds them already known."""
    order = new_order(account)
    rpc.hang(["eth_sendRawTransaction"], count=1, forward=lost == "answer")
    try:
        order = outbound.mm_order_fund(order_id=order.pk)
    except Exception:
        order = MMOrder.objects.get(pk=order.pk)
    assert rpc.hung == ["eth_sendRawTransaction"]
    signed = CustodyTransfer.objects.get(order=order)
    assert order.state in ("funding", "withdrawing_to_exchange")
    invariants.assert_ledger_balanced()
    confirmed = confirmed_once(order, account, w3)
    assert CustodyTransfer.objects.get(order=confirmed).tx_hash == signed.tx_hash  # the very bytes signed


def test_funding_x_node_down(account, w3: Web3, rpc: RpcProxy) -> None:
    """Every call hangs: nothing is signed (the gas price read fails first), the reservation stays, and the retry
    signs and sends once."""
    order = new_order(account)
    rpc.hang()
    with pytest.raises(Exception):  # noqa: B017, PT011 - web3's own timeout type; the stored state is checked
        outbound.mm_order_fund(order_id=order.pk)
    assert MMOrder.objects.get(pk=order.pk).state == "funding"
    assert not CustodyTransfer.objects.filter(order=order).exists()
    assert selectors.ledger_balance(account=f"custody:reserved:o{order.pk}:USDT") == 1_000 * UNIT
    invariants.assert_ledger_balanced()
    rpc.clear()
    order = outbound.mm_order_fund(order_id=order.pk)
    confirmed_once(order, account, w3)


def test_funding_x_stale_node(account, w3: Web3, rpc: RpcProxy) -> None:
    """A node lagging 20 blocks: the nonce is still taken from the pending count (never reused), the transfer
    mined above its head is not seen as mined (no receipt yet) and is not sent twice."""
    mine(w3, 25)
    rpc.stale(20)
    order = outbound.mm_order_fund(order_id=new_order(account).pk)
    assert order.state == "withdrawing_to_exchange"
    for _ in range(3):  # beats while the node lags: the transfer is known, not resent, not mined for us
        order = outbound.mm_order_track_deposit(order_id=order.pk)
        assert order.state == "withdrawing_to_exchange"
    assert CustodyTransfer.objects.get(order=order).versions.count() == 1
    invariants.assert_ledger_balanced()
    rpc.clear()
    confirmed_once(order, account, w3)


def test_funding_x_reorg(account, w3: Web3, rpc: RpcProxy) -> None:
    """The transfer mined, and a reorg dropped it before the tracker saw the receipt: it is sent again (the same
    bytes: the same nonce), mined once, credited once."""
    order = outbound.mm_order_fund(order_id=new_order(account).pk)
    signed = CustodyTransfer.objects.get(order=order)
    reorg(w3, 1)
    with pytest.raises(TransactionNotFound):
        w3.eth.get_transaction_receipt(HexStr(signed.tx_hash))  # nothing of it on chain now
    confirmed = confirmed_once(order, account, w3)
    assert CustodyTransfer.objects.get(order=confirmed).tx_hash == signed.tx_hash


# ---------------------------------------------------------------------------------------------- deposit confirmation


def deposit_confirming(account: ExchangeAccount) -> MMOrder:
    order = outbound.mm_order_fund(order_id=new_order(account).pk)
    order = outbound.mm_order_track_deposit(order_id=order.pk)
    assert order.state == "deposit_confirming"
    return order


def test_deposit_confirmation_x_timeout(account, w3: Web3, rpc: RpcProxy) -> None:
    order = deposit_confirming(account)
    mine(w3, 3)
    rpc.hang()
    with pytest.raises(Exception):  # noqa: B017, PT011 - web3's own timeout type; the stored state is checked
        outbound.mm_order_track_deposit(order_id=order.pk)
    assert rpc.hung
    assert MMOrder.objects.get(pk=order.pk).state == "deposit_confirming"
    assert selectors.ledger_balance(account=f"transit:o{order.pk}:USDT") == 1_000 * UNIT
    invariants.assert_ledger_balanced()
    rpc.clear()
    confirmed_once(order, account, w3)


def test_deposit_confirmation_x_stale_node(account, w3: Web3, rpc: RpcProxy, sim) -> None:
    """A lagging node cannot make a deposit look deeper than it is: while the node is 20 blocks behind, the order
    is not confirmed, even once the exchange has credited the deposit."""
    order = deposit_confirming(account)
    mine(w3, 6)  # deep enough on the real chain, and the exchange credits it
    venue = sim.sim.keys.get(accounts.exchange_account_credentials(account=account).api_key).account_id
    funds = sim.sim.funds
    assert funds is not None

    def credited() -> bool:
        funds.poll_deposits()
        return any(d.account_id == venue and d.status == DepositStatus.SUCCESS for d in funds.deposits.values())

    wait(credited, timeout=15)
    rpc.stale(20)
    for _ in range(3):
        assert outbound.mm_order_track_deposit(order_id=order.pk).state == "deposit_confirming"
    assert selectors.ledger_balance(account=f"exchange:a{account.pk}:free:USDT") == 0
    invariants.assert_ledger_balanced()
    rpc.clear()
    confirmed_once(order, account, w3)


def test_deposit_confirmation_x_reorg(account, w3: Web3, rpc: RpcProxy) -> None:
    """The transfer was seen mined (the order is `deposit_confirming`), then a reorg shallower than the required
    confirmations dropped it. The order must not wait forever on a transaction no longer on chain (its nonce left
    free would hold every later custody transfer): the same bytes go again, and it is confirmed once."""
    order = deposit_confirming(account)
    signed = CustodyTransfer.objects.get(order=order)
    reorg(w3, 1)
    confirmed = confirmed_once(order, account, w3)
    assert CustodyTransfer.objects.get(order=confirmed).tx_hash == signed.tx_hash


def test_deposit_confirmation_x_reorg_then_a_later_transfer(account, w3: Web3, rpc: RpcProxy) -> None:
    """After the reorg, the next order's transfer takes the next nonce: both are confirmed (the dropped one does
    not leave a nonce gap that would hold the second in the pool forever)."""
    first = deposit_confirming(account)
    reorg(w3, 1)
    second = outbound.mm_order_fund(order_id=new_order(account).pk)
    for order in (first, second):
        track_until(order, "deposit_confirmed", w3)
    invariants.assert_ledger_balanced()
    invariants.assert_no_duplicates([first, second])
    invariants.assert_custody_transfers_once(w3, CustodyTransfer.objects.filter(order__in=[first, second]))
    assert selectors.ledger_balance(account=f"exchange:a{account.pk}:free:USDT") == 2_000 * UNIT
    invariants.assert_exchange_agrees(account)
