"""The campaign escrow and its factory on Anvil, through web3.py: every rule, each refusal named."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from web3 import Web3
from web3.exceptions import ContractCustomError

from devnet.chain import ANVIL, Anvil, DevAccount, deploy_contract, deploy_dev_token, dev_accounts, mint, token
from devnet.protocol import (
    CampaignParams,
    call,
    campaign,
    create_campaign,
    decode_error,
    deploy_factory,
    factory,
    now,
    travel_to,
)
from payouts.domain.merkle import PayoutLeaf, PayoutTree
from tests.plugins.require import requires

pytestmark = [pytest.mark.chain, requires("Anvil (node_modules/.bin/anvil)", ANVIL.exists(), "npm ci")]
DAY = 86_400
BUDGET = 3_000_000_001  # not divisible by 3: the last epoch takes the remainder


@dataclass
class World:
    w3: Web3
    token: str
    factory: str
    creator: DevAccount
    recorder: DevAccount
    reputation: DevAccount
    fee_to: DevAccount
    outsider: DevAccount

    def params(self, **overrides: Any) -> CampaignParams:
        start = now(self.w3) + 10
        base = CampaignParams(
            token=self.token,
            recording_oracle=self.recorder.address,
            reputation_oracle=self.reputation.address,
            fee_recipient=self.fee_to.address,
            start=start,
            end=start + 3 * DAY,
            epoch_length=DAY,
            dispute_window=2 * DAY,
            budget=BUDGET,
            fee_bps=100,
            metadata_hash=b"\x11" * 32,
        )
        return replace(base, **overrides)

    def balance(self, address: str) -> int:
        return int(token(self.w3, self.token).functions.balanceOf(address).call())

    def approve(self, spender: str, amount: int) -> None:
        call(self.w3, token(self.w3, self.token).functions.approve(spender, amount), self.creator)

    def new_campaign(self, *, fund: bool = True, **overrides: Any) -> tuple[str, CampaignParams]:
        params = self.params(**overrides)
        salt = random.randbytes(32)
        predicted = (
            factory(self.w3, self.factory)
            .functions.predictCampaignAddress(params.as_tuple(), self.creator.address, salt)
            .call()
        )
        if fund:
            self.approve(predicted, params.budget)
        address, _ = create_campaign(self.w3, self.factory, params, creator=self.creator, salt=salt, fund_now=fund)
        assert address == predicted
        return address, params


@pytest.fixture
def world() -> Iterator[World]:
    accounts = dev_accounts()
    with Anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 30}))
        tok = deploy_dev_token(w3, sender=accounts[0])
        mint(w3, tok, accounts[1].address, 10**15, sender=accounts[0])
        yield World(w3, tok, deploy_factory(w3, sender=accounts[0]), *accounts[1:6])


def reverts(fn, sender: DevAccount, w3: Web3) -> tuple[str, tuple]:
    with pytest.raises(ContractCustomError) as err:
        call(w3, fn, sender)
    return decode_error(str(err.value.data))


def payout_tree(amounts: list[int]) -> tuple[PayoutTree, list[PayoutLeaf]]:
    rng = random.Random(len(amounts))
    leaves = [PayoutLeaf(i, Web3.to_checksum_address("0x" + rng.randbytes(20).hex()), a) for i, a in enumerate(amounts)]
    return PayoutTree(leaves), leaves


def close_epoch(world: World, address: str, epoch: int, params: CampaignParams, amounts: list[int]):
    c = campaign(world.w3, address)
    end = c.functions.epochEnd(epoch).call()
    if now(world.w3) < end:
        travel_to(world.w3, end)
    call(world.w3, c.functions.recordResults(epoch, b"\x22" * 32, "ipfs://results"), world.recorder)
    tree, leaves = payout_tree(amounts)
    call(world.w3, c.functions.publishPayout(epoch, tree.root, b"\x33" * 32, sum(amounts)), world.reputation)
    return c, tree, leaves


def test_parameters_are_fixed_in_the_clone(world: World) -> None:
    address, params = world.new_campaign(fund=False)
    c = campaign(world.w3, address)
    onchain = c.functions.params().call()
    assert list(onchain) == [
        params.token,
        world.creator.address,
        params.recording_oracle,
        params.reputation_oracle,
        params.fee_recipient,
        params.start,
        params.end,
        params.epoch_length,
        params.dispute_window,
        params.budget,
        params.fee_bps,
        params.metadata_hash,
    ]
    assert c.functions.epochCount().call() == 3
    budgets = [c.functions.epochBudget(e).call() for e in range(3)]
    assert budgets == [1_000_000_000, 1_000_000_000, 1_000_000_001]
    assert sum(budgets) == BUDGET


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"budget": 0}, "budget is zero"),
        ({"epoch_length": 0}, "epoch length is zero"),
        ({"fee_bps": 1001}, "fee above 10%"),
        ({"recording_oracle": "0x" + "00" * 20}, "oracle is zero"),
        ({"metadata_hash": b"\0" * 32}, "metadata hash is zero"),
        ({"token": "0x" + "00" * 20}, "token is zero"),
    ],
)
def test_bad_parameters_are_refused_and_nothing_is_created(world: World, overrides: dict, reason: str) -> None:
    params = world.params(**overrides)
    f = factory(world.w3, world.factory)
    fn = f.functions.createCampaign(params.as_tuple(), "ipfs://x", b"\0" * 32, False)
    assert reverts(fn, world.creator, world.w3) == ("InvalidParams", (reason,))
    predicted = f.functions.predictCampaignAddress(params.as_tuple(), world.creator.address, b"\0" * 32).call()
    assert world.w3.eth.get_code(predicted) == b""


def test_start_after_end_and_past_end_are_refused(world: World) -> None:
    t = now(world.w3)
    f = factory(world.w3, world.factory)
    for params, reason in [
        (world.params(start=t + 100, end=t + 50), "start is not before end"),
        (world.params(start=t - 100, end=t - 50), "end is in the past"),
    ]:
        fn = f.functions.createCampaign(params.as_tuple(), "", b"\0" * 32, False)
        assert reverts(fn, world.creator, world.w3) == ("InvalidParams", (reason,))


def test_funding_pulls_the_budget_once_and_needs_approval(world: World) -> None:
    address, params = world.new_campaign(fund=False)
    c = campaign(world.w3, address)
    with pytest.raises(ContractCustomError):  # no allowance: the token refuses
        call(world.w3, c.functions.fund(), world.outsider)
    world.approve(address, params.budget)
    before = world.balance(world.creator.address)
    call(world.w3, c.functions.fund(), world.outsider)  # anyone may trigger; funds come from the creator
    assert world.balance(address) == BUDGET
    assert world.balance(world.creator.address) == before - BUDGET
    assert reverts(c.functions.fund(), world.creator, world.w3) == ("AlreadyFunded", ())


def test_fee_on_transfer_tokens_are_refused_at_funding(world: World) -> None:
    fee_token = deploy_contract(world.w3, "FeeOnTransferToken", sender=world.creator)
    world.token = fee_token
    address, params = world.new_campaign(fund=False)
    call(world.w3, token(world.w3, fee_token).functions.approve(address, params.budget), world.creator)
    name, args = reverts(campaign(world.w3, address).functions.fund(), world.creator, world.w3)
    assert name == "FeeOnTransferToken"
    assert args == (params.budget - params.budget // 100, params.budget)  # the token burns floor(1%)
    assert world.balance(address) == 0


def test_roles_and_timing_of_results_and_payouts(world: World) -> None:
    address, _ = world.new_campaign()
    c, w3 = campaign(world.w3, address), world.w3
    record = c.functions.recordResults(0, b"\x22" * 32, "u")
    name, args = reverts(record, world.recorder, w3)
    assert name == "EpochNotEnded"
    travel_to(w3, args[1])
    assert reverts(record, world.outsider, w3) == ("Unauthorized", (world.outsider.address,))
    assert reverts(record, world.reputation, w3)[0] == "Unauthorized"
    publish = c.functions.publishPayout(0, b"\x44" * 32, b"\x33" * 32, 100)
    assert reverts(publish, world.reputation, w3) == ("ResultsMissing", (0,))
    call(w3, record, world.recorder)
    assert reverts(record, world.recorder, w3) == ("ResultsAlreadyRecorded", (0,))
    assert reverts(publish, world.recorder, w3)[0] == "Unauthorized"
    assert reverts(c.functions.recordResults(3, b"\x22" * 32, "u"), world.recorder, w3) == ("UnknownEpoch", (3,))


def test_payouts_stay_within_the_epoch_budget_and_pay_the_fee(world: World) -> None:
    address, _ = world.new_campaign()
    c, w3 = campaign(world.w3, address), world.w3
    travel_to(w3, c.functions.epochEnd(0).call())
    call(w3, c.functions.recordResults(0, b"\x22" * 32, "u"), world.recorder)
    too_much = 1_000_000_000  # the whole epoch budget, plus its 1% fee, is over it
    name, _ = reverts(c.functions.publishPayout(0, b"\x44" * 32, b"\x33" * 32, too_much), world.reputation, w3)
    assert name == "OverBudget"
    total = 990_000_000
    call(w3, c.functions.publishPayout(0, b"\x44" * 32, b"\x33" * 32, total), world.reputation)
    assert world.balance(world.fee_to.address) == total // 100
    assert c.functions.outstanding().call() == total
    again = c.functions.publishPayout(0, b"\x55" * 32, b"\x33" * 32, 1)
    assert reverts(again, world.reputation, w3) == ("PayoutAlreadyPublished", (0,))


def test_claims_pay_each_leaf_once(world: World) -> None:
    address, params = world.new_campaign()
    c, tree, leaves = close_epoch(world, address, 0, params, [100, 250, 375, 1])
    w3 = world.w3
    leaf = leaves[1]
    call(w3, c.functions.claim(0, leaf.index, leaf.account, leaf.amount, tree.proof(1)), world.outsider)
    assert world.balance(leaf.account) == 250
    assert c.functions.isClaimed(0, 1).call()
    again = c.functions.claim(0, leaf.index, leaf.account, leaf.amount, tree.proof(1))
    assert reverts(again, world.outsider, w3) == ("AlreadyClaimed", (0, 1))
    forged = c.functions.claim(0, 2, leaves[2].account, 10_000, tree.proof(2))
    assert reverts(forged, world.outsider, w3) == ("InvalidProof", ())
    assert c.functions.outstanding().call() == 726 - 250


def test_distribute_pays_a_batch_and_cannot_overlap_claims(world: World) -> None:
    address, params = world.new_campaign()
    amounts = [1_000 + i for i in range(40)]
    c, tree, leaves = close_epoch(world, address, 0, params, amounts)
    w3 = world.w3

    def packed(batch: list[PayoutLeaf]) -> list[int]:
        return [(int(x.account, 16) << 96) | x.amount for x in batch]

    first = leaves[5]
    call(w3, c.functions.claim(0, 5, first.account, first.amount, tree.proof(5)), world.outsider)
    mp = tree.multiproof(range(0, 20))
    overlapping = c.functions.distribute(0, 0, packed(leaves[0:20]), list(mp.proof), mp.flag_words())
    assert reverts(overlapping, world.outsider, w3) == ("AlreadyClaimed", (0, 5))
    mp = tree.multiproof(range(10, 40))
    bad = packed(leaves[10:40])
    bad[3] += 1
    assert reverts(c.functions.distribute(0, 10, bad, list(mp.proof), mp.flag_words()), world.outsider, w3) == (
        "InvalidProof",
        (),
    )
    call(w3, c.functions.distribute(0, 10, packed(leaves[10:40]), list(mp.proof), mp.flag_words()), world.outsider)
    for leaf in leaves[10:40]:
        assert world.balance(leaf.account) == leaf.amount
    assert world.balance(leaves[0].account) == 0
    assert c.functions.outstanding().call() == sum(amounts[0:5]) + sum(amounts[6:10])


def test_refund_only_after_the_dispute_window_and_never_what_is_owed(world: World) -> None:
    address, params = world.new_campaign()
    c, tree, leaves = close_epoch(world, address, 0, params, [500, 700])
    w3 = world.w3
    name, args = reverts(c.functions.refund(), world.outsider, w3)
    assert (name, args) == ("DisputeWindowOpen", (params.end + params.dispute_window,))
    travel_to(w3, params.end + params.dispute_window)
    late = c.functions.recordResults(1, b"\x22" * 32, "u")
    assert reverts(late, world.recorder, w3) == ("CampaignOver", ())
    creator_before = world.balance(world.creator.address)
    fee = 1_200 // 100
    call(w3, c.functions.refund(), world.outsider)
    assert world.balance(world.creator.address) == creator_before + BUDGET - 1_200 - fee
    assert world.balance(address) == 1_200  # still owed to the published leaves
    call(w3, c.functions.claim(0, 0, leaves[0].account, 500, tree.proof(0)), world.outsider)
    assert world.balance(leaves[0].account) == 500
    assert reverts(c.functions.refund(), world.outsider, w3) == ("NothingToRefund", ())


def test_the_permission_surface_has_no_admin() -> None:
    from contracts import load_artifact

    writes = {
        item["name"]
        for item in load_artifact("Campaign").abi
        if item.get("type") == "function" and item["stateMutability"] not in ("view", "pure")
    }
    assert writes == {"fund", "recordResults", "publishPayout", "claim", "distribute", "refund"}
    factory_writes = {
        item["name"]
        for item in load_artifact("CampaignFactory").abi
        if item.get("type") == "function" and item["stateMutability"] not in ("view", "pure")
    }
    assert factory_writes == {"createCampaign"}


def test_the_implementation_itself_cannot_be_used(world: World) -> None:
    impl = factory(world.w3, world.factory).functions.implementation().call()
    with pytest.raises(ContractCustomError) as err:
        campaign(world.w3, impl).functions.params().call()
    assert decode_error(str(err.value.data)) == ("NotAClone", ())


@pytest.mark.parametrize("seed", range(1, 7))
def test_random_action_sequences_keep_the_books(world: World, seed: int) -> None:
    """Claims, batched pushes, refund attempts and time travel in random order: no leaf paid twice, never more
    than published, the escrow always holds what it still owes, and a refund never takes any of that."""
    rng = random.Random(seed)
    address, params = world.new_campaign()
    amounts = [rng.randrange(1, 10**6) for _ in range(rng.randrange(5, 30))]
    c, tree, leaves = close_epoch(world, address, 0, params, amounts)
    w3, paid = world.w3, set[int]()
    refunded = 0
    for _ in range(10):
        action = rng.choice(["claim", "distribute", "distribute", "refund", "travel"])
        try:
            if action == "travel":
                travel_to(w3, max(now(w3), params.end + params.dispute_window) + rng.randrange(1, DAY))
                continue
            if action == "refund":
                before = world.balance(world.creator.address)
                call(w3, c.functions.refund(), world.outsider)
                refunded += world.balance(world.creator.address) - before
            else:
                start = rng.randrange(len(leaves))
                end = start + 1 if action == "claim" else rng.randrange(start + 1, len(leaves) + 1)
                batch = list(range(start, end))
                if action == "claim":
                    leaf = leaves[start]
                    fn = c.functions.claim(0, start, leaf.account, leaf.amount, tree.proof(start))
                else:
                    mp = tree.multiproof(batch)
                    pk = [(int(leaves[i].account, 16) << 96) | leaves[i].amount for i in batch]
                    fn = c.functions.distribute(0, start, pk, list(mp.proof), mp.flag_words())
                call(w3, fn, world.outsider)
                assert not paid & set(batch)
                paid |= set(batch)
        except ContractCustomError as exc:
            name, args = decode_error(str(exc.data))
            if action == "refund":
                assert name in {"DisputeWindowOpen", "NothingToRefund"}
            else:
                assert name == "AlreadyClaimed"
                assert args[1] in paid
            continue
        owed = sum(amounts) - sum(amounts[i] for i in paid)
        assert c.functions.outstanding().call() == owed
        assert world.balance(address) >= owed
    fee = sum(amounts) // 100
    assert refunded in (0, BUDGET - sum(amounts) - fee)  # a refund takes exactly what nobody is owed
    for i in range(len(leaves)):
        assert c.functions.isClaimed(0, i).call() == (i in paid)
        assert world.balance(leaves[i].account) == (amounts[i] if i in paid else 0)
