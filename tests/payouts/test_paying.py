"""The reputation oracle on Anvil: a recorded epoch's payout published once, its leaves pushed in contiguous batches
under the gas cap, claims by participants taken into account, and every leaf paid exactly once — asserted from
the chain's own events — after a worker is killed between publication and the first batch, after a batch was
signed and not broadcast, after it was broadcast and not mined, when a participant claims a leaf of a batch
already signed, and when two workers advance the same payout at once (PostgreSQL)."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from eth_account import Account
from eth_typing import HexStr
from rest_framework.test import APIClient
from web3 import Web3

from campaigns.indexer import chain_index
from campaigns.models import Campaign, CampaignMetadata
from devnet.chain import Anvil, DevAccount, deploy_dev_token, dev_accounts, mint, send
from devnet.chain import token as token_contract
from devnet.protocol import CampaignParams, call, create_campaign, deploy_factory, now, travel_to
from devnet.protocol import campaign as campaign_contract
from devnet.protocol import factory as factory_contract
from execution.domain.units import for_people
from execution.models import Alert
from payouts import oracle_tx, paying, selectors, tasks
from payouts.domain.bundle import Software, bundle_bytes, results_bundle
from payouts.domain.epochs import CampaignTerms
from payouts.domain.manifest import manifest_bytes, payout_manifest
from payouts.domain.merkle import PayoutLeaf, PayoutTree
from payouts.domain.payout import manifest, manifest_json
from payouts.errors import OracleCallRejected
from payouts.health import check_oracle_keys
from payouts.models import EpochClose, EpochPayout, OracleTransaction, PayoutBatch
from tests.fixtures.chain import chain_of_its_own
from tests.fixtures.threads import at_once
from tests.payouts.bundle_fixtures import paying_document
from tests.plugins.require import require_postgresql

pytestmark = [pytest.mark.chain, pytest.mark.timeout(180)]

ACCOUNTS = dev_accounts()
DEPLOYER, CREATOR, RECORDER, REPUTATION, FEES = ACCOUNTS[0], ACCOUNTS[1], ACCOUNTS[2], ACCOUNTS[3], ACCOUNTS[4]
EPOCH_LENGTH = 100
EPOCHS = 3
FEE_BPS = 250
BUDGET = 3_000 * 10**6
_salts = itertools.count(1)


class Killed(BaseException):
    """A worker killed at this point: nothing after it runs, nothing catches it."""


anvil, w3 = chain_of_its_own()


@pytest.fixture(scope="module")
def factory_and_token(w3: Web3) -> tuple[str, str]:
    token = deploy_dev_token(w3, sender=DEPLOYER)
    mint(w3, token, CREATOR.address, 100 * BUDGET, sender=DEPLOYER)
    return deploy_factory(w3, sender=DEPLOYER), token


@pytest.fixture(autouse=True)
def chain_settings(settings, anvil: Anvil, tmp_path: Path) -> None:
    settings.CHAIN_RPC_URL = anvil.url
    settings.CHAIN_CONFIRMATIONS = 1  # mined is final here; reorgs are tests/chaos/test_matrix_chain_*.py
    settings.RECORDING_ORACLE_PRIVATE_KEY = RECORDER.private_key
    settings.REPUTATION_ORACLE_PRIVATE_KEY = REPUTATION.private_key
    settings.ORACLE_GAS_BUMP_SECONDS = 3600
    settings.PAYOUT_BATCH_GAS_CAP = 12_000_000
    settings.PAYOUT_BATCHES_IN_FLIGHT = 2
    settings.STORAGES = {
        **settings.STORAGES,
        "oracle_artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "oracle")},
        },
    }


def recipients(n: int, seed: int) -> list[str]:
    """n fresh addresses (they hold no token yet: the costly case)."""
    return [Account.from_key((seed * 1_000_003 + i + 1).to_bytes(32, "big")).address.lower() for i in range(n)]


def a_campaign(w3: Web3, factory_and_token: tuple[str, str]) -> Campaign:
    """A funded campaign of three epochs naming RECORDER and REPUTATION, indexed, with its epoch 0 over."""
    factory, token = factory_and_token
    start = now(w3) + 10
    params = CampaignParams(
        token, RECORDER.address, REPUTATION.address, FEES.address, start, start + EPOCHS * EPOCH_LENGTH,
        EPOCH_LENGTH, 10_000, BUDGET, FEE_BPS, b"\x01" * 32,
    )  # fmt: skip
    salt = next(_salts).to_bytes(32, "big")
    address = (
        factory_contract(w3, factory).functions.predictCampaignAddress(params.as_tuple(), CREATOR.address, salt).call()
    )
    call(w3, token_contract(w3, token).functions.approve(address, BUDGET), CREATOR)
    create_campaign(w3, factory, params, creator=CREATOR, salt=salt, fund_now=True)
    chain_index(w3=w3, factory=factory, confirmations=0)
    travel_to(w3, start + EPOCH_LENGTH + 1)
    return Campaign.objects.get(address=address.lower())


def payable(campaign: Campaign, epoch: int) -> int:
    terms = CampaignTerms(
        start=int(campaign.start.timestamp()),
        end=int(campaign.end.timestamp()),
        epoch_seconds=campaign.epoch_seconds,
        budget=campaign.budget,
        fee_bps=campaign.fee_bps,
    )
    return terms.epoch_payable(epoch)


def amounts_for(accounts: list[str], total: int) -> dict[str, int]:
    """Unequal amounts summing to total."""
    weights = [i + 1 for i in range(len(accounts))]
    paid = {a: total * w // sum(weights) for a, w in zip(accounts, weights, strict=True)}
    paid[accounts[-1]] += total - sum(paid.values())
    return paid


def recorded_epoch(w3: Web3, campaign: Campaign, epoch: int, paid: dict[str, int]) -> EpochClose:
    """The epoch's results on chain (sent by RECORDER) and its close recorded, with a manifest stored beside."""
    digest = hashlib.sha256(f"bundle {campaign.address} {epoch}".encode()).hexdigest()
    receipt = call(
        w3,
        campaign_contract(w3, campaign.address).functions.recordResults(epoch, bytes.fromhex(digest), "https://x/b"),
        RECORDER,
    )
    document = manifest_json(
        manifest(paid),
        campaign={"chain_id": campaign.chain_id, "address": campaign.address},
        epoch={"index": epoch, "start_ms": 0, "end_ms": 1},
        results_digest=digest,
        budget=payable(campaign, epoch),
        software={"version": "0", "commit": "0" * 40},
    )
    data = manifest_bytes(document)
    manifest_digest = hashlib.sha256(data).hexdigest()
    name = storages["oracle_artifacts"].save(
        f"{campaign.address}/{epoch}/manifest-{manifest_digest}.json", ContentFile(data)
    )
    at = datetime.fromtimestamp(0, tz=UTC)
    return EpochClose.objects.create(
        campaign=campaign,
        epoch=epoch,
        state="recorded",
        epoch_start=at,
        epoch_end=at,
        bundle_digest=digest,
        manifest_digest=manifest_digest,
        manifest_name=name,
        tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
        block_number=int(receipt["blockNumber"]),
    )


def run_until_settled(w3: Web3, payout_id: int, *, passes: int = 40) -> EpochPayout:
    for _ in range(passes):
        payout = paying.epoch_payout_advance(payout_id=payout_id)
        if payout.state in ("paid", "empty", "failed"):
            return payout
    raise AssertionError(f"the payout stayed {payout.state}")


def balances(w3: Web3, token: str, accounts: list[str]) -> dict[str, int]:
    erc20 = token_contract(w3, token)
    return {a: int(erc20.functions.balanceOf(Web3.to_checksum_address(a)).call()) for a in accounts}


def paid_events(w3: Web3, campaign: Campaign, epoch: int) -> Counter[int]:
    """How many times the chain's events say each leaf was paid."""
    escrow = campaign_contract(w3, campaign.address)
    seen: Counter[int] = Counter()
    for event in escrow.events.Claimed().get_logs(from_block=0, argument_filters={"epoch": epoch}):
        seen[int(event.args.index)] += 1
    for event in escrow.events.Distributed().get_logs(from_block=0, argument_filters={"epoch": epoch}):
        for index in range(event.args.firstIndex, event.args.firstIndex + event.args.count):
            seen[index] += 1
    return seen


def claim(w3: Web3, campaign: Campaign, epoch: int, paid: dict[str, int], account: str, sender: DevAccount) -> None:
    leaves = [PayoutLeaf(i, a, paid[a]) for i, a in enumerate(sorted(paid))]
    index = sorted(paid).index(account)
    tree = PayoutTree(leaves)
    call(
        w3,
        campaign_contract(w3, campaign.address).functions.claim(
            epoch, index, Web3.to_checksum_address(account), paid[account], tree.proof(index)
        ),
        sender,
    )


def assert_paid_once(w3: Web3, campaign: Campaign, epoch: int, paid: dict[str, int], before: dict[str, int]) -> None:
    after = balances(w3, campaign.token, list(paid))
    assert {a: after[a] - before[a] for a in paid} == paid
    assert paid_events(w3, campaign, epoch) == Counter(range(len(paid)))
    state = campaign_contract(w3, campaign.address).functions.epochs(epoch).call()
    assert state[0] == 0  # remaining: the published total is paid to the last unit


@pytest.mark.django_db(transaction=True)
def test_a_recorded_epoch_is_published_once_and_every_leaf_pushed_in_batches_under_the_gas_cap(
    w3: Web3, factory_and_token: tuple[str, str], settings
) -> None:
    settings.PAYOUT_BATCH_GAS_CAP = 1_200_000  # about forty fresh recipients a batch: several batches
    campaign = a_campaign(w3, factory_and_token)
    paid = amounts_for(recipients(100, seed=1), payable(campaign, 0))
    close = recorded_epoch(w3, campaign, 0, paid)
    fees_before = balances(w3, campaign.token, [FEES.address.lower()])[FEES.address.lower()]
    before = balances(w3, campaign.token, list(paid))

    assert paying.epoch_payouts_due() == [EpochPayout.objects.get(close=close).pk]
    payout = run_until_settled(w3, close.payout.pk)

    assert payout.state == "paid", payout.failure_reason
    assert_paid_once(w3, campaign, 0, paid, before)
    total = sum(paid.values())
    assert (payout.total, payout.distributed_amount, payout.claimed_amount) == (total, total, 0)
    fee = total * FEE_BPS // 10_000
    assert balances(w3, campaign.token, [FEES.address.lower()])[FEES.address.lower()] - fees_before == fee
    batches = list(payout.batches.order_by("first_index"))
    assert len(batches) > 2
    assert all(b.status == "paid" for b in batches)
    # Contiguous, in index order, covering every leaf once; each under the cap.
    assert [b.first_index for b in batches] == list(itertools.accumulate([0] + [b.count for b in batches[:-1]]))
    assert all(b.tx.gas <= settings.PAYOUT_BATCH_GAS_CAP for b in batches)
    escrow = campaign_contract(w3, campaign.address)
    assert escrow.functions.payoutRoot(0).call().hex() == payout.merkle_root[2:]
    published = escrow.events.PayoutPublished().get_logs(from_block=0)
    assert [(e.args.epoch, e.args.manifestHash.hex(), e.args.total) for e in published] == [
        (0, close.manifest_digest, total)
    ]
    assert OracleTransaction.objects.filter(purpose_key__startswith="publish:").count() == 1
    # Nothing more is due, and another pass changes nothing.
    assert paying.epoch_payouts_due() == []
    assert paying.epoch_payout_advance(payout_id=payout.pk).state == "paid"
    assert PayoutBatch.objects.count() == len(batches)


@dataclass(frozen=True)
class Epoch:
    """A recorded epoch 0 with its payout opened: what it pays, and every payee's balance before."""

    campaign: Campaign
    paid: dict[str, int]
    before: dict[str, int]
    payout_id: int

    def assert_paid_once(self, w3: Web3) -> None:
        assert_paid_once(w3, self.campaign, 0, self.paid, self.before)


def an_epoch(w3: Web3, factory_and_token: tuple[str, str], *, payees: int, seed: int) -> Epoch:
    campaign = a_campaign(w3, factory_and_token)
    paid = amounts_for(recipients(payees, seed=seed), payable(campaign, 0))
    close = recorded_epoch(w3, campaign, 0, paid)
    before = balances(w3, campaign.token, list(paid))
    paying.epoch_payouts_due()
    return Epoch(campaign, paid, before, EpochPayout.objects.get(close=close).pk)


def published_only(payout_id: int) -> None:
    """One pass that publishes and stops there (the batches are left for the next)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(paying, "_distribute", lambda payout_id: None)
        assert paying.epoch_payout_advance(payout_id=payout_id).state == "distributing"


def killed_at_a_batch_broadcast(payout_id: int, *, after_sending: bool) -> None:
    """One pass whose worker is killed when it broadcasts a batch: before the bytes reach the node, or after they
    did and before it could write down that they had."""
    real_send = oracle_tx._send_raw

    def send(w3_: Web3, raw_tx: str) -> None:
        batch = PayoutBatch.objects.filter(tx__raw_tx=raw_tx).exists()
        if batch and not after_sending:
            raise Killed
        real_send(w3_, raw_tx)
        if batch:
            raise Killed

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(oracle_tx, "_send_raw", send)
        with pytest.raises(Killed):
            paying.epoch_payout_advance(payout_id=payout_id)


@pytest.mark.django_db(transaction=True)
def test_leaves_already_claimed_are_left_out_of_the_batches(
    w3: Web3, factory_and_token: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paying, "LOG_BLOCKS", 2)  # the events are read two blocks at a time, as a capped provider
    epoch = an_epoch(w3, factory_and_token, payees=9, seed=2)
    published_only(epoch.payout_id)
    accounts = sorted(epoch.paid)
    for account in (accounts[0], accounts[4], accounts[8]):  # the first, one inside, the last
        claim(w3, epoch.campaign, 0, epoch.paid, account, ACCOUNTS[7])

    payout = run_until_settled(w3, epoch.payout_id)

    assert payout.state == "paid"
    epoch.assert_paid_once(w3)
    assert [(b.first_index, b.count) for b in payout.batches.order_by("first_index")] == [(1, 3), (5, 3)]
    assert payout.claimed_leaves == [0, 4, 8]
    assert payout.claimed_amount == sum(epoch.paid[accounts[i]] for i in (0, 4, 8))


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_between_publication_and_the_first_batch(w3: Web3, factory_and_token: tuple[str, str]) -> None:
    epoch = an_epoch(w3, factory_and_token, payees=5, seed=3)

    def killed(payout_id: int) -> None:
        raise Killed

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(paying, "_distribute", killed)
        with pytest.raises(Killed):
            paying.epoch_payout_advance(payout_id=epoch.payout_id)
    assert EpochPayout.objects.get(pk=epoch.payout_id).state == "distributing"
    assert not PayoutBatch.objects.exists()

    assert run_until_settled(w3, epoch.payout_id).state == "paid"
    epoch.assert_paid_once(w3)
    assert OracleTransaction.objects.filter(purpose_key__startswith="publish:").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_after_signing_a_batch_and_before_broadcasting_it(
    w3: Web3, factory_and_token: tuple[str, str]
) -> None:
    epoch = an_epoch(w3, factory_and_token, payees=6, seed=4)
    killed_at_a_batch_broadcast(epoch.payout_id, after_sending=False)
    batch = PayoutBatch.objects.get()
    assert (batch.status, batch.tx.status) == ("pending", "signed")
    signed_hash = batch.tx.tx_hash

    assert run_until_settled(w3, epoch.payout_id).state == "paid"
    epoch.assert_paid_once(w3)
    # The very transaction signed before the kill is the one that paid: the same nonce, the same hash.
    assert PayoutBatch.objects.get().tx.tx_hash == signed_hash


@pytest.fixture
def mining(w3: Web3) -> Iterator[Callable[[bool], None]]:
    """Switch Anvil's automine (off: blocks only on demand); automine is back on after the test."""

    def automine(on: bool) -> None:
        w3.provider.make_request("evm_setAutomine", [on])  # type: ignore[arg-type]

    try:
        yield automine
    finally:
        automine(True)
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_after_broadcasting_a_batch_and_before_it_mined(
    w3: Web3, factory_and_token: tuple[str, str], mining: Callable[[bool], None]
) -> None:
    epoch = an_epoch(w3, factory_and_token, payees=6, seed=5)
    published_only(epoch.payout_id)
    mining(False)
    killed_at_a_batch_broadcast(epoch.payout_id, after_sending=True)
    batch = PayoutBatch.objects.get()
    assert batch.status == "pending"
    assert w3.eth.get_transaction(HexStr(batch.tx.tx_hash or "")) is not None  # in the pool, not mined

    paying.epoch_payout_advance(payout_id=epoch.payout_id)  # the next worker: rebroadcast is "already known"
    assert PayoutBatch.objects.get().status == "pending"
    mining(True)
    assert run_until_settled(w3, epoch.payout_id).state == "paid"
    epoch.assert_paid_once(w3)
    assert PayoutBatch.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_participant_claiming_a_leaf_of_a_signed_batch_is_paid_once_and_the_rest_pushed_again(
    w3: Web3, factory_and_token: tuple[str, str]
) -> None:
    epoch = an_epoch(w3, factory_and_token, payees=7, seed=6)
    killed_at_a_batch_broadcast(epoch.payout_id, after_sending=False)
    signed = PayoutBatch.objects.get()
    assert (signed.first_index, signed.count) == (0, 7)
    # While the batch waits, a participant claims a leaf in its range.
    claim(w3, epoch.campaign, 0, epoch.paid, sorted(epoch.paid)[3], ACCOUNTS[8])

    payout = run_until_settled(w3, epoch.payout_id)

    assert payout.state == "paid"
    epoch.assert_paid_once(w3)
    signed.refresh_from_db()
    assert (signed.status, signed.revert_reason) == ("reverted", "AlreadyClaimed")
    later = [(b.first_index, b.count, b.status) for b in payout.batches.exclude(pk=signed.pk).order_by("first_index")]
    assert later == [(0, 3, "paid"), (4, 3, "paid")]


@pytest.mark.django_db(transaction=True)
def test_two_workers_advancing_one_payout_at_once_pay_every_leaf_once(
    w3: Web3, factory_and_token: tuple[str, str], settings
) -> None:
    require_postgresql()
    settings.PAYOUT_BATCH_GAS_CAP = 400_000
    epoch = an_epoch(w3, factory_and_token, payees=20, seed=7)
    payout_id = epoch.payout_id
    for _ in range(12):
        results = at_once([lambda: paying.epoch_payout_advance(payout_id=payout_id)] * 2)
        assert not [r for r in results if isinstance(r, Exception)], results
        if EpochPayout.objects.get(pk=payout_id).state == "paid":
            break
    payout = EpochPayout.objects.get(pk=payout_id)
    assert payout.state == "paid"
    epoch.assert_paid_once(w3)
    assert not payout.batches.exclude(status="paid").exists()
    assert OracleTransaction.objects.filter(purpose_key__startswith="publish:").count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_epoch_that_pays_nobody_publishes_nothing(w3: Web3, factory_and_token: tuple[str, str]) -> None:
    campaign = a_campaign(w3, factory_and_token)
    close = recorded_epoch(w3, campaign, 0, {})
    paying.epoch_payouts_due()
    payout = run_until_settled(w3, EpochPayout.objects.get(close=close).pk)
    assert (payout.state, payout.leaf_count, payout.total) == ("empty", 0, 0)
    assert not OracleTransaction.objects.filter(purpose_key__startswith="publish:").exists()
    assert campaign_contract(w3, campaign.address).functions.payoutRoot(0).call() == b"\0" * 32


@pytest.mark.django_db(transaction=True)
def test_a_root_already_on_chain_is_adopted_when_ours_and_fails_the_payout_when_not(
    w3: Web3, factory_and_token: tuple[str, str], admin_client
) -> None:
    campaign = a_campaign(w3, factory_and_token)
    paid = amounts_for(recipients(3, seed=8), payable(campaign, 0))
    close = recorded_epoch(w3, campaign, 0, paid)
    escrow = campaign_contract(w3, campaign.address)
    document_root = bytes.fromhex(manifest(paid).merkle_root[2:])  # type: ignore[union-attr]
    call(
        w3,
        escrow.functions.publishPayout(0, document_root, bytes.fromhex(close.manifest_digest), sum(paid.values())),
        REPUTATION,
    )  # published by the same key before this row existed (a restore from an old backup, say)
    paying.epoch_payouts_due()
    payout = run_until_settled(w3, EpochPayout.objects.get(close=close).pk)
    assert payout.state == "paid"
    assert payout.published_tx_hash
    assert not OracleTransaction.objects.filter(purpose_key__startswith="publish:").exists()

    # Epoch 1: another root is on chain; nothing is sent, the payout fails with the reason and an alert.
    travel_to(w3, now(w3) + EPOCH_LENGTH)
    other = amounts_for(recipients(3, seed=9), payable(campaign, 1))
    close1 = recorded_epoch(w3, campaign, 1, other)
    call(w3, escrow.functions.publishPayout(1, b"\x11" * 32, b"\x22" * 32, 1), REPUTATION)
    paying.epoch_payouts_due()
    payout1 = run_until_settled(w3, EpochPayout.objects.get(close=close1).pk)
    assert payout1.state == "failed"
    assert "another payout root" in payout1.failure_reason
    assert not payout1.batches.exists()
    assert Alert.objects.filter(kind="payout_failed", resolved_at__isnull=True).count() == 1

    # An operator's retry from the admin sends it back to pending; the chain still holds the other root.
    response = admin_client.post(
        "/admin/payouts/epochpayout/", {"action": "retry", "_selected_action": [payout1.pk, payout.pk]}, follow=True
    )
    shown = [str(m) for m in response.context["messages"]]
    assert any("Sent 1 payout(s) back to pending" in m for m in shown), shown
    assert any("paid cannot take retry" in m for m in shown), shown
    assert EpochPayout.objects.get(pk=payout1.pk).state == "pending"
    assert run_until_settled(w3, payout1.pk).state == "failed"
    assert [t.event for t in payout1.transitions.order_by("id")] == ["failed", "retry", "failed"]


@pytest.mark.django_db(transaction=True)
def test_the_proof_api_serves_a_leaf_whose_claim_call_pays_it(w3: Web3, factory_and_token: tuple[str, str]) -> None:
    client = APIClient()
    campaign = a_campaign(w3, factory_and_token)
    paid = amounts_for(recipients(5, seed=10), payable(campaign, 0))
    close = recorded_epoch(w3, campaign, 0, paid)
    account = sorted(paid)[2]
    url = f"/api/v1/payouts/{campaign.chain_id}/{campaign.address}/0/proof/{account}"

    CampaignMetadata.objects.create(
        hash=campaign.metadata_hash,
        document={"reward_token": {"address": campaign.token, "symbol": "USDT", "decimals": 6}},
    )
    body = client.get(url).json()
    assert body["amount_display"] == for_people(paid[account], 6, "USDT")
    assert (body["index"], body["account"], body["amount"], body["status"]) == (
        2,
        account,
        str(paid[account]),
        "not_published",
    )
    leaves = [PayoutLeaf(i, a, paid[a]) for i, a in enumerate(sorted(paid))]
    assert body["merkle_root"] == "0x" + PayoutTree(leaves).root.hex()
    assert body["proof"] == ["0x" + p.hex() for p in PayoutTree(leaves).proof(2)]

    paying.epoch_payouts_due()
    payout = EpochPayout.objects.get(close=close)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(paying, "_distribute", lambda payout_id: None)
        paying.epoch_payout_advance(payout_id=payout.pk)
    body = client.get(url).json()
    assert body["status"] == "claimable"
    # The claim is one call, sent by anyone; the amount goes to the account.
    before = balances(w3, campaign.token, [account])[account]
    stranger = ACCOUNTS[9]
    tx = {"to": Web3.to_checksum_address(body["claim"]["to"]), "data": body["claim"]["data"], "from": stranger.address}
    send(w3, tx, stranger)
    assert balances(w3, campaign.token, [account])[account] - before == paid[account]

    payout = run_until_settled(w3, payout.pk)
    assert payout.claimed_leaves == [2]
    assert client.get(url).json()["status"] == "claimed"
    other = sorted(paid)[0]
    assert client.get(url.replace(account, other)).json()["status"] == "distributed"


@pytest.mark.django_db
def test_the_proof_api_refuses_a_bad_address_and_names_what_it_does_not_hold(make_campaign) -> None:
    client = APIClient()
    campaign = make_campaign(start_ms=0, end_ms=60_000)
    base = f"/api/v1/payouts/{campaign.chain_id}/{campaign.address}/0/proof/"
    response = client.get(base + "0x1234")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_address"
    response = client.get(base + "0x" + "12" * 20)
    assert response.status_code == 404
    assert response.json()["code"] == "payout_not_found"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("n", [1, 2])
def test_the_smallest_payouts_are_pushed_too(w3: Web3, factory_and_token: tuple[str, str], n: int) -> None:
    epoch = an_epoch(w3, factory_and_token, payees=n, seed=20 + n)
    payout = run_until_settled(w3, epoch.payout_id)
    assert payout.state == "paid", payout.failure_reason
    epoch.assert_paid_once(w3)


@pytest.mark.django_db(transaction=True)
def test_a_batch_the_escrow_refuses_is_not_signed_and_raises_an_alert(
    w3: Web3, factory_and_token: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    epoch = an_epoch(w3, factory_and_token, payees=4, seed=30)
    payout_id = epoch.payout_id
    real_call = paying._batch_call

    def wrong_amounts(escrow: Any, index: int, plan: Any, leaves: paying.Leaves) -> str:
        bent = paying.Leaves(accounts=leaves.accounts, amounts=[a + 1 for a in leaves.amounts], tree=leaves.tree)
        return real_call(escrow, index, plan, bent)

    monkeypatch.setattr(paying, "_batch_call", wrong_amounts)
    payout = paying.epoch_payout_advance(payout_id=payout_id)
    assert payout.state == "distributing"
    assert not PayoutBatch.objects.exists()
    assert "InvalidProof" in payout.last_error
    alert = Alert.objects.get(kind="payout_batch_refused")
    assert "would revert with InvalidProof" in alert.message

    monkeypatch.setattr(paying, "_batch_call", real_call)
    assert run_until_settled(w3, payout_id).state == "paid"
    epoch.assert_paid_once(w3)


@pytest.mark.django_db(transaction=True)
def test_a_lost_manifest_is_rebuilt_from_the_stored_bundle_and_a_lost_bundle_holds_up_only_its_epoch(
    w3: Web3, factory_and_token: tuple[str, str]
) -> None:
    campaign = a_campaign(w3, factory_and_token)
    bundle = bundle_bytes(results_bundle(paying_document(), software=Software(version="1", commit="ab" * 20)))
    storage = storages["oracle_artifacts"]
    name = storage.save(f"{campaign.address}/0/bundle.json", ContentFile(bundle))
    at = datetime.fromtimestamp(0, tz=UTC)
    close = EpochClose.objects.create(
        campaign=campaign,
        epoch=0,
        state="recorded",
        epoch_start=at,
        epoch_end=at,
        bundle_digest=hashlib.sha256(bundle).hexdigest(),
        bundle_name=name,
    )  # stored before manifests were: no manifest
    lost = EpochClose.objects.create(
        campaign=campaign, epoch=1, state="recorded", epoch_start=at, epoch_end=at, bundle_digest="ab" * 32
    )

    due = paying.epoch_payouts_due()

    payout = EpochPayout.objects.get(close=close)
    assert due == [payout.pk]
    expected = manifest_bytes(payout_manifest(json.loads(bundle)))
    close.refresh_from_db()
    assert close.manifest_digest == hashlib.sha256(expected).hexdigest() == payout.manifest_digest
    assert storage.open(close.manifest_name, "rb").read() == expected
    assert not EpochPayout.objects.filter(close=lost).exists()
    alert = Alert.objects.get(kind="payout_manifest_missing")
    assert "neither its payout manifest nor its results bundle" in alert.message
    assert paying.epoch_payouts_due() == [payout.pk]  # asked again: the same, and one alert
    assert Alert.objects.filter(kind="payout_manifest_missing").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_payout_whose_leaves_were_all_claimed_is_not_paid_before_its_signed_batch_is_sent(
    w3: Web3, factory_and_token: tuple[str, str]
) -> None:
    epoch = an_epoch(w3, factory_and_token, payees=3, seed=40)
    published_only(epoch.payout_id)
    killed_at_a_batch_broadcast(epoch.payout_id, after_sending=False)  # worker A signed a batch, then died
    batch = PayoutBatch.objects.get()
    for account in sorted(epoch.paid):  # meanwhile every participant claims
        claim(w3, epoch.campaign, 0, epoch.paid, account, ACCOUNTS[8])
    _, leaves = paying._manifest(EpochPayout.objects.get(pk=epoch.payout_id).close)

    # Worker B, past its settle step before A committed, plans: every leaf is paid, but A's batch is in flight.
    assert paying._plan_and_sign(w3, epoch.payout_id, leaves) == []
    assert EpochPayout.objects.get(pk=epoch.payout_id).state == "distributing"

    payout = run_until_settled(w3, epoch.payout_id)
    assert payout.state == "paid"
    batch.refresh_from_db()
    assert (batch.status, batch.revert_reason) == ("reverted", "AlreadyClaimed")
    # Its nonce was used: the key's next transaction is not stuck behind it.
    assert w3.eth.get_transaction_count(REPUTATION.address) > (batch.tx.nonce or 0)
    epoch.assert_paid_once(w3)


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_after_the_node_took_a_replacement_keeps_its_record(
    w3: Web3, factory_and_token: tuple[str, str], mining: Callable[[bool], None], settings
) -> None:
    epoch = an_epoch(w3, factory_and_token, payees=3, seed=41)
    published_only(epoch.payout_id)
    mining(False)
    killed_at_a_batch_broadcast(epoch.payout_id, after_sending=True)
    paying.epoch_payout_advance(payout_id=epoch.payout_id)  # the next pass finds it sent ("already known")
    batch = PayoutBatch.objects.get()
    assert batch.tx.status == "broadcast"
    first_hash = batch.tx.tx_hash
    settings.ORACLE_GAS_BUMP_SECONDS = 0  # the replacement is due at once
    real = oracle_tx._send_raw

    def send_then_die(w3_: Web3, raw: str) -> None:
        real(w3_, raw)
        if raw != batch.tx.raw_tx:
            raise Killed  # the node took the replacement; the worker died before writing anything more

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(oracle_tx, "_send_raw", send_then_die)
        with pytest.raises(Killed):
            paying.epoch_payout_advance(payout_id=epoch.payout_id)
    tx = OracleTransaction.objects.get(pk=batch.tx_id)
    assert tx.tx_hash != first_hash  # the replacement was stored (and committed) before it was sent
    assert tx.versions.count() == 2

    settings.ORACLE_GAS_BUMP_SECONDS = 3600
    mining(True)
    assert run_until_settled(w3, epoch.payout_id).state == "paid"
    tx.refresh_from_db()
    assert tx.status == "mined"
    assert not Alert.objects.filter(kind="oracle_nonce_taken").exists()
    epoch.assert_paid_once(w3)


@pytest.mark.django_db(transaction=True)
def test_a_leaf_whose_transfer_fails_is_left_to_be_claimed_and_the_rest_is_paid(
    w3: Web3, factory_and_token: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    epoch = an_epoch(w3, factory_and_token, payees=8, seed=42)
    blocked = sorted(epoch.paid)[5]  # a recipient the token refuses (a blacklist, say)
    real_gas = oracle_tx.oracle_call_gas

    def refusing(*, chain_id: int, sender: str, to: str, data: str) -> int:
        if blocked[2:] in data:
            raise OracleCallRejected("the call reverts", extra={"error": "unknown"})
        return real_gas(chain_id=chain_id, sender=sender, to=to, data=data)

    monkeypatch.setattr(oracle_tx, "oracle_call_gas", refusing)
    for _ in range(12):
        payout = paying.epoch_payout_advance(payout_id=epoch.payout_id)

    assert payout.state == "distributing"
    assert payout.refused_leaves == [5]
    alert = Alert.objects.get(kind="payout_leaf_refused")
    assert "leaf 5 of epoch 0" in alert.message
    paid = paid_events(w3, epoch.campaign, 0)
    assert paid == Counter(i for i in range(8) if i != 5)  # everyone else paid once
    # The refused leaf is claimable, and once claimed the payout is paid.
    assert payout_leaf_status(epoch, blocked) == "claimable"
    claim(w3, epoch.campaign, 0, epoch.paid, blocked, ACCOUNTS[8])
    assert run_until_settled(w3, epoch.payout_id).state == "paid"
    epoch.assert_paid_once(w3)


def payout_leaf_status(epoch: Epoch, account: str) -> str:
    close = EpochPayout.objects.get(pk=epoch.payout_id).close
    leaf = selectors.payout_leaf_proof(close=close, account=account)
    assert leaf is not None
    return leaf.status


@pytest.mark.django_db(transaction=True)
def test_a_range_pushed_by_someone_else_is_shown_distributed_and_not_pushed_again(
    w3: Web3, factory_and_token: tuple[str, str], settings
) -> None:
    settings.PAYOUT_BATCHES_IN_FLIGHT = 1
    epoch = an_epoch(w3, factory_and_token, payees=6, seed=43)
    published_only(epoch.payout_id)
    accounts = sorted(epoch.paid)
    leaves = [PayoutLeaf(i, a, epoch.paid[a]) for i, a in enumerate(accounts)]
    multiproof = PayoutTree(leaves).multiproof(range(0, 3))
    packed = [int(a, 16) << 96 | epoch.paid[a] for a in accounts[:3]]
    escrow = campaign_contract(w3, epoch.campaign.address)
    fn = escrow.functions.distribute(0, 0, packed, list(multiproof.proof), multiproof.flag_words())
    call(w3, fn, ACCOUNTS[9])  # a stranger pushes leaves 0..2

    payout = run_until_settled(w3, epoch.payout_id)
    assert payout.state == "paid"
    assert [(b.first_index, b.count) for b in payout.batches.all()] == [(3, 3)]
    assert payout.distributed_ranges == [[0, 3], [3, 3]]
    assert payout_leaf_status(epoch, accounts[0]) == "distributed"
    epoch.assert_paid_once(w3)


@pytest.mark.django_db(transaction=True)
def test_the_sweep_sends_a_signed_transaction_nothing_came_back_for_and_a_stalled_payout_is_told(
    w3: Web3, factory_and_token: tuple[str, str], settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    epoch = an_epoch(w3, factory_and_token, payees=4, seed=44)
    published_only(epoch.payout_id)
    killed_at_a_batch_broadcast(epoch.payout_id, after_sending=False)
    batch = PayoutBatch.objects.get()
    assert oracle_tx.oracle_txs_unsettled(older_than_seconds=3600) == []  # too fresh to sweep
    assert oracle_tx.oracle_txs_unsettled(older_than_seconds=0) == [batch.tx_id]
    settings.ORACLE_TX_SWEEP_AFTER_SECONDS = 0
    queued: list[int] = []
    monkeypatch.setattr(tasks.advance_oracle_tx, "delay", queued.append)
    tasks.sweep_oracle_txs.apply()
    assert queued == [batch.tx_id]
    tasks.advance_oracle_tx.apply(args=(batch.tx_id,))  # what the worker runs for it
    batch.tx.refresh_from_db()
    assert batch.tx.status == "mined"  # sent and settled by the sweep alone

    settings.PAYOUT_STALL_SECONDS = 0
    paying.epoch_payouts_due()
    assert Alert.objects.get(kind="payout_stalled").severity == "warning"
    assert run_until_settled(w3, epoch.payout_id).state == "paid"
    epoch.assert_paid_once(w3)


@pytest.mark.django_db
def test_the_oracle_keys_health_check_says_which_key_runs_out_of_gas(w3: Web3, settings) -> None:
    state, detail = check_oracle_keys()
    assert state == "ok"
    assert f"reputation {REPUTATION.address.lower()}" in detail
    settings.ORACLE_MIN_BALANCE_WEI = 10**30
    state, detail = check_oracle_keys()
    assert state == "fail"
    assert detail.startswith("below 1000000000000 ETH: recording ")
    settings.RECORDING_ORACLE_PRIVATE_KEY = settings.REPUTATION_ORACLE_PRIVATE_KEY = ""
    assert check_oracle_keys() == ("not_configured", "this process holds no oracle key")
