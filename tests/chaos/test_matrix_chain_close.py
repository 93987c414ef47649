"""The chaos matrix, chain side (2): a bad RPC node — one that stops answering (before or after it took the bytes),
one that lags behind the head, a chain that reorganises — at the recording oracle's epoch close and its
`recordResults`. Building and storing the close reads no node (its inputs are the database's); the chain is met
at `recordResults`, so the faults act there. Product code reaches Anvil only through the proxy (CHAIN_RPC_URL).

After each fault: the escrow holds one `ResultsRecorded` for the epoch, its hash the stored bundle's, one oracle
transaction was signed for it, and the close reached `recorded` by itself once the node was healthy again
(docs/reliability.md, section 1)."""

from __future__ import annotations

import hashlib

import pytest
from web3 import Web3

from devnet.protocol import campaign as campaign_contract
from payouts import closing
from payouts.models import EpochClose, OracleTransaction
from tests.chaos import invariants
from tests.chaos.rpc_proxy import RpcProxy
from tests.fixtures.chain import mine, reorg
from tests.payouts import test_closing as closing_tests
from tests.payouts.test_closing import advance, open_campaign

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.chain, pytest.mark.django_db, pytest.mark.timeout(180)]

# The close's own fixtures (tests/payouts/test_closing.py): a chain and a token of this module's own, a factory per
# test, and the oracles' settings with a storage of the test's own (autouse).
anvil, w3, token, factory_address, close_settings = (
    closing_tests.anvil,
    closing_tests.w3,
    closing_tests.token,
    closing_tests.factory_address,
    closing_tests.close_settings,
)

CONFIRMATIONS = 2  # the reorgs here are one block deep: shallower than what the product waits for
TIMEOUT = 0.5  # seconds: the product's RPC timeout here, so a hung node costs the test little


@pytest.fixture
def rpc(settings, node: RpcProxy) -> RpcProxy:
    settings.CHAIN_RPC_URL = node.url
    settings.OUTBOUND_HTTP_TIMEOUT_SECONDS = TIMEOUT
    settings.CHAIN_CONFIRMATIONS = CONFIRMATIONS
    return node


def stored_close(w3: Web3, factory_address: str, token: str) -> EpochClose:
    """A close of epoch 0 built and stored (which reads no node), `recordResults` not yet sent."""
    campaign = open_campaign(w3, factory_address, token)
    close = closing.epoch_close_ensure(campaign=campaign, epoch=0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(closing, "_record", lambda close_id: EpochClose.objects.get(pk=close_id))
        close = advance(w3, close)
    assert close.state == "stored"
    return close


def advance_quietly(w3: Web3, close: EpochClose) -> EpochClose:
    """One beat of the close task on a bad node: it may raise (the task retries); what was stored is returned."""
    try:
        return advance(w3, close)
    except Exception:
        return EpochClose.objects.get(pk=close.pk)


def recorded_once(w3: Web3, close: EpochClose, close_settings, *, passes: int = 10) -> EpochClose:
    """The common ending: beats until the close is recorded by itself, then every invariant of a record."""
    for _ in range(passes):
        close = advance(w3, close)
        if close.state in ("recorded", "failed"):
            break
        mine(w3)
    assert invariants.assert_resumed_or_parked(close.state, resumed=["recorded"]) == "resumed", close.failure_reason
    event = invariants.assert_recorded_once(w3, campaign_contract(w3, close.campaign.address), 0)
    bundle = (close_settings / close.bundle_name).read_bytes()
    assert event["args"]["resultsHash"].hex().removeprefix("0x") == hashlib.sha256(bundle).hexdigest()
    assert "0x" + event["transactionHash"].hex().removeprefix("0x") == close.tx_hash
    assert event["blockNumber"] == close.block_number
    (tx,) = OracleTransaction.objects.filter(purpose_key__startswith="record:")
    assert (tx.pk, tx.status, tx.tx_hash) == (close.record_tx_id, "mined", close.tx_hash)
    assert tx.nonce is not None
    assert w3.eth.get_transaction_count(Web3.to_checksum_address(tx.sender)) == tx.nonce + 1  # no hole left behind
    return close


@pytest.mark.parametrize("lost", ["request", "answer"])
def test_record_results_x_timeout(w3: Web3, factory_address, token, close_settings, rpc: RpcProxy, lost) -> None:
    close = stored_close(w3, factory_address, token)
    rpc.hang(["eth_sendRawTransaction"], count=1, forward=lost == "answer")
    assert advance_quietly(w3, close).state == "stored"
    assert rpc.hung == ["eth_sendRawTransaction"]
    recorded_once(w3, close, close_settings)


def test_record_results_x_node_down(w3: Web3, factory_address, token, close_settings, rpc: RpcProxy) -> None:
    close = stored_close(w3, factory_address, token)
    rpc.hang()
    assert advance_quietly(w3, close).state == "stored"
    assert not OracleTransaction.objects.filter(tx_hash__isnull=False).exclude(status="signed").exists()
    rpc.clear()
    recorded_once(w3, close, close_settings)


def test_record_results_x_stale_node(w3: Web3, factory_address, token, close_settings, rpc: RpcProxy) -> None:
    """A node 20 blocks behind: the record mined above its head has no receipt there; the close waits in
    `stored` (not sent twice, not failed) until the node catches up."""
    close = stored_close(w3, factory_address, token)
    mine(w3, 25)
    rpc.stale(20)
    for _ in range(3):
        assert advance_quietly(w3, close).state == "stored"
    assert OracleTransaction.objects.filter(purpose_key__startswith="record:").count() <= 1
    rpc.clear()
    recorded_once(w3, close, close_settings)


def test_record_results_x_reorg(w3: Web3, factory_address, token, close_settings, rpc: RpcProxy) -> None:
    """recordResults mined, then a reorg shallower than CHAIN_CONFIRMATIONS took it off the chain: the close is not
    `recorded` on the strength of a receipt the chain no longer has; the same bytes go again and it is recorded
    once."""
    close = stored_close(w3, factory_address, token)
    advance(w3, close)  # sent and mined, one block deep
    escrow = campaign_contract(w3, close.campaign.address)
    assert len(invariants.escrow_events(w3, escrow, "ResultsRecorded", epoch=0)) == 1
    reorg(w3, 1)
    assert invariants.escrow_events(w3, escrow, "ResultsRecorded", epoch=0) == []
    assert EpochClose.objects.get(pk=close.pk).state == "stored"
    recorded_once(w3, close, close_settings)
