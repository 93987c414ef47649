"""The chaos matrix, chain side (3): a bad RPC node — one that stops answering (before or after it took the bytes),
one that lags behind the head, a chain that reorganises — at each step of the reputation oracle's payout of a
recorded epoch: `publishPayout`, each `distribute` batch, and the participants' own claims. Product code reaches
Anvil only through the proxy (CHAIN_RPC_URL); the participants and the test reach it directly.

After each fault: the escrow's events publish the epoch once and pay every leaf exactly once, every payee's balance
rose by exactly its amount, nothing remains in the epoch, the rows say what the chain says, and the payout reached
`paid` by itself once the node was healthy again (docs/reliability.md, section 1)."""

from __future__ import annotations

import pytest
from web3 import Web3

from devnet.chain import token as token_contract
from devnet.protocol import campaign as campaign_contract
from payouts import paying
from payouts.models import EpochPayout, OracleTransaction, PayoutBatch
from tests.chaos import invariants
from tests.chaos.rpc_proxy import RpcProxy
from tests.fixtures.chain import mine, reorg
from tests.payouts import test_paying as paying_tests
from tests.payouts.test_paying import ACCOUNTS, Epoch, an_epoch, claim

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.slow,
    pytest.mark.chain,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(180),
]

# The payout's own fixtures (tests/payouts/test_paying.py): a chain, a factory and a token of this module's own, and
# the oracles' settings (autouse).
anvil, w3, factory_and_token, chain_settings = (
    paying_tests.anvil,
    paying_tests.w3,
    paying_tests.factory_and_token,
    paying_tests.chain_settings,
)

CONFIRMATIONS = 2  # the reorgs here are one block deep: shallower than what the product waits for
TIMEOUT = 0.5  # seconds: the product's RPC timeout here, so a hung node costs the test little
_seeds = iter(range(100, 10_000))


@pytest.fixture
def rpc(settings, node: RpcProxy) -> RpcProxy:
    settings.CHAIN_RPC_URL = node.url
    settings.OUTBOUND_HTTP_TIMEOUT_SECONDS = TIMEOUT
    settings.CHAIN_CONFIRMATIONS = CONFIRMATIONS
    return node


def epoch(w3: Web3, factory_and_token: tuple[str, str], payees: int = 5) -> Epoch:
    return an_epoch(w3, factory_and_token, payees=payees, seed=next(_seeds))


def published(w3: Web3, payout_id: int) -> None:
    """Passes that publish and push nothing, until the publication is CONFIRMATIONS deep (`distributing`)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(paying, "_distribute", lambda payout_id: None)
        for _ in range(CONFIRMATIONS + 1):
            if paying.epoch_payout_advance(payout_id=payout_id).state == "distributing":
                return
            mine(w3)
    pytest.fail("the publication did not settle")


def advance_quietly(payout_id: int) -> EpochPayout:
    """One beat of the payout task on a bad node: it may raise (the task retries); what was stored is returned."""
    try:
        return paying.epoch_payout_advance(payout_id=payout_id)
    except Exception:
        return EpochPayout.objects.get(pk=payout_id)


def paid_once(w3: Web3, e: Epoch, *, passes: int = 40) -> EpochPayout:
    """The common ending: beats until the payout settles by itself, then every invariant of a payment."""
    for _ in range(passes):
        payout = paying.epoch_payout_advance(payout_id=e.payout_id)
        if payout.state in ("paid", "failed"):
            break
        mine(w3)
    assert invariants.assert_resumed_or_parked(payout.state, resumed=["paid"]) == "resumed", payout.failure_reason
    escrow = campaign_contract(w3, e.campaign.address)
    invariants.assert_published_once(w3, escrow, 0)
    invariants.assert_paid_once(w3, escrow, 0, e.paid, e.before, token_contract(w3, e.campaign.token))
    assert OracleTransaction.objects.filter(purpose_key__startswith="publish:").count() == 1
    assert payout.distributed_amount + payout.claimed_amount == sum(e.paid.values())
    paid_batches = payout.batches.filter(status="paid")
    assert sum(b.count for b in paid_batches) == len(e.paid) - len(payout.claimed_leaves)
    assert escrow.functions.payoutRoot(0).call().hex() == payout.merkle_root[2:]
    return payout


# ---------------------------------------------------------------------------------------------- publishPayout


@pytest.mark.parametrize("lost", ["request", "answer"])
def test_publish_x_timeout(w3: Web3, factory_and_token, rpc: RpcProxy, lost: str) -> None:
    e = epoch(w3, factory_and_token)
    rpc.hang(["eth_sendRawTransaction"], count=1, forward=lost == "answer")
    payout = advance_quietly(e.payout_id)
    assert rpc.hung == ["eth_sendRawTransaction"]
    assert payout.state in ("publishing", "distributing")
    paid_once(w3, e)


def test_publish_x_node_down(w3: Web3, factory_and_token, rpc: RpcProxy) -> None:
    e = epoch(w3, factory_and_token)
    rpc.hang()
    assert advance_quietly(e.payout_id).state == "pending"  # nothing can be read: nothing is signed
    assert not OracleTransaction.objects.exists()
    rpc.clear()
    paid_once(w3, e)


def test_publish_x_stale_node(w3: Web3, factory_and_token, rpc: RpcProxy) -> None:
    """A node 20 blocks behind: the publication mined above its head has no receipt there, so the payout waits
    in `publishing` (not sent again, not failed) until the node catches up."""
    e = epoch(w3, factory_and_token)
    mine(w3, 25)
    rpc.stale(20)
    for _ in range(3):
        assert advance_quietly(e.payout_id).state == "publishing"
    assert OracleTransaction.objects.filter(purpose_key__startswith="publish:").count() == 1
    invariants.assert_published_once(w3, campaign_contract(w3, e.campaign.address), 0)
    rpc.clear()
    paid_once(w3, e)


def test_publish_x_reorg(w3: Web3, factory_and_token, rpc: RpcProxy) -> None:
    """publishPayout mined, then a reorg shallower than CHAIN_CONFIRMATIONS took it off the chain: it is published
    again (the same bytes), and every leaf paid once."""
    e = epoch(w3, factory_and_token)
    with pytest.MonkeyPatch.context() as patch:  # a pass that publishes, and pushes nothing yet
        patch.setattr(paying, "_distribute", lambda payout_id: None)
        paying.epoch_payout_advance(payout_id=e.payout_id)
    escrow = campaign_contract(w3, e.campaign.address)
    assert escrow.functions.payoutRoot(0).call() != b"\0" * 32
    reorg(w3, 1)
    assert escrow.functions.payoutRoot(0).call() == b"\0" * 32
    paid_once(w3, e)


# ---------------------------------------------------------------------------------------------- distribute batches


@pytest.mark.parametrize("lost", ["request", "answer"])
def test_distribute_x_timeout(w3: Web3, factory_and_token, rpc: RpcProxy, lost: str) -> None:
    e = epoch(w3, factory_and_token)
    published(w3, e.payout_id)
    rpc.hang(["eth_sendRawTransaction"], count=1, forward=lost == "answer")
    advance_quietly(e.payout_id)
    assert rpc.hung == ["eth_sendRawTransaction"]
    assert PayoutBatch.objects.filter(payout_id=e.payout_id).count() == 1  # signed and stored before the send
    paid_once(w3, e)
    assert PayoutBatch.objects.filter(payout_id=e.payout_id).count() == 1  # the same batch, never a second


def test_distribute_x_node_down(w3: Web3, factory_and_token, rpc: RpcProxy) -> None:
    e = epoch(w3, factory_and_token)
    published(w3, e.payout_id)
    rpc.hang()
    assert advance_quietly(e.payout_id).state == "distributing"
    assert not PayoutBatch.objects.filter(payout_id=e.payout_id).exists()
    rpc.clear()
    paid_once(w3, e)


def test_distribute_x_stale_node(w3: Web3, factory_and_token, rpc: RpcProxy) -> None:
    """A node 20 blocks behind: a batch mined above its head is not seen; no second batch is signed for the same
    leaves while the first is in flight, and nothing is settled as paid before the node sees it."""
    e = epoch(w3, factory_and_token)
    published(w3, e.payout_id)
    mine(w3, 25)
    rpc.stale(20)
    for _ in range(3):
        assert advance_quietly(e.payout_id).state == "distributing"
    assert [b.status for b in PayoutBatch.objects.filter(payout_id=e.payout_id)] == ["pending"]
    rpc.clear()
    paid_once(w3, e)


def test_distribute_x_reorg(w3: Web3, factory_and_token, rpc: RpcProxy) -> None:
    """A batch mined and the next pass read its receipt, then a reorg shallower than CHAIN_CONFIRMATIONS took it off
    the chain: its leaves are pushed again (the same bytes) — never counted paid on a receipt the chain no longer
    has."""
    e = epoch(w3, factory_and_token)
    published(w3, e.payout_id)
    mine(w3, 3)  # the publication buried: only the batch is reorged out
    for _ in range(2):  # one pass sends the batch, the next finds it mined
        paying.epoch_payout_advance(payout_id=e.payout_id)
    escrow = campaign_contract(w3, e.campaign.address)
    assert invariants.leaves_paid(w3, escrow, 0) == dict.fromkeys(range(len(e.paid)), 1)
    reorg(w3, 1)
    assert invariants.leaves_paid(w3, escrow, 0) == {}
    paid_once(w3, e)


# ---------------------------------------------------------------------------------------------- claims


def test_claims_x_stale_node(w3: Web3, factory_and_token, rpc: RpcProxy) -> None:
    """Participants claim while the oracle's node lags: it plans batches over leaves already claimed; those are
    refused by the estimate or revert, and are planned again without them — each leaf paid once."""
    e = epoch(w3, factory_and_token, payees=6)
    published(w3, e.payout_id)
    mine(w3, 25)
    rpc.stale(20)
    for account in sorted(e.paid)[1:3]:
        claim(w3, e.campaign, 0, e.paid, account, ACCOUNTS[7])
    for _ in range(3):
        advance_quietly(e.payout_id)
    rpc.clear()
    payout = paid_once(w3, e)
    assert payout.claimed_leaves == [1, 2]


def test_claims_x_reorg(w3: Web3, factory_and_token, rpc: RpcProxy) -> None:
    """A participant's claim was seen (left out of the batches), then a reorg took it off the chain: its leaf is
    pushed in a batch instead — paid once, not lost between a claim that vanished and a batch that skipped it."""
    e = epoch(w3, factory_and_token, payees=6)
    published(w3, e.payout_id)
    mine(w3, 3)
    claim(w3, e.campaign, 0, e.paid, sorted(e.paid)[0], ACCOUNTS[7])
    with pytest.MonkeyPatch.context() as patch:  # one pass that reads the events and plans, sending nothing
        patch.setattr(paying.oracle_tx, "oracle_tx_send", lambda tx_id: "signed")
        paying.epoch_payout_advance(payout_id=e.payout_id)
    assert EpochPayout.objects.get(pk=e.payout_id).claimed_leaves == [0]
    reorg(w3, 1)  # the claim is gone; the planned batch (leaves 1..5) was never sent
    payout = paid_once(w3, e)
    assert payout.claimed_leaves == []
