"""The epoch close on PostgreSQL + Anvil: a campaign created through the factory, indexed, its first epochs over;
each close goes collecting → closing → stored → recorded, the digest on chain is the SHA-256 of the stored bundle,
the audit CLI reproduces the bundle from the stored inputs, the public API serves the same bytes; a worker killed
on either side of the broadcast resumes without a second transaction; two workers build once; results already on
chain are adopted or refuse the close; an outage leaves the row where it was and the task retries."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.files.storage import storages
from django.utils import timezone
from web3 import Web3

from campaigns.domain.metadata import metadata_hash
from campaigns.domain.templates import build_metadata
from campaigns.indexer import chain_index
from campaigns.models import Campaign, CampaignMetadata
from devnet.chain import Anvil, DevAccount, deploy_dev_token, dev_accounts, mint
from devnet.chain import token as token_contract
from devnet.exchange.fixtures import RunningExchange, run_exchange
from devnet.protocol import CampaignParams, call, create_campaign, deploy_factory, factory, now, travel_to
from devnet.protocol import campaign as campaign_contract
from execution import accounts as exchange_accounts
from execution.models import Alert
from mrmarket.exchanges.credentials import ExchangeCredentials
from mrmarket.exchanges.errors import ExchangeUnavailable
from mrmarket.roles import Role
from payouts import closing, oracle_tx, tasks
from payouts.domain.epochs import CloseState, IllegalCloseTransition
from payouts.domain.manifest import manifest_bytes, payout_manifest
from payouts.domain.scoring.inputs import ScoringInputError
from payouts.errors import CampaignMetadataMissing, OracleChainUnavailable, SoftwareUnknown
from payouts.models import BookSnapshot, EpochClose, EpochPreview, OracleTransaction, Participant, ParticipantAccount
from payouts.selectors import ARTIFACT_STORAGE
from tests.factories import user_with
from tests.fixtures.chain import chain_of_its_own
from tests.fixtures.threads import at_once
from tests.plugins.require import require_postgresql

pytestmark = [pytest.mark.chain, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
ACCOUNTS = dev_accounts()
DEPLOYER, CREATOR, ORACLE, STRANGER = ACCOUNTS[0], ACCOUNTS[1], ACCOUNTS[2], ACCOUNTS[5]
EPOCH = 60
SAMPLE = 10
EPOCHS = 5
BUDGET = 500 * 10**6
BASE_URL = "https://oracle.example.org"
_salts = itertools.count(1)


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, no `except Exception` catches it."""


anvil, w3 = chain_of_its_own()


@pytest.fixture(scope="module")
def token(w3: Web3) -> str:
    address = deploy_dev_token(w3, sender=DEPLOYER)
    mint(w3, address, CREATOR.address, 10**9 * 10**6, sender=DEPLOYER)
    return address


@pytest.fixture
def factory_address(w3: Web3) -> str:
    """A fresh factory per test, so that the index holds only this test's campaigns."""
    return deploy_factory(w3, sender=DEPLOYER)


@pytest.fixture(autouse=True)
def close_settings(settings, anvil: Anvil, tmp_path: Path) -> Path:
    settings.CHAIN_RPC_URL = anvil.url
    settings.CHAIN_CONFIRMATIONS = 1  # mined is final here; reorgs are tests/chaos/test_matrix_chain_*.py
    settings.RECORDING_ORACLE_PRIVATE_KEY = ORACLE.private_key
    settings.REPUTATION_ORACLE_PRIVATE_KEY = ORACLE.private_key
    settings.RECORDING_ORACLE_RETIRED_KEYS = []
    settings.ORACLE_GAS_BUMP_SECONDS = 3600
    settings.ORACLE_REPORT_GRACE_SECONDS = 0
    settings.ORACLE_PUBLIC_BASE_URL = BASE_URL
    location = tmp_path / "oracle"
    # Assigning STORAGES sends setting_changed, on which Django drops the storage handler's cached backends.
    settings.STORAGES = {
        **django_settings.STORAGES,
        ARTIFACT_STORAGE: {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": location}},
    }
    assert storages[ARTIFACT_STORAGE].path("x") == str(location / "x")
    return location


@pytest.fixture
def broadcasts(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many times each signed transaction went to the node."""
    sent: Counter[str] = Counter()
    real = oracle_tx._send_raw

    def counting(w3: Web3, raw_tx: str) -> None:
        sent["0x" + Web3.keccak(hexstr=raw_tx).hex()] += 1
        real(w3, raw_tx)

    monkeypatch.setattr(oracle_tx, "_send_raw", counting)
    return sent


def chain_now(w3: Web3) -> datetime:
    return datetime.fromtimestamp(now(w3), tz=UTC)


def open_campaign(
    w3: Web3, factory_address: str, token: str, *, recorder: DevAccount = ORACLE, over: int = 2
) -> Campaign:
    """A funded campaign of EPOCHS epochs of EPOCH seconds whose first `over` epochs have ended (its start in the
    past), created through the factory, its metadata document stored and the factory indexed; a few book snapshots
    at the sample times of its first epoch."""
    start = now(w3) - over * EPOCH - 2
    end = start + EPOCHS * EPOCH
    metadata = build_metadata(
        template_id="stable_depth",
        chain_id=w3.eth.chain_id,
        reward_token={"address": token, "symbol": "USDT", "decimals": 6},
        exchange="binance",
        pair="MMT/USDT",
        start=start,
        end=end,
        budget=BUDGET,
        epoch_seconds=EPOCH,
        scoring_overrides={"sample_seconds": SAMPLE, "min_rest_seconds": 30},
        dispute_window_seconds=3600,
    )
    digest = metadata_hash(metadata)
    CampaignMetadata.objects.get_or_create(hash="0x" + digest.hex(), defaults={"document": metadata})
    params = CampaignParams(
        token, recorder.address, ORACLE.address, ORACLE.address, start, end, EPOCH, 3600, BUDGET, 0, digest
    )
    salt = next(_salts).to_bytes(32, "big")
    predicted = (
        factory(w3, factory_address).functions.predictCampaignAddress(params.as_tuple(), CREATOR.address, salt).call()
    )
    call(w3, token_contract(w3, token).functions.approve(predicted, BUDGET), CREATOR)
    address, _ = create_campaign(w3, factory_address, params, creator=CREATOR, salt=salt, fund_now=True)
    chain_index(w3=w3, factory=factory_address, confirmations=0)
    campaign = Campaign.objects.get(address=address.lower())
    assert campaign.funded
    assert campaign.epoch_seconds == EPOCH
    for k in range(0, EPOCH // SAMPLE, 2):
        t_ms = (start + k * SAMPLE) * 1000
        book = {"bids": [["0.99", "1000"], ["0.98", "500"]], "asks": [["1.01", "800"]]}
        BookSnapshot.objects.create(
            campaign=campaign, t_ms=t_ms, book=book, exchange_ts_ms=t_ms, recorded_ms=t_ms + 5, source="ws"
        )
    return campaign


def results_recorded(w3: Web3, campaign: Campaign) -> list[Any]:
    return list(campaign_contract(w3, campaign.address).events.ResultsRecorded().get_logs(from_block=0))


def stored(location: Path, name: str) -> bytes:
    return (location / name).read_bytes()


def advance(w3: Web3, close: EpochClose, worker: str = "w1") -> EpochClose:
    return closing.epoch_close_advance(close_id=close.pk, worker=worker, now=chain_now(w3))


def transitions(close: EpochClose) -> list[tuple[str, str, str]]:
    return [(t.event, t.from_state, t.to_state) for t in close.transitions.order_by("id")]


_REAL_RECORD = closing._record
_REAL_ADVANCE = oracle_tx.oracle_tx_advance
HAPPY = [
    ("grace_over", "collecting", "closing"),
    ("stored", "closing", "stored"),
    ("recorded", "stored", "recorded"),
]


def audit_score(inputs: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """`python -m payouts.audit score` in a stranger's environment: no Django settings, no database."""
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL"}}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "payouts.audit", "score", "--inputs", str(inputs), "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# ---------------------------------------------------------------------------------------------- the happy path


@pytest.mark.slow
@pytest.mark.django_db
def test_a_close_is_built_stored_recorded_reproduced_and_served(
    w3, factory_address, token, close_settings, broadcasts, client, tmp_path
) -> None:
    campaign = open_campaign(w3, factory_address, token)
    close = closing.epoch_close_ensure(campaign=campaign, epoch=0)
    assert close.state == CloseState.COLLECTING
    assert (close.epoch_start.timestamp(), close.epoch_end.timestamp()) == (
        campaign.start.timestamp(),
        campaign.start.timestamp() + EPOCH,
    )

    close = advance(w3, close)
    assert close.state == CloseState.RECORDED
    assert transitions(close) == HAPPY
    assert close.lease_owner == ""
    assert close.lease_until is None
    assert close.attempts == 1
    assert close.participants == 0
    assert close.failure_reason == close.last_error == ""

    # The stored bytes carry their digests, in their names and on the row.
    inputs_data = stored(close_settings, close.inputs_name)
    bundle_data = stored(close_settings, close.bundle_name)
    assert hashlib.sha256(inputs_data).hexdigest() == close.inputs_digest
    assert hashlib.sha256(bundle_data).hexdigest() == close.bundle_digest
    directory = f"{campaign.chain_id}/{campaign.address}/0"
    assert close.inputs_name == f"{directory}/inputs-{close.inputs_digest}.json"
    assert close.bundle_name == f"{directory}/bundle-{close.bundle_digest}.json"
    inputs = json.loads(inputs_data)
    assert inputs["campaign"] == {
        "chain_id": campaign.chain_id,
        "address": campaign.address,
        "metadata_hash": campaign.metadata_hash,
    }
    assert inputs["participants"] == []
    books = [s for s in inputs["snapshots"] if s.get("book") is not None]
    assert len(books) == EPOCH // SAMPLE // 2
    assert len(inputs["snapshots"]) == EPOCH // SAMPLE

    # On chain: one ResultsRecorded, its hash the stored bundle's SHA-256, its URI the public bundle URL.
    uri = f"{BASE_URL}/api/v1/payouts/{campaign.chain_id}/{campaign.address}/0/bundle.json"
    (event,) = results_recorded(w3, campaign)
    assert event["args"]["epoch"] == 0
    assert event["args"]["resultsHash"].hex().removeprefix("0x") == hashlib.sha256(bundle_data).hexdigest()
    assert event["args"]["uri"] == uri == close.bundle_uri
    assert "0x" + event["transactionHash"].hex().removeprefix("0x") == close.tx_hash
    assert event["blockNumber"] == close.block_number
    tx = OracleTransaction.objects.get()
    assert close.record_tx_id == tx.pk
    assert tx.status == OracleTransaction.Status.MINED
    assert dict(broadcasts) == {tx.tx_hash: 1}

    # The auditor's CLI reproduces the bundle from the stored inputs, byte for byte.
    done = audit_score(close_settings / close.inputs_name, tmp_path / "audit")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "audit" / "bundle.json").read_bytes() == bundle_data
    assert done.stdout.strip() == close.bundle_digest

    # The public API serves the very bytes.
    base = f"/api/v1/payouts/{campaign.chain_id}/{campaign.address}"
    bundle = client.get(f"{base}/0/bundle.json")
    assert bundle.status_code == 200
    assert bundle.content == bundle_data
    assert bundle["ETag"] == f'"{close.bundle_digest}"'
    assert "immutable" in bundle["Cache-Control"]
    assert client.get(f"{base}/0/inputs.json").content == inputs_data
    # The payout manifest is stored and served beside the bundle, exactly what anyone builds from the bundle alone.
    manifest_data = stored(close_settings, close.manifest_name)
    assert close.manifest_name == f"{directory}/manifest-{close.manifest_digest}.json"
    assert manifest_data == manifest_bytes(payout_manifest(json.loads(bundle_data)))
    assert hashlib.sha256(manifest_data).hexdigest() == close.manifest_digest
    assert json.loads(manifest_data)["results_digest"] == close.bundle_digest
    served = client.get(f"{base}/0/manifest.json")
    assert (served.status_code, served.content, served["ETag"]) == (200, manifest_data, f'"{close.manifest_digest}"')
    # Addresses are accepted in any case (a checksummed address is what most people paste).
    assert (
        client.get(
            f"{base.replace(campaign.address, Web3.to_checksum_address(campaign.address))}/0/bundle.json"
        ).content
        == bundle_data
    )
    listed = client.get(f"{base}/epochs")
    assert listed.status_code == 200
    (row,) = listed.json()
    assert row["epoch"] == 0
    assert row["state"] == "recorded"
    assert row["bundle_digest"] == close.bundle_digest
    assert row["inputs_digest"] == close.inputs_digest
    assert row["manifest_digest"] == close.manifest_digest
    assert row["manifest_url"].endswith(f"{base}/0/manifest.json")
    assert row["tx_hash"] == close.tx_hash
    assert row["bundle_url"].endswith(f"{base}/0/bundle.json")
    missing = client.get(f"{base}/3/bundle.json")
    assert missing.status_code == 404
    assert missing.json()["code"] == "artifact_not_found"

    # Recorded is the end: advancing again sends nothing and adds no step.
    assert advance(w3, close, "w2").state == CloseState.RECORDED
    assert transitions(close) == HAPPY
    assert dict(broadcasts) == {tx.tx_hash: 1}
    assert len(results_recorded(w3, campaign)) == 1


# ---------------------------------------------------------------------------------------------- crashes


@pytest.mark.django_db
def test_a_worker_killed_between_storing_the_bundle_and_record_results_resumes_once(
    w3, factory_address, token, close_settings, broadcasts, monkeypatch
) -> None:
    campaign = open_campaign(w3, factory_address, token)
    close = closing.epoch_close_ensure(campaign=campaign, epoch=0)

    def killed(close_id: int) -> EpochClose:
        raise Killed

    monkeypatch.setattr(closing, "_record", killed)
    with pytest.raises(Killed):
        advance(w3, close)
    close.refresh_from_db()
    assert close.state == CloseState.STORED
    assert close.record_tx is None
    assert (close_settings / close.bundle_name).exists()
    assert not OracleTransaction.objects.exists()
    assert results_recorded(w3, campaign) == []
    digest = close.bundle_digest

    monkeypatch.setattr(closing, "_record", _REAL_RECORD)
    close = advance(w3, close, "w2")
    assert close.state == CloseState.RECORDED
    assert close.bundle_digest == digest
    assert close.attempts == 1  # nothing was built again
    (event,) = results_recorded(w3, campaign)
    assert event["args"]["resultsHash"].hex().removeprefix("0x") == digest
    tx = OracleTransaction.objects.get()
    assert dict(broadcasts) == {tx.tx_hash: 1}
    assert transitions(close) == HAPPY


@pytest.mark.django_db
def test_a_worker_killed_after_sending_finds_the_stored_transaction_and_records_once(
    w3, factory_address, token, broadcasts, monkeypatch
) -> None:
    campaign = open_campaign(w3, factory_address, token)
    close = closing.epoch_close_ensure(campaign=campaign, epoch=0)
    real_advance = oracle_tx.oracle_tx_advance

    def sent_then_killed(*, tx_id: int) -> str:
        real_advance(tx_id=tx_id)  # broadcast (and, on Anvil, mined)
        raise Killed

    monkeypatch.setattr(oracle_tx, "oracle_tx_advance", sent_then_killed)
    with pytest.raises(Killed):
        advance(w3, close)
    close.refresh_from_db()
    assert close.state == CloseState.STORED
    assert close.record_tx is not None
    assert close.tx_hash == ""
    assert len(results_recorded(w3, campaign)) == 1
    sent_hash = close.record_tx.tx_hash

    monkeypatch.setattr(oracle_tx, "oracle_tx_advance", real_advance)
    close = advance(w3, close, "w2")
    assert close.state == CloseState.RECORDED
    assert close.tx_hash == sent_hash
    assert len(results_recorded(w3, campaign)) == 1
    assert OracleTransaction.objects.count() == 1
    assert dict(broadcasts) == {sent_hash: 1}
    assert transitions(close) == HAPPY


@pytest.mark.django_db
def test_a_truncated_file_under_the_digest_name_is_replaced_by_the_real_bytes(
    w3, factory_address, token, close_settings, monkeypatch
) -> None:
    """A worker killed while writing leaves part of the bytes under the final name; the next must not keep it."""
    campaign = open_campaign(w3, factory_address, token)
    close = closing.epoch_close_ensure(campaign=campaign, epoch=0)
    monkeypatch.setattr(closing, "_record", lambda close_id: EpochClose.objects.get(pk=close_id))
    close = advance(w3, close)
    assert close.state == CloseState.STORED
    bundle_path = close_settings / close.bundle_name
    whole = bundle_path.read_bytes()
    bundle_path.write_bytes(whole[:10])

    name, digest = closing._store_document(f"{campaign.chain_id}/{campaign.address}/0", "bundle", whole)
    assert (name, digest) == (close.bundle_name, close.bundle_digest)
    assert bundle_path.read_bytes() == whole
    assert sorted(p.name for p in bundle_path.parent.iterdir()) == sorted(
        [bundle_path.name, Path(close.inputs_name).name, Path(close.manifest_name).name]
    )


# ---------------------------------------------------------------------------------------------- two workers


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("workers", [("a", "b"), ("redelivered", "redelivered")])
def test_two_workers_advancing_the_same_close_build_once_and_record_once(
    w3, factory_address, token, broadcasts, monkeypatch, workers
) -> None:
    """Two workers, or one task delivered twice (the same task id running twice, as a broker redelivery does)."""
    require_postgresql("SQLite serializes writers itself; races need PostgreSQL")
    campaign = open_campaign(w3, factory_address, token)
    close = closing.epoch_close_ensure(campaign=campaign, epoch=0)
    builds: list[str] = []
    real_build = closing.build_inputs

    def slow_build(**kwargs: Any) -> Any:
        builds.append(threading.current_thread().name)
        time.sleep(0.5)  # long enough for the other worker to arrive while this one holds the lease
        return real_build(**kwargs)

    monkeypatch.setattr(closing, "build_inputs", slow_build)
    when = chain_now(w3)

    def work(name: str) -> Callable[[], EpochClose]:
        return lambda: closing.epoch_close_advance(close_id=close.pk, worker=name, now=when)

    results = at_once([work(name) for name in workers])
    assert all(isinstance(r, EpochClose) for r in results), results
    close.refresh_from_db()
    assert len(builds) == 1
    if close.state == CloseState.STORED:  # the loser left while the winner was storing: the next pass records
        close = advance(w3, close, "c")
    assert close.state == CloseState.RECORDED
    assert close.attempts == 1
    assert transitions(close) == HAPPY
    assert len(results_recorded(w3, campaign)) == 1
    tx = OracleTransaction.objects.get()
    assert dict(broadcasts) == {tx.tx_hash: 1}


# ---------------------------------------------------------------------------------------------- on chain already


@pytest.mark.django_db
def test_results_already_recorded_with_the_same_digest_are_adopted_without_a_transaction(
    w3, factory_address, token, broadcasts, monkeypatch
) -> None:
    campaign = open_campaign(w3, factory_address, token)
    close = closing.epoch_close_ensure(campaign=campaign, epoch=0)
    monkeypatch.setattr(closing, "_record", lambda close_id: EpochClose.objects.get(pk=close_id))
    close = advance(w3, close)
    assert close.state == CloseState.STORED
    monkeypatch.setattr(closing, "_record", _REAL_RECORD)
    # Someone holding the recording key (an earlier deployment, an operator by hand) recorded the same digest.
    fn = campaign_contract(w3, campaign.address).functions.recordResults(
        0, bytes.fromhex(close.bundle_digest), "ipfs://by-hand"
    )
    by_hand = call(w3, fn, ORACLE)

    close = advance(w3, close, "w2")
    assert close.state == CloseState.RECORDED
    tx = OracleTransaction.objects.get()
    assert tx.status == OracleTransaction.Status.ADOPTED
    assert tx.raw_tx in ("", None)
    assert not broadcasts
    # The close names the transaction that did record it.
    assert close.tx_hash == "0x" + bytes(by_hand["transactionHash"]).hex()
    assert close.block_number == by_hand["blockNumber"]
    assert len(results_recorded(w3, campaign)) == 1
    assert transitions(close) == HAPPY


@pytest.mark.django_db
def test_results_already_recorded_with_another_digest_fail_the_close_and_send_nothing(
    w3, factory_address, token, broadcasts
) -> None:
    campaign = open_campaign(w3, factory_address, token)
    other = b"\xcd" * 32
    call(w3, campaign_contract(w3, campaign.address).functions.recordResults(0, other, "ipfs://other"), ORACLE)
    close = closing.epoch_close_ensure(campaign=campaign, epoch=0)

    close = advance(w3, close)
    assert close.state == CloseState.FAILED
    assert "already holds results hash 0x" + other.hex() in close.failure_reason
    assert close.bundle_digest  # the oracle's own bundle is stored all the same, for the operator to compare
    assert not OracleTransaction.objects.exists()
    assert not broadcasts
    failed = close.transitions.get(event="failed")
    assert failed.detail["recorded"] == "0x" + other.hex()
    assert failed.detail["ours"] == "0x" + close.bundle_digest
    assert failed.detail["reason"] == close.failure_reason
    (event,) = results_recorded(w3, campaign)
    assert event["args"]["resultsHash"] == other
    # Failed waits for a person: advancing again changes nothing.
    assert advance(w3, close, "w2").state == CloseState.FAILED
    assert close.transitions.count() == 3


@pytest.mark.django_db
def test_a_failed_close_tells_a_person_once_per_round(w3, factory_address, token) -> None:
    """Nothing retries a failed close by itself: an alert says so (as a failed payout's does), in the transaction
    that fails it, once per round — whether it failed building (inputs it cannot score) or recording."""
    campaign = open_campaign(w3, factory_address, token)
    other = b"\xcd" * 32
    call(w3, campaign_contract(w3, campaign.address).functions.recordResults(0, other, "ipfs://other"), ORACLE)
    close = advance(w3, closing.epoch_close_ensure(campaign=campaign, epoch=0))
    assert close.state == CloseState.FAILED
    alert = Alert.objects.get(kind="epoch_close_failed")
    assert (alert.dedup_key, alert.severity, alert.resolved_at) == (f"close-failed:c{close.pk}:0", "critical", None)
    assert close.failure_reason in alert.message
    assert alert.detail == {"close_id": close.pk, "epoch": 0, "campaign": campaign.address}
    assert advance(w3, close, "w2").state == CloseState.FAILED  # asked again: the same, and one alert
    assert Alert.objects.filter(kind="epoch_close_failed").count() == 1
    closing.epoch_close_retry(close_id=close.pk)
    assert advance(w3, close).state == CloseState.FAILED
    keys = sorted(Alert.objects.filter(kind="epoch_close_failed").values_list("dedup_key", flat=True))
    assert keys == [f"close-failed:c{close.pk}:0", f"close-failed:c{close.pk}:1"]

    # Epoch 1 fails while building: a snapshot of its own repeats a price on one side.
    t_ms = (int(campaign.start.timestamp()) + EPOCH) * 1000
    book = {"bids": [["0.99", "1000"], ["0.99", "500"]], "asks": [["1.01", "800"]]}
    BookSnapshot.objects.create(
        campaign=campaign, t_ms=t_ms, book=book, exchange_ts_ms=t_ms, recorded_ms=t_ms + 5, source="ws"
    )
    fresh = advance(w3, closing.epoch_close_ensure(campaign=campaign, epoch=1))
    assert fresh.state == CloseState.FAILED
    assert fresh.failure_reason.startswith("the oracle built inputs it cannot score")
    assert Alert.objects.get(kind="epoch_close_failed", dedup_key=f"close-failed:c{fresh.pk}:0").detail["epoch"] == 1


# ---------------------------------------------------------------------------------------------- which, and when


@pytest.mark.django_db
def test_a_close_within_its_grace_or_of_a_running_epoch_stays_collecting(w3, factory_address, token, settings):
    campaign = open_campaign(w3, factory_address, token)
    running = closing.epoch_close_ensure(campaign=campaign, epoch=2)
    assert advance(w3, running).state == CloseState.COLLECTING

    settings.ORACLE_REPORT_GRACE_SECONDS = 3600  # reports of epoch 0 may still come in
    close = closing.epoch_close_ensure(campaign=campaign, epoch=0)
    close = advance(w3, close)
    assert close.state == CloseState.COLLECTING
    assert close.attempts == 0
    assert not close.inputs_name
    assert not close.transitions.exists()
    assert not running.transitions.exists()
    assert not OracleTransaction.objects.exists()
    assert results_recorded(w3, campaign) == []

    settings.ORACLE_REPORT_GRACE_SECONDS = 0
    assert advance(w3, close).state == CloseState.RECORDED


@pytest.mark.django_db
def test_closes_due_are_opened_only_for_campaigns_naming_our_recording_key(w3, factory_address, token, settings):
    ours = open_campaign(w3, factory_address, token)
    theirs = open_campaign(w3, factory_address, token, recorder=STRANGER)
    when = chain_now(w3)

    due = closing.epoch_closes_due(now=when)
    rows = EpochClose.objects.filter(campaign=ours).order_by("epoch")
    assert [c.epoch for c in rows] == [0, 1, 2]  # the two epochs over and the one running
    assert sorted(due) == sorted(c.pk for c in rows)
    assert all(c.state == CloseState.COLLECTING for c in rows)
    assert not EpochClose.objects.filter(campaign=theirs).exists()
    # Opening them again opens nothing more.
    assert sorted(closing.epoch_closes_due(now=when)) == sorted(due)
    assert EpochClose.objects.count() == 3

    recorded = advance(w3, rows[0])
    assert recorded.state == CloseState.RECORDED
    assert sorted(closing.epoch_closes_due(now=when)) == sorted(c.pk for c in rows[1:])

    # A campaign naming a retired key of ours is still ours; a process holding no key opens nothing.
    settings.RECORDING_ORACLE_PRIVATE_KEY = STRANGER.private_key
    settings.RECORDING_ORACLE_RETIRED_KEYS = [ORACLE.private_key]
    assert len(closing.epoch_closes_due(now=when)) == 2 + 3
    assert EpochClose.objects.filter(campaign=theirs).count() == 3
    settings.RECORDING_ORACLE_PRIVATE_KEY = ""
    settings.RECORDING_ORACLE_RETIRED_KEYS = []
    assert closing.epoch_closes_due(now=when) == []
    assert closing.epoch_previews_due(now=when) == []


@pytest.mark.django_db
def test_closes_due_leave_out_unfunded_campaigns_and_those_not_started(w3, factory_address, token):
    campaign = open_campaign(w3, factory_address, token)
    assert closing.epoch_closes_due(now=campaign.start - timedelta(seconds=1)) == []
    assert closing.epoch_previews_due(now=campaign.start - timedelta(seconds=1)) == []
    Campaign.objects.filter(pk=campaign.pk).update(funded=False)
    assert closing.epoch_closes_due(now=chain_now(w3)) == []
    assert closing.epoch_previews_due(now=chain_now(w3)) == []
    assert not EpochClose.objects.exists()


# ---------------------------------------------------------------------------------------------- failures, retries


@pytest.mark.django_db
def test_retry_sends_a_failed_close_back_to_closing_and_nothing_else(w3, factory_address, token) -> None:
    campaign = open_campaign(w3, factory_address, token)
    other = b"\xcd" * 32
    call(w3, campaign_contract(w3, campaign.address).functions.recordResults(0, other, "ipfs://other"), ORACLE)
    close = advance(w3, closing.epoch_close_ensure(campaign=campaign, epoch=0))
    assert close.state == CloseState.FAILED

    close = closing.epoch_close_retry(close_id=close.pk)
    assert close.state == CloseState.CLOSING
    assert close.failure_reason == ""
    assert close.attempts == 0
    with pytest.raises(IllegalCloseTransition):
        closing.epoch_close_retry(close_id=close.pk)
    # The chain still holds the other digest: the second round fails the same way, recorded as its own step.
    close = advance(w3, close)
    assert close.state == CloseState.FAILED
    assert [e for e, _, _ in transitions(close)] == ["grace_over", "stored", "failed", "retry", "stored", "failed"]
    assert not OracleTransaction.objects.exists()

    # From collecting, stored or recorded a retry is refused, and changes nothing.
    fresh = closing.epoch_close_ensure(campaign=campaign, epoch=1)
    for state in (CloseState.COLLECTING, CloseState.STORED, CloseState.RECORDED):
        EpochClose.objects.filter(pk=fresh.pk).update(state=state.value)
        with pytest.raises(IllegalCloseTransition) as refused:
            closing.epoch_close_retry(close_id=fresh.pk)
        assert refused.value.state == state
        assert EpochClose.objects.get(pk=fresh.pk).state == state
        assert not fresh.transitions.exists()


@pytest.mark.django_db
def test_a_close_failed_after_it_was_stored_is_stored_again_and_recorded_after_a_retry(
    w3, factory_address, token, settings, broadcasts
) -> None:
    campaign = open_campaign(w3, factory_address, token)
    settings.RECORDING_ORACLE_PRIVATE_KEY = STRANGER.private_key  # a deployment that lost the campaign's key
    close = advance(w3, closing.epoch_close_ensure(campaign=campaign, epoch=0))
    assert close.state == CloseState.FAILED
    assert "holds no recording oracle key for" in close.failure_reason
    assert not OracleTransaction.objects.exists()
    assert not broadcasts

    settings.RECORDING_ORACLE_PRIVATE_KEY = ORACLE.private_key  # the operator restores it
    closing.epoch_close_retry(close_id=close.pk)
    close = advance(w3, close)
    assert close.state == CloseState.RECORDED
    assert [e for e, _, _ in transitions(close)] == ["grace_over", "stored", "failed", "retry", "stored", "recorded"]
    (event,) = results_recorded(w3, campaign)
    assert event["args"]["resultsHash"].hex().removeprefix("0x") == close.bundle_digest
    assert close.lease_owner == ""


@pytest.mark.django_db
def test_inputs_the_oracle_cannot_score_fail_the_close_in_every_round(w3, factory_address, token, monkeypatch):
    campaign = open_campaign(w3, factory_address, token)

    def unscorable(document: dict[str, Any]) -> tuple[bytes, bytes]:
        raise ScoringInputError("snapshots", "out of order")

    monkeypatch.setattr(closing, "scored_documents", unscorable)
    close = advance(w3, closing.epoch_close_ensure(campaign=campaign, epoch=0))
    assert close.state == CloseState.FAILED
    assert close.failure_reason.startswith("the oracle built inputs it cannot score")
    assert (close.lease_owner, close.lease_until) == ("", None)
    closing.epoch_close_retry(close_id=close.pk)
    close = advance(w3, close)
    assert close.state == CloseState.FAILED  # not left in closing with its failure silently skipped
    assert [e for e, _, _ in transitions(close)] == ["grace_over", "failed", "retry", "failed"]
    assert not close.inputs_name
    assert not OracleTransaction.objects.exists()


@pytest.mark.django_db
def test_an_exchange_outage_leaves_the_close_in_closing_released_and_the_task_retries(
    w3, factory_address, token, monkeypatch
) -> None:
    campaign = open_campaign(w3, factory_address, token)
    close = closing.epoch_close_ensure(campaign=campaign, epoch=0)
    real_build = closing.build_inputs

    def down(**kwargs: Any) -> Any:
        raise ExchangeUnavailable("binance did not answer", extra={"exchange": "binance"})

    monkeypatch.setattr(closing, "build_inputs", down)
    with pytest.raises(ExchangeUnavailable):
        advance(w3, close)
    close.refresh_from_db()
    assert close.state == CloseState.CLOSING
    assert close.last_error == "exchange_unavailable: binance did not answer"
    assert (close.lease_owner, close.lease_until) == ("", None)
    assert not close.inputs_name
    assert not OracleTransaction.objects.exists()
    assert ExchangeUnavailable in tasks.OracleTask.autoretry_for

    # The task: the first run meets the outage and is retried; the retry closes the epoch.
    calls: list[int] = []

    def down_once(**kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise ExchangeUnavailable("binance did not answer")
        return real_build(**kwargs)

    monkeypatch.setattr(closing, "build_inputs", down_once)
    monkeypatch.setattr(closing.timezone, "now", lambda: chain_now(w3))
    result = tasks.close_epoch.apply(args=(close.pk,))
    assert result.successful(), result.traceback
    assert len(calls) == 2
    close.refresh_from_db()
    assert close.state == CloseState.RECORDED
    assert close.last_error == ""
    assert close.attempts == 3
    assert len(results_recorded(w3, campaign)) == 1


# ---------------------------------------------------------------------------------------------- the preview


@pytest.mark.django_db
def test_the_preview_scores_the_running_epoch_so_far(w3, factory_address, token) -> None:
    campaign = open_campaign(w3, factory_address, token)
    when = chain_now(w3)
    start = int(campaign.start.timestamp()) + 2 * EPOCH  # epoch 2 runs
    for k in range(3):
        t_ms = (start + k * SAMPLE) * 1000
        BookSnapshot.objects.create(
            campaign=campaign,
            t_ms=t_ms,
            book={"bids": [["0.99", "10"]], "asks": [["1.01", "10"]]},
            exchange_ts_ms=t_ms,
            recorded_ms=t_ms,
            source="rest",
        )
    preview = closing.epoch_preview_refresh(campaign_id=campaign.pk, now=when)
    assert preview is not None
    row = EpochPreview.objects.get(campaign=campaign)
    assert row.pk == preview.pk
    assert row.epoch == 2
    assert row.as_of_ms == int(when.timestamp() * 1000)
    assert row.bundle["epoch"]["index"] == 2
    assert row.bundle["epoch"]["start_ms"] == start * 1000
    assert row.bundle["epoch"]["end_ms"] == int(when.timestamp()) * 1000
    assert closing.epoch_previews_due(now=when) == [campaign.pk]
    # The proof page's figures ride along: the two-sided samples of the epoch so far, no reported order (nobody
    # takes part).
    assert 1 <= row.attested_depth["samples"] <= 3
    assert row.attested_depth["by_identity"] == {}
    # Nothing is closed, stored or sent for a preview.
    assert not EpochClose.objects.exists()
    assert not OracleTransaction.objects.exists()

    # Refreshed, the same row; outside the campaign, none.
    later = closing.epoch_preview_refresh(campaign_id=campaign.pk, now=when + timedelta(seconds=5))
    assert later is not None
    assert later.pk == row.pk
    assert later.as_of_ms == row.as_of_ms + 5000
    assert closing.epoch_preview_refresh(campaign_id=campaign.pk, now=campaign.end) is None
    assert EpochPreview.objects.count() == 1


@pytest.mark.django_db
def test_a_chain_node_refusing_the_broadcast_leaves_the_close_stored_and_the_task_retries(
    w3, factory_address, token, monkeypatch
) -> None:
    campaign = open_campaign(w3, factory_address, token)
    close = closing.epoch_close_ensure(campaign=campaign, epoch=0)
    real_advance = oracle_tx.oracle_tx_advance
    calls: list[int] = []

    def refused_once(*, tx_id: int) -> str:
        calls.append(tx_id)
        if len(calls) == 1:
            raise OracleChainUnavailable("the chain refused oracle transaction", extra={"tx_id": tx_id})
        return real_advance(tx_id=tx_id)

    monkeypatch.setattr(oracle_tx, "oracle_tx_advance", refused_once)
    with pytest.raises(OracleChainUnavailable):
        advance(w3, close)
    close.refresh_from_db()
    assert close.state == CloseState.STORED
    assert results_recorded(w3, campaign) == []

    calls.clear()
    monkeypatch.setattr(closing.timezone, "now", lambda: chain_now(w3))
    result = tasks.close_epoch.apply(args=(close.pk,))
    assert result.successful(), result.traceback
    assert len(calls) == 2
    close.refresh_from_db()
    assert close.state == CloseState.RECORDED
    assert OracleTransaction.objects.count() == 1
    assert len(results_recorded(w3, campaign)) == 1


@pytest.mark.django_db
def test_a_close_not_stored_yet_is_a_typed_404_and_listed_without_urls(w3, factory_address, token, client) -> None:
    campaign = open_campaign(w3, factory_address, token)
    closing.epoch_close_ensure(campaign=campaign, epoch=2)
    base = f"/api/v1/payouts/{campaign.chain_id}/{campaign.address}"
    for kind in ("inputs", "bundle"):
        response = client.get(f"{base}/2/{kind}.json")
        assert response.status_code == 404
        assert response.json()["code"] == "artifact_not_found"
        assert response.json()["extra"] == {"state": "collecting"}
    (row,) = client.get(f"{base}/epochs").json()
    assert (row["state"], row["inputs_url"], row["bundle_url"]) == ("collecting", None, None)
    assert client.get(f"/api/v1/payouts/{campaign.chain_id}/0x{'00' * 20}/epochs").json() == []


@pytest.mark.django_db
def test_closes_due_cost_a_few_queries_per_campaign_however_many_epochs_it_has(
    w3, factory_address, token, django_assert_max_num_queries
) -> None:
    campaign = open_campaign(w3, factory_address, token)
    when = campaign.end + timedelta(seconds=1)  # every epoch is over
    first = closing.epoch_closes_due(now=when)
    assert len(first) == EPOCHS
    with django_assert_max_num_queries(3):
        assert closing.epoch_closes_due(now=when) == first


@pytest.mark.django_db
def test_the_preview_at_the_first_instant_of_an_epoch_is_none(w3, factory_address, token) -> None:
    campaign = open_campaign(w3, factory_address, token)
    at_start = campaign.start + timedelta(seconds=2 * EPOCH)
    assert closing.epoch_preview_refresh(campaign_id=campaign.pk, now=at_start) is None
    assert not EpochPreview.objects.exists()
    assert closing.epoch_preview_refresh(campaign_id=campaign.pk, now=at_start + timedelta(milliseconds=1))


@pytest.mark.django_db
def test_the_admin_retry_action_sends_failed_closes_back_and_warns_about_the_others(
    w3, factory_address, token, admin_client, monkeypatch
) -> None:
    campaign = open_campaign(w3, factory_address, token)

    def unscorable(document: dict[str, Any]) -> tuple[bytes, bytes]:
        raise ScoringInputError("snapshots", "out of order")

    monkeypatch.setattr(closing, "scored_documents", unscorable)
    failed = advance(w3, closing.epoch_close_ensure(campaign=campaign, epoch=0))
    assert failed.state == CloseState.FAILED
    collecting = closing.epoch_close_ensure(campaign=campaign, epoch=2)

    response = admin_client.post(
        "/admin/payouts/epochclose/",
        {"action": "retry", "_selected_action": [failed.pk, collecting.pk]},
        follow=True,
    )
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert any("cannot take retry" in m for m in shown), shown
    assert any("Sent 1 close(s) back to closing" in m for m in shown), shown
    assert EpochClose.objects.get(pk=failed.pk).state == CloseState.CLOSING
    assert EpochClose.objects.get(pk=collecting.pk).state == CloseState.COLLECTING
    assert not collecting.transitions.exists()


@pytest.mark.django_db
def test_a_chain_clock_behind_ours_leaves_the_close_stored_until_the_chain_sees_the_epoch_over(
    w3, factory_address, token, broadcasts
) -> None:
    campaign = open_campaign(w3, factory_address, token)
    end = int(campaign.start.timestamp()) + 3 * EPOCH  # epoch 2 runs on chain
    close = closing.epoch_close_ensure(campaign=campaign, epoch=2)
    ours = datetime.fromtimestamp(end + 1, tz=UTC)  # our clock says it is over
    assert now(w3) < end

    close = closing.epoch_close_advance(close_id=close.pk, worker="w1", now=ours)
    assert close.state == CloseState.STORED
    assert not OracleTransaction.objects.exists()  # nothing signed for a call the chain refuses yet
    assert not broadcasts
    assert close.failure_reason == ""

    travel_to(w3, end + 1)
    close = closing.epoch_close_advance(close_id=close.pk, worker="w1", now=ours)
    assert close.state == CloseState.RECORDED
    (event,) = results_recorded(w3, campaign)
    assert event["args"]["epoch"] == 2


@pytest.mark.django_db
def test_a_worker_killed_while_building_holds_the_lease_until_it_runs_out_then_another_builds(
    w3, factory_address, token, settings, monkeypatch
) -> None:
    settings.ORACLE_CLOSE_LEASE_SECONDS = 900
    campaign = open_campaign(w3, factory_address, token)
    close = closing.epoch_close_ensure(campaign=campaign, epoch=0)
    real_build = closing.build_inputs

    def killed(**kwargs: Any) -> Any:
        raise Killed

    monkeypatch.setattr(closing, "build_inputs", killed)
    when = chain_now(w3)
    with pytest.raises(Killed):
        closing.epoch_close_advance(close_id=close.pk, worker="w1", now=when)
    close.refresh_from_db()
    assert (close.state, close.lease_owner, close.attempts) == (CloseState.CLOSING, "w1", 1)
    assert close.lease_until is not None

    monkeypatch.setattr(closing, "build_inputs", real_build)
    for worker in ("w2", "w1"):  # nobody, not even the same task delivered again, builds within the lease
        close = closing.epoch_close_advance(close_id=close.pk, worker=worker, now=when + timedelta(seconds=899))
        assert (close.state, close.lease_owner, close.attempts) == (CloseState.CLOSING, "w1", 1)
    close = closing.epoch_close_advance(close_id=close.pk, worker="w2", now=when + timedelta(seconds=900))
    assert close.state == CloseState.RECORDED
    assert close.attempts == 2
    assert (close.lease_owner, close.lease_until) == ("", None)
    assert len(results_recorded(w3, campaign)) == 1


@pytest.fixture(scope="module")
def exchange_sim() -> Iterator[RunningExchange]:
    with run_exchange() as running:
        yield running


@pytest.mark.django_db
def test_an_exchange_down_while_a_participants_keys_are_read_keeps_the_close_in_closing(
    w3, factory_address, token, settings, exchange_sim, close_settings
) -> None:
    """The real path: a participant with a read-only key, whose link keys the close asks the exchange for."""
    settings.EXCHANGE_API_URLS = {"binance": exchange_sim.base_url}
    campaign = open_campaign(w3, factory_address, token)
    owner = user_with(Role.OPERATOR)
    key = exchange_sim.sim.create_account(permissions=frozenset())
    account = exchange_accounts.exchange_account_enrol(
        owner_id=owner.pk,
        exchange="binance",
        label="watch",
        role="read_only",
        credentials=ExchangeCredentials(key.key, key.secret),
    )
    reward = Web3.to_checksum_address("0x" + "5a" * 20).lower()
    participant = Participant.objects.create(
        campaign=campaign,
        reward_address=reward,
        owner=owner,
        joined_at=campaign.start,
        siwe_message="(joined in a test)",
        siwe_signature="0x",
    )
    ParticipantAccount.objects.create(participant=participant, exchange_account=account)
    close = closing.epoch_close_ensure(campaign=campaign, epoch=0)

    settings.EXCHANGE_API_URLS = {"binance": "http://127.0.0.1:9"}  # nothing listens there
    with pytest.raises(ExchangeUnavailable):
        advance(w3, close)
    close.refresh_from_db()
    assert close.state == CloseState.CLOSING
    assert close.last_error.startswith("exchange_unavailable: binance did not answer")
    assert (close.lease_owner, close.lease_until) == ("", None)
    assert not close.inputs_name
    assert not OracleTransaction.objects.exists()

    settings.EXCHANGE_API_URLS = {"binance": exchange_sim.base_url}
    close = advance(w3, close, "w2")
    assert close.state == CloseState.RECORDED
    assert close.last_error == ""
    # Back up, the exchange answers, but this simulator keeps no deposit addresses without a chain: an account
    # whose link keys cannot be read is left out, said so in the notes, and the close goes on for everybody else.
    assert close.participants == 0
    (note,) = close.notes
    assert (note["participant"], note["left_out"]) == (reward, "crosscheck_failed")
    assert note["why"].startswith("link keys unreadable")
    assert json.loads(stored(close_settings, close.inputs_name))["participants"] == []


@pytest.mark.django_db
def test_any_error_of_the_build_releases_the_lease_and_keeps_no_untyped_text(
    w3, factory_address, token, monkeypatch
) -> None:
    campaign = open_campaign(w3, factory_address, token)
    close = closing.epoch_close_ensure(campaign=campaign, epoch=0)
    CampaignMetadata.objects.filter(hash=campaign.metadata_hash).delete()
    with pytest.raises(CampaignMetadataMissing):
        advance(w3, close)
    close.refresh_from_db()
    assert close.state == CloseState.CLOSING
    assert close.last_error.startswith("campaign_metadata_missing: the oracle does not hold")
    assert (close.lease_owner, close.lease_until) == ("", None)

    def node_down(**kwargs: Any) -> Any:
        raise OSError("cannot reach https://rpc.example/v3/SECRETKEY")

    monkeypatch.setattr(closing, "build_inputs", node_down)
    with pytest.raises(OSError, match="cannot reach"):
        advance(w3, close, "w2")
    close.refresh_from_db()
    assert close.last_error == "OSError"
    assert (close.state, close.lease_owner, close.lease_until) == (CloseState.CLOSING, "", None)
    assert close.attempts == 2
    assert not close.inputs_name


@pytest.mark.django_db
def test_an_oracle_that_cannot_name_its_commit_stores_nothing_and_says_why(
    w3, factory_address, token, monkeypatch
) -> None:
    campaign = open_campaign(w3, factory_address, token)
    close = closing.epoch_close_ensure(campaign=campaign, epoch=0)
    monkeypatch.setenv("MRMARKET_COMMIT", "not-a-commit")  # a deployment without .git, misconfigured
    with pytest.raises(SoftwareUnknown):
        advance(w3, close)
    close.refresh_from_db()
    assert close.state == CloseState.CLOSING
    assert close.last_error.startswith("software_unknown:")
    assert not close.inputs_name
    assert not OracleTransaction.objects.exists()
    monkeypatch.setenv("MRMARKET_COMMIT", "ab" * 20)  # told which commit it runs: the bundle names it
    close = advance(w3, close)
    assert close.state == CloseState.RECORDED
    with storages[ARTIFACT_STORAGE].open(close.bundle_name, "rb") as f:
        assert json.loads(f.read())["software"]["commit"] == "ab" * 20


@pytest.mark.django_db
def test_a_long_build_renews_its_lease_and_stops_once_another_worker_took_it_over(
    w3, factory_address, token, monkeypatch, settings
) -> None:
    settings.ORACLE_CLOSE_LEASE_SECONDS = 60
    campaign = open_campaign(w3, factory_address, token)
    close = closing.epoch_close_ensure(campaign=campaign, epoch=0)
    real_build = closing.build_inputs
    leases: list[Any] = []

    def slow(**kwargs: Any) -> Any:
        # Between participants the build says it is still at work: the lease is pushed out each time.
        EpochClose.objects.filter(pk=close.pk).update(lease_until=timezone.now() + timedelta(seconds=1))
        kwargs["progress"]()
        leases.append(EpochClose.objects.get(pk=close.pk).lease_until)
        return real_build(**kwargs)

    monkeypatch.setattr(closing, "build_inputs", slow)
    assert advance(w3, close).state == CloseState.RECORDED
    assert leases[0] > timezone.now() + timedelta(seconds=30)

    other = closing.epoch_close_ensure(campaign=campaign, epoch=1)
    travel_to(w3, int(other.epoch_end.timestamp()) + 1)

    def taken_over(**kwargs: Any) -> Any:
        # This worker's lease ran out mid-build and another took the close: at its next progress it stops.
        EpochClose.objects.filter(pk=other.pk).update(lease_owner="w2")
        kwargs["progress"]()
        raise AssertionError("the build went on after losing its lease")

    monkeypatch.setattr(closing, "build_inputs", taken_over)
    after = advance(w3, other)
    assert (after.state, after.lease_owner, after.inputs_name) == (CloseState.CLOSING, "w2", "")


@pytest.mark.django_db
def test_a_close_whose_record_was_parked_records_under_a_new_purpose_after_a_retry(
    w3, factory_address, token, monkeypatch
) -> None:
    campaign = open_campaign(w3, factory_address, token)
    close = closing.epoch_close_ensure(campaign=campaign, epoch=0)

    def killed(*, tx_id: int) -> str:
        raise Killed  # the worker dies once the transaction is signed and stored, before it is broadcast

    monkeypatch.setattr(oracle_tx, "oracle_tx_advance", killed)
    with pytest.raises(Killed):
        advance(w3, close)
    signed = OracleTransaction.objects.get()
    # Meanwhile the key's owner spends that nonce on something else: the stored transaction can never be mined.
    other = w3.eth.account.sign_transaction(
        {
            "to": ORACLE.address,
            "value": 0,
            "gas": 21_000,
            "gasPrice": w3.eth.gas_price,
            "nonce": signed.nonce,
            "chainId": w3.eth.chain_id,
        },
        ORACLE.private_key,
    )
    w3.eth.send_raw_transaction(other.raw_transaction)
    monkeypatch.setattr(oracle_tx, "oracle_tx_advance", _REAL_ADVANCE)
    close = advance(w3, close)
    assert close.state == CloseState.FAILED
    assert "parked" in close.failure_reason
    assert results_recorded(w3, campaign) == []

    closing.epoch_close_retry(close_id=close.pk)
    close = advance(w3, close)
    assert close.state == CloseState.RECORDED
    (event,) = results_recorded(w3, campaign)
    assert event["args"]["resultsHash"].hex().removeprefix("0x") == close.bundle_digest
    assert sorted(OracleTransaction.objects.values_list("purpose_key", "status")) == [
        (signed.purpose_key, "parked"),
        (f"{signed.purpose_key}:retry1", "mined"),
    ]
