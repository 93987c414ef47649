"""The chain indexer on Anvil: campaigns and events mirrored, confirmations respected, reorgs rolled back."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from web3 import Web3

from campaigns.indexer import chain_index
from campaigns.models import Campaign, CampaignEvent, ChainCursor
from devnet.chain import ANVIL, Anvil, DevAccount, deploy_dev_token, dev_accounts, mint, token
from devnet.protocol import (
    CampaignParams,
    call,
    campaign,
    create_campaign,
    deploy_factory,
    factory,
    now,
    travel_to,
)
from payouts.domain.merkle import PayoutLeaf, PayoutTree
from tests.plugins.require import requires

pytestmark = [
    pytest.mark.chain,
    pytest.mark.django_db,
    requires("Anvil (node_modules/.bin/anvil)", ANVIL.exists(), "npm ci"),
]
DAY = 86_400


@dataclass
class Chain:
    w3: Web3
    token: str
    factory: str
    creator: DevAccount
    oracle: DevAccount

    def params(self) -> CampaignParams:
        start = now(self.w3) + 10
        return CampaignParams(
            self.token,
            self.oracle.address,
            self.oracle.address,
            self.oracle.address,
            start,
            start + 2 * DAY,
            DAY,
            DAY,
            2_000_000,
            0,
            random.randbytes(32),
        )

    def create(self, *, fund: bool = False) -> tuple[str, CampaignParams]:
        params = self.params()
        salt = random.randbytes(32)
        if fund:
            predicted = (
                factory(self.w3, self.factory)
                .functions.predictCampaignAddress(params.as_tuple(), self.creator.address, salt)
                .call()
            )
            call(self.w3, token(self.w3, self.token).functions.approve(predicted, params.budget), self.creator)
        address, _ = create_campaign(self.w3, self.factory, params, creator=self.creator, salt=salt, fund_now=fund)
        return address.lower(), params

    def mine(self, n: int = 1) -> None:
        for _ in range(n):
            self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    def index(self, confirmations: int = 0):
        return chain_index(w3=self.w3, factory=self.factory, confirmations=confirmations)


@pytest.fixture
def chain() -> Iterator[Chain]:
    accounts = dev_accounts()
    with Anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 30}))
        tok = deploy_dev_token(w3, sender=accounts[0])
        mint(w3, tok, accounts[1].address, 10**12, sender=accounts[0])
        yield Chain(w3, tok, deploy_factory(w3, sender=accounts[0]).lower(), accounts[1], accounts[2])


def test_a_created_campaign_appears_after_its_confirmations(chain: Chain) -> None:
    address, params = chain.create()
    assert chain.index(confirmations=2).campaigns == 0
    assert not Campaign.objects.exists()
    chain.mine(2)
    result = chain.index(confirmations=2)
    assert result.campaigns == 1
    row = Campaign.objects.get(chain_id=31337, address=address)
    assert row.creator == chain.creator.address.lower()
    assert row.budget == params.budget
    assert row.epoch_seconds == DAY
    assert int(row.start.timestamp()) == params.start
    assert row.metadata_hash == "0x" + params.metadata_hash.hex()
    assert row.metadata_uri == "ipfs://demo"
    assert row.funded is False


def test_events_are_mirrored_once_and_state_derived_from_them(chain: Chain) -> None:
    address, _ = chain.create(fund=True)
    chain.index()
    row = Campaign.objects.get(address=address)
    assert row.funded is True
    c = campaign(chain.w3, address)
    travel_to(chain.w3, c.functions.epochEnd(0).call())
    call(chain.w3, c.functions.recordResults(0, b"\x22" * 32, "ipfs://r"), chain.oracle)
    leaves = [PayoutLeaf(0, "0x" + "11" * 20, 300), PayoutLeaf(1, "0x" + "22" * 20, 700)]
    tree = PayoutTree(leaves)
    call(chain.w3, c.functions.publishPayout(0, tree.root, b"\x33" * 32, 1_000), chain.oracle)
    call(
        chain.w3,
        c.functions.claim(0, 1, Web3.to_checksum_address(leaves[1].account), 700, tree.proof(1)),
        chain.creator,
    )
    result = chain.index()
    assert result.events == 3
    row.refresh_from_db()
    assert row.paid_out == 700
    kinds = list(CampaignEvent.objects.filter(campaign=row).values_list("kind", flat=True))
    assert kinds == ["Funded", "ResultsRecorded", "PayoutPublished", "Claimed"]
    published = CampaignEvent.objects.get(campaign=row, kind="PayoutPublished")
    assert published.data["merkleRoot"] == "0x" + tree.root.hex()
    assert chain.index().events == 0  # nothing new, nothing twice
    cursor = ChainCursor.objects.get()
    assert cursor.last_block == chain.w3.eth.block_number


def test_a_reorg_is_rolled_back_and_the_new_fork_applied(chain: Chain) -> None:
    kept, _ = chain.create()
    chain.index()
    snapshot = chain.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    orphan, _ = chain.create(fund=True)
    chain.mine(3)
    chain.index()
    assert Campaign.objects.filter(address=orphan).exists()
    # The chain reorganizes: the blocks with the orphan campaign are replaced by a longer fork.
    assert chain.w3.provider.make_request("evm_revert", [snapshot])["result"]  # type: ignore[arg-type]
    replacement, _ = chain.create()
    chain.mine(6)
    result = chain.index()
    assert result.rolled_back_to is not None
    assert not Campaign.objects.filter(address=orphan).exists()
    assert not CampaignEvent.objects.filter(campaign__address=orphan).exists()
    assert set(Campaign.objects.values_list("address", flat=True)) == {kept, replacement}
    assert ChainCursor.objects.get().last_block == chain.w3.eth.block_number
