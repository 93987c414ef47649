"""Acceptance of the recording oracle end to end on the devnet: a campaign with one-minute epochs on Anvil, two
participants (two MM orders on one executor, each joined by its reward address with Sign-In with Ethereum), the
recorder's own snapshots of the simulator's book, the jobs' signed reports pulled, the epoch closed, inputs and
bundle stored, `recordResults` mined, the digest on chain equal to the SHA-256 of the stored bundle, and
`python -m payouts.audit score` on the stored inputs reproducing the bundle byte for byte. Then the reputation
oracle pays both epochs (every participant's balance rises by exactly its manifest amount, the sums equal the
published totals), `python -m payouts.audit verify` checks them against the chain and the served documents, and
after the end and the dispute window `refund` returns to the creator only what nobody is owed."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import storages
from eth_account import Account
from eth_account.messages import encode_defunct
from siwe import SiweMessage
from web3 import Web3

from attestation.models import IdentityObservation
from campaigns.domain.metadata import metadata_hash
from campaigns.domain.templates import build_metadata
from campaigns.indexer import chain_index
from campaigns.models import Campaign, CampaignMetadata
from devnet.chain import Anvil, DevAccount, deploy_dev_token, dev_accounts, mint
from devnet.chain import token as token_contract
from devnet.exchange.config import ChainConfig, SimConfig
from devnet.exchange.fixtures import RunningExchange, run_exchange
from devnet.exchange.keys import Permission
from devnet.protocol import CampaignParams, call, create_campaign, deploy_factory, travel_to
from devnet.protocol import campaign as campaign_contract
from devnet.protocol import factory as factory_contract
from devnet.protocol import now as chain_now
from execution import accounts, jobs, provisioning, reports
from execution.domain import mm_order as mm
from execution.executor_client import ExecutorClient
from execution.models import ExecutionReport, MMOrder
from mrmarket import siwe
from mrmarket.exchanges.credentials import ExchangeCredentials
from payouts import closing, paying
from payouts import services as payout_services
from payouts.domain.scoring.inputs import OracleInputs
from payouts.models import EpochClose, OracleTransaction
from payouts.proof import epoch_attribution
from payouts.recorder import Recorder
from tests.execution.executor_thread import running_executor
from tests.execution.gate_stand_in import GateStandIn
from tests.factories import user_with
from tests.fixtures.chain import chain_of_its_own
from tests.fixtures.orders import book_holdings

pytestmark = [pytest.mark.chain, pytest.mark.slow, pytest.mark.timeout(420)]
ROOT = Path(__file__).resolve().parents[2]
EPOCH_SECONDS = 60
DEPLOYER, CREATOR, ORACLE = dev_accounts()[0], dev_accounts()[1], dev_accounts()[2]
REWARDS = (dev_accounts()[5], dev_accounts()[6])
HOT = dev_accounts()[9]
USDT = 10**6


anvil, w3 = chain_of_its_own()


@pytest.fixture(scope="module")
def tokens(w3: Web3) -> dict[str, str]:
    usdt = deploy_dev_token(w3, sender=DEPLOYER)
    mmt = deploy_dev_token(w3, sender=DEPLOYER, name="Mr.Market Token", symbol="MMT", decimals=18)
    mint(w3, usdt, HOT.address, 1_000_000 * USDT, sender=DEPLOYER)
    mint(w3, mmt, HOT.address, 1_000_000 * 10**18, sender=DEPLOYER)
    mint(w3, usdt, CREATOR.address, 100_000 * USDT, sender=DEPLOYER)
    return {"USDT": usdt, "MMT": mmt}


@pytest.fixture(scope="module")
def sim(anvil: Anvil, tokens: dict[str, str]) -> Iterator[RunningExchange]:
    """The simulator with its market running, on the chain: every account has deposit addresses (the link keys)."""
    chain = ChainConfig(
        rpc_url=anvil.url, assets=tokens, hot_wallet_key=HOT.private_key, confirmations=1, poll_interval=0.2
    )
    # The default market: its takers leave quotes a few ticks from the touch resting long enough to score.
    config = SimConfig(run_market=True, tick_seconds=Decimal("0.2"), chain=chain)
    with run_exchange(config) as running:
        yield running


@pytest.fixture(scope="module")
def executor(sim: RunningExchange) -> Iterator[str]:
    with running_executor(sim.base_url) as url:
        yield url


@pytest.fixture
def gate_stand_in(monkeypatch: pytest.MonkeyPatch) -> GateStandIn:
    """The trust gate's stand-in, as in tests/execution: the test executor runs no TD (tests/attestation and the
    loop's end-to-end tests exercise the real gate)."""
    stand_in = GateStandIn()
    monkeypatch.setattr(provisioning, "attested_identity", stand_in.identity)
    monkeypatch.setattr(reports, "signing_key_attested", stand_in.signing_key_attested)
    return stand_in


@pytest.fixture
def oracle_settings(settings, anvil: Anvil, sim: RunningExchange, executor: str, tmp_path: Path) -> None:
    settings.CHAIN_RPC_URL = anvil.url
    settings.CHAIN_CONFIRMATIONS = 0
    settings.EXCHANGE_API_URLS = {"binance": sim.base_url}
    settings.EXECUTOR_URLS = [executor]
    settings.CUSTODY_ASSETS = {
        "USDT": {"token": "0x" + "ab" * 20, "decimals": 6},
        "MMT": {"token": "0x" + "cd" * 20, "decimals": 18},
    }
    settings.RECORDING_ORACLE_PRIVATE_KEY = ORACLE.private_key
    settings.ORACLE_REPORT_GRACE_SECONDS = 0
    settings.REPUTATION_ORACLE_PRIVATE_KEY = ORACLE.private_key
    settings.ORACLE_PUBLIC_BASE_URL = "https://oracle.example"
    settings.RECORDER_REFRESH_SECONDS = 0.5
    settings.SIWE_DOMAIN = "localhost"
    settings.STORAGES = {
        **settings.STORAGES,
        "oracle_artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "oracle")},
        },
    }
    # Assigning STORAGES sends setting_changed, on which Django drops the storage handler's cached backends.


def the_campaign(w3: Web3, tokens: dict[str, str]) -> Campaign:
    """A funded campaign of one-minute epochs on MMT/USDT naming ORACLE, indexed with its metadata held."""
    factory = deploy_factory(w3, sender=DEPLOYER)
    start = chain_now(w3) + 5
    end = start + 10 * EPOCH_SECONDS
    budget = 600 * USDT
    metadata = build_metadata(
        template_id="high_volatility",
        chain_id=w3.eth.chain_id,
        reward_token={"address": tokens["USDT"], "symbol": "USDT", "decimals": 6},
        exchange="binance",
        pair="MMT/USDT",
        start=start,
        end=end,
        budget=budget,
        epoch_seconds=EPOCH_SECONDS,
        scoring_overrides={"sample_seconds": 10, "min_rest_seconds": 10, "min_order_quote": "1"},
    )
    digest = metadata_hash(metadata)
    CampaignMetadata.objects.create(hash="0x" + digest.hex(), document=metadata)
    params = CampaignParams(
        tokens["USDT"], ORACLE.address, ORACLE.address, ORACLE.address, start, end, EPOCH_SECONDS, 3600, budget, 0,
        digest,
    )  # fmt: skip
    salt = b"\x00" * 31 + b"\x07"
    predicted = factory_predicted(w3, factory, params, salt)
    call(w3, token_contract(w3, tokens["USDT"]).functions.approve(predicted, budget), CREATOR)
    create_campaign(w3, factory, params, creator=CREATOR, salt=salt, fund_now=True)
    chain_index(w3=w3, factory=factory, confirmations=0)
    return Campaign.objects.get(address=predicted.lower(), funded=True)


def factory_predicted(w3: Web3, factory: str, params: CampaignParams, salt: bytes) -> str:
    predicted: str = (
        factory_contract(w3, factory).functions.predictCampaignAddress(params.as_tuple(), CREATOR.address, salt).call()
    )
    return predicted


def an_order(sim: RunningExchange, campaign: Campaign, reward: DevAccount) -> MMOrder:
    """An MM order for the campaign with its deposit confirmed (the funding leg is tested in tests/execution)."""
    key = sim.sim.create_account(
        permissions=frozenset({Permission.READ, Permission.TRADE}),
        balances={"MMT": Decimal(3000), "USDT": Decimal(1500)},
    )
    account = accounts.exchange_account_enrol(
        owner_id=user_with().pk,
        exchange="binance",
        label=f"mm-{reward.address[-4:]}",
        role="trading",
        credentials=ExchangeCredentials(key.key, key.secret),
    )
    order = MMOrder.objects.create(
        owner_id=account.owner_id,
        exchange_account=account,
        symbol="MMT/USDT",
        funding_asset="USDT",
        funding_amount=1_000 * USDT,
        state=mm.State.DEPOSIT_CONFIRMED,
        strategy={
            "params": {
                "order_amount": "50",
                "levels": 1,
                "bid_spread": "0.004",
                "ask_spread": "0.004",
                # Quotes stay while the mid wanders within 30 bps, so they rest past min_rest_seconds.
                "refresh_tolerance": "0.003",
            },
            "report_interval_seconds": 10,
            "sample_seconds": 1,
        },
        campaign_chain_id=campaign.chain_id,
        campaign_address=campaign.address,
        reward_address=reward.address.lower(),
    )
    book_holdings(order, {"MMT": 3000 * 10**18, "USDT": 1500 * USDT})
    return order


def join(campaign: Campaign, reward: DevAccount, order: MMOrder) -> None:
    now = datetime.now(UTC)

    def iso(at: datetime) -> str:
        return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    message = SiweMessage(
        domain="localhost",
        address=reward.address,
        statement="Join the campaign as a market maker.",
        uri="http://localhost/participants",
        version="1",
        chain_id=campaign.chain_id,
        nonce=payout_services.participant_nonce_issue(owner_id=order.owner_id).value,
        issued_at=iso(now),
        expiration_time=iso(now + timedelta(minutes=5)),
        resources=[siwe.campaign_resource(campaign.chain_id, campaign.address)],
    ).prepare_message()
    signature = Account.from_key(reward.private_key).sign_message(encode_defunct(text=message)).signature.hex()
    payout_services.participant_join(
        chain_id=campaign.chain_id,
        campaign_address=campaign.address,
        message=message,
        signature="0x" + signature.removeprefix("0x"),
        owner_id=order.owner_id,
        mm_order_ids=(order.pk,),
    )


@contextlib.contextmanager
def recording() -> Iterator[None]:
    """The market-data recorder, one shard, in a thread of its own for the block's duration."""
    state: dict[str, Any] = {}
    started = threading.Event()

    async def main() -> None:
        state["recorder"] = recorder = Recorder(shard=0, shards=1)
        state["loop"] = asyncio.get_running_loop()
        started.set()
        await recorder.run()

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="recorder", daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield
    finally:
        state["loop"].call_soon_threadsafe(state["recorder"].stop)
        thread.join(30)


def reported_until(order: MMOrder) -> int:
    last = ExecutionReport.objects.filter(order=order).order_by("-window_end_ms").first()
    return 0 if last is None else last.window_end_ms


@pytest.mark.django_db(transaction=True)
def test_two_participants_are_measured_closed_recorded_paid_and_verified(
    anvil: Anvil,
    w3: Web3,
    tokens: dict[str, str],
    sim: RunningExchange,
    executor: str,
    oracle_settings: None,
    gate_stand_in: GateStandIn,
    tmp_path: Path,
    settings,
    live_server,
) -> None:
    # The documents' public URLs (the one put on chain among them) point at this test's own server, so that
    # `verify` downloads them as anyone would.
    settings.ORACLE_PUBLIC_BASE_URL = live_server.url
    campaign = the_campaign(w3, tokens)
    orders = [an_order(sim, campaign, reward) for reward in REWARDS]
    for reward, order in zip(REWARDS, orders, strict=True):
        join(campaign, reward, order)
    epoch_end_ms = int(campaign.start.timestamp() + 2 * EPOCH_SECONDS) * 1000  # two epochs
    try:
        with recording():
            for order in orders:
                assert jobs.mm_order_start_job(order_id=order.pk).state == "running"
            # Quote through epochs 0 and 1 and until both jobs have reported past the end of epoch 1.
            deadline = time.monotonic() + 2 * EPOCH_SECONDS + 120
            while not all(reported_until(o) >= epoch_end_ms for o in orders):
                assert time.monotonic() < deadline, "the jobs did not report past the epoch's end in time"
                for order in orders:
                    jobs.mm_order_pull_reports(order_id=order.pk)
                time.sleep(2)
    finally:
        for order in MMOrder.objects.filter(pk__in=[o.pk for o in orders]).exclude(job_id=""):
            with contextlib.suppress(Exception), ExecutorClient(executor) as client:
                client.stop(order.job_id)

    due = closing.epoch_closes_due()
    closes = [EpochClose.objects.get(campaign=campaign, epoch=epoch) for epoch in (0, 1)]
    assert {c.pk for c in closes} <= set(due)
    for close in closes:
        deadline = time.monotonic() + 60
        while close.state != "recorded":
            assert close.state != "failed", close.failure_reason
            assert time.monotonic() < deadline, f"the close stayed {close.state}: {close.last_error}"
            # Anvil mines only on demand here: a block now carries a timestamp past the epoch's end, as a live
            # chain's next block would (recordResults is refused, EpochNotEnded, against a block from before it).
            w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
            close = closing.epoch_close_advance(close_id=close.pk, worker="test")
            time.sleep(0.5)
    close = EpochClose.objects.get(campaign=campaign, epoch=0)

    storage = storages["oracle_artifacts"]
    with storage.open(close.bundle_name, "rb") as f:
        bundle_bytes = f.read()
    with storage.open(close.inputs_name, "rb") as f:
        inputs_bytes = f.read()
    assert hashlib.sha256(bundle_bytes).hexdigest() == close.bundle_digest
    assert hashlib.sha256(inputs_bytes).hexdigest() == close.inputs_digest
    # The proof page's attribution of the epoch's in-band depth: the executors' signing keys own depth there.
    attributed = epoch_attribution(campaign=campaign, epoch=0, inputs=OracleInputs.from_json(json.loads(inputs_bytes)))
    keys = set(ExecutionReport.objects.filter(order__in=orders).values_list("signing_key", flat=True))
    assert attributed["samples"] > 0
    assert keys <= set(attributed["by_identity"])
    for key in keys:
        assert attributed["by_identity"][key]["orders_checked"] > 0
        assert Decimal(attributed["by_identity"][key]["depth_quote"]) > 0
    assert IdentityObservation.objects.filter(
        signing_key__in=keys, source=f"31337:{campaign.address}:0"
    ).count() == len(keys)
    # The digest on chain is the SHA-256 of the stored bundle, and it was recorded once.
    escrow = campaign_contract(w3, campaign.address)
    assert bytes(escrow.functions.resultsHash(0).call()).hex() == close.bundle_digest
    events = escrow.events.ResultsRecorded().get_logs(from_block=0, argument_filters={"epoch": 0})
    assert [(e.args.epoch, e.args.resultsHash.hex(), e.args.uri) for e in events] == [
        (0, close.bundle_digest, f"{live_server.url}/api/v1/payouts/31337/{campaign.address}/0/bundle.json")
    ]
    tx = OracleTransaction.objects.get(purpose_key__startswith="record:", purpose_key__endswith=":0")
    assert (tx.status, close.tx_hash, close.block_number) == ("mined", tx.tx_hash, tx.block_number)

    # Both participants were measured: depth from orders the exchange confirms and the oracle's book shows.
    bundle = json.loads(bundle_bytes)
    scored = {p["address"]: p for p in bundle["participants"]}
    assert set(scored) == {r.address.lower() for r in REWARDS}
    for address, entry in scored.items():
        assert int(entry["depth"]) > 0, (address, entry)
        assert entry["flags"]["not_on_exchange"] == [], (address, entry["flags"])
    assert sum(int(p["amount"]) for p in scored.values()) == int(bundle["parameters"]["epoch_budget"])
    inputs = json.loads(inputs_bytes)
    assert any(s["book"] is not None for s in inputs["snapshots"]), "the recorder's books are in the inputs"
    assert inputs["source_reports"], "the reports the orders came from are named"

    # Anyone holding the stored inputs reproduces the bundle byte for byte with the shipped command.
    out = tmp_path / "recomputed"
    done = subprocess.run(
        [sys.executable, "-m", "payouts.audit", "score", "--inputs", storage.path(close.inputs_name), "--out", out],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (out / "bundle.json").read_bytes() == bundle_bytes
    assert done.stdout.strip() == close.bundle_digest
    # And the payout manifest stored beside the bundle: `recompute` rebuilds both from the inputs alone.
    recomputed = subprocess.run(
        [
            sys.executable, "-m", "payouts.audit", "recompute", "--inputs", storage.path(close.inputs_name),
            "--bundle", storage.path(close.bundle_name), "--manifest", storage.path(close.manifest_name),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert recomputed.returncode == 0, recomputed.stdout + recomputed.stderr
    assert f"manifest {close.manifest_digest}" in recomputed.stdout

    # The reputation oracle pays both epochs: each participant's balance rises by exactly its manifest amounts.
    usdt = token_contract(w3, tokens["USDT"])

    def balance(address: str) -> int:
        return int(usdt.functions.balanceOf(Web3.to_checksum_address(address)).call())

    before = {r.address.lower(): balance(r.address) for r in REWARDS}
    creator_before = balance(CREATOR.address)
    owed = {r.address.lower(): 0 for r in REWARDS}
    totals = 0
    for close in EpochClose.objects.filter(campaign=campaign, epoch__in=(0, 1)).order_by("epoch"):
        document = json.loads(storages["oracle_artifacts"].open(close.manifest_name, "rb").read())
        for leaf in document["leaves"]:
            owed[leaf["account"]] += int(leaf["amount"])
        totals += int(document["total"])
    assert totals > 0
    payout_ids = paying.epoch_payouts_due()
    assert len(payout_ids) == 2
    for payout_id in payout_ids:
        payout = paying.epoch_payout_advance(payout_id=payout_id)
        for _ in range(20):
            if payout.state == "paid":
                break
            w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
            payout = paying.epoch_payout_advance(payout_id=payout_id)
        assert payout.state == "paid", (payout.state, payout.failure_reason)
    assert {a: balance(a) - before[a] for a in before} == owed
    published = escrow.events.PayoutPublished().get_logs(from_block=0)
    distributed = escrow.events.Distributed().get_logs(from_block=0)
    assert sorted(e.args.epoch for e in published) == [0, 1]
    assert sum(e.args.total for e in published) == totals == sum(e.args.amount for e in distributed)

    # `verify` from a checkout, against the chain and the served documents. The jobs ran on the test executor
    # behind the trust gate's stand-in, which attests nothing: every other check passes, and each report's key is
    # named as linking to no accepted attestation (the demo's executor is attested, and passes them all).
    for epoch in (0, 1):
        checked = subprocess.run(
            [sys.executable, "-m", "payouts.audit", "verify", "--rpc", anvil.url, "--campaign", campaign.address,
             "--epoch", str(epoch)],
            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        failed = [line for line in checked.stdout.splitlines() if line.startswith("FAIL")]
        assert checked.returncode == 1, checked.stdout + checked.stderr
        assert failed, checked.stdout
        assert all("no accepted attestation" in line for line in failed), failed
        for what in (
            "ok chain: epoch",
            "== the on-chain merkleRoot",
            "== the on-chain total",
            "ok recompute: bundle and manifest rebuilt from the inputs byte for byte",
        ):
            assert what in checked.stdout, (what, checked.stdout)

    # After the end and the dispute window, refund returns to the creator what no published payout holds: the
    # budget of the eight epochs nobody was paid for; nothing is owed any more.
    assert escrow.functions.outstanding().call() == 0
    params = escrow.functions.params().call()
    travel_to(w3, int(params[6]) + int(params[8]))  # end + disputeWindow
    call(w3, escrow.functions.refund(), CREATOR)
    assert balance(CREATOR.address) - creator_before == campaign.budget - totals
    assert balance(campaign.address) == 0
