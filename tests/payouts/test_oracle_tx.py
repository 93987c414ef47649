"""The oracle transaction sender on Anvil: recordResults signed and stored before it is sent, sent once, resumed
after a crash at either side of the broadcast, adopted when the chain already holds it, refused when the chain
holds other results, replaced at a higher gas price when it waits, and advanced by two workers at once without a
second broadcast (PostgreSQL for the race)."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from eth_account import Account
from web3 import Web3
from web3.exceptions import TransactionNotFound, Web3RPCError

from devnet.chain import Anvil, deploy_dev_token, dev_accounts
from devnet.protocol import CampaignParams, call, create_campaign, deploy_factory, now, travel_to
from devnet.protocol import campaign as campaign_contract
from execution.models import Alert, CustodyNonce
from mrmarket.apps import _register_configured_secrets
from payouts import oracle_tx
from payouts.errors import (
    InvalidOracleCall,
    OracleCallRejected,
    OracleChainMismatch,
    OracleKeyNotConfigured,
    OraclePurposeConflict,
    ResultsAlreadyRecordedDifferently,
)
from payouts.models import OracleTransaction
from payouts.oracle_keys import oracle_signer
from tests.fixtures.chain import chain_of_its_own
from tests.fixtures.threads import at_once
from tests.plugins.require import require_postgresql
from wire.redaction import redact_text

pytestmark = [pytest.mark.chain, pytest.mark.timeout(120)]

ACCOUNTS = dev_accounts()
DEPLOYER, CREATOR, ORACLE, STRANGER = ACCOUNTS[0], ACCOUNTS[1], ACCOUNTS[2], ACCOUNTS[5]
DIGEST = "0x" + "ab" * 32
OTHER_DIGEST = "0x" + "cd" * 32
EPOCH_LENGTH = 100
_salts = itertools.count(1)


anvil, w3 = chain_of_its_own()


@pytest.fixture(scope="module")
def factory_and_token(w3: Web3) -> tuple[str, str]:
    return deploy_factory(w3, sender=DEPLOYER), deploy_dev_token(w3, sender=DEPLOYER)


@pytest.fixture(autouse=True)
def chain_settings(settings, anvil: Anvil) -> None:
    settings.CHAIN_RPC_URL = anvil.url
    settings.CHAIN_CONFIRMATIONS = 1  # mined is final here; reorgs are tests/chaos/test_matrix_chain_*.py
    settings.RECORDING_ORACLE_PRIVATE_KEY = ORACLE.private_key
    settings.REPUTATION_ORACLE_PRIVATE_KEY = ORACLE.private_key
    settings.ORACLE_GAS_BUMP_SECONDS = 3600


@pytest.fixture
def campaign(w3: Web3, factory_and_token: tuple[str, str]) -> str:
    """A fresh campaign naming ORACLE as its recording oracle, with its epoch 0 over (the others still to come)."""
    factory, token = factory_and_token
    start = now(w3) + 10
    params = CampaignParams(
        token, ORACLE.address, ORACLE.address, ORACLE.address, start, start + 3 * EPOCH_LENGTH, EPOCH_LENGTH,
        10_000, 1_000 * 10**6, 0, b"\x01" * 32,
    )  # fmt: skip
    address, _ = create_campaign(
        w3, factory, params, creator=CREATOR, salt=next(_salts).to_bytes(32, "big"), fund_now=False
    )
    travel_to(w3, start + EPOCH_LENGTH + 1)
    return address


@pytest.fixture
def broadcasts(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many times each signed version went to the node."""
    sent: Counter[str] = Counter()
    real = oracle_tx._send_raw

    def counting(w3: Web3, raw_tx: str) -> None:
        sent["0x" + Web3.keccak(hexstr=raw_tx).hex()] += 1
        real(w3, raw_tx)

    monkeypatch.setattr(oracle_tx, "_send_raw", counting)
    return sent


@pytest.fixture
def automine_off(w3: Web3) -> Iterator[Callable[[], None]]:
    w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        yield lambda: mine(w3)
    finally:
        w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def mine(w3: Web3) -> None:
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def record(w3: Web3, address: str, *, epoch: int = 0, digest: str = DIGEST) -> OracleTransaction:
    return oracle_tx.record_results_tx(
        chain_id=w3.eth.chain_id, campaign_address=address, epoch=epoch, digest_hex=digest, uri="ipfs://results"
    )


def results_hash(w3: Web3, address: str, epoch: int = 0) -> str:
    return "0x" + bytes(campaign_contract(w3, address).functions.resultsHash(epoch).call()).hex()


def waited(row: OracleTransaction) -> None:
    """The version in tx_hash was signed longer ago than ORACLE_GAS_BUMP_SECONDS."""
    OracleTransaction.objects.filter(pk=row.pk).update(signed_at=timezone.now() - timedelta(hours=2))


def oracle_nonce(w3: Web3) -> int:
    return int(w3.eth.get_transaction_count(ORACLE.address, "latest"))


# ---------------------------------------------------------------------------------------------- keys


def test_signer_per_role_and_a_typed_error_without_the_key_when_absent_or_malformed(settings) -> None:
    assert oracle_signer("recording").address == ORACLE.address
    settings.REPUTATION_ORACLE_PRIVATE_KEY = ""
    with pytest.raises(OracleKeyNotConfigured) as absent:
        oracle_signer("reputation")
    assert "REPUTATION_ORACLE_PRIVATE_KEY" in absent.value.message
    settings.RECORDING_ORACLE_PRIVATE_KEY = "0x1234nothex5678"
    with pytest.raises(OracleKeyNotConfigured) as malformed:
        oracle_signer("recording")
    assert "1234nothex5678" not in str(malformed.value)
    with pytest.raises(OracleKeyNotConfigured):
        oracle_signer("custody")  # type: ignore[arg-type]


def test_the_oracle_keys_are_masked_in_whatever_the_process_writes_out(settings) -> None:
    key = "0x" + Account.create().key.hex()
    settings.RECORDING_ORACLE_PRIVATE_KEY = key
    settings.REPUTATION_ORACLE_PRIVATE_KEY = STRANGER.private_key
    _register_configured_secrets()
    assert key not in redact_text(f"signing with {key}")
    assert key[2:] not in redact_text(f"raw {key[2:]}")
    assert STRANGER.private_key not in redact_text(f"key={STRANGER.private_key}")


# ---------------------------------------------------------------------------------------------- the happy path


@pytest.mark.django_db
def test_record_results_is_mined_once_and_emits_the_digest(w3, campaign, broadcasts) -> None:
    row = record(w3, campaign)
    assert row.status == OracleTransaction.Status.SIGNED
    assert row.raw_tx
    assert row.tx_hash
    assert row.nonce is not None
    assert row.purpose_key == f"record:{w3.eth.chain_id}:{campaign.lower()}:0"

    assert oracle_tx.oracle_tx_advance(tx_id=row.pk) == OracleTransaction.Status.MINED
    row.refresh_from_db()
    receipt = w3.eth.get_transaction_receipt(row.tx_hash)
    assert receipt["status"] == 1
    assert row.block_number == receipt["blockNumber"]
    (event,) = campaign_contract(w3, campaign).events.ResultsRecorded().process_receipt(receipt)
    assert event["args"]["epoch"] == 0
    assert "0x" + event["args"]["resultsHash"].hex() == DIGEST
    assert event["args"]["uri"] == "ipfs://results"
    assert results_hash(w3, campaign) == DIGEST
    assert dict(broadcasts) == {row.tx_hash: 1}
    assert row.versions.count() == 1
    assert row.settled_at is not None

    # Settled: advancing again sends nothing and changes nothing.
    assert oracle_tx.oracle_tx_advance(tx_id=row.pk) == OracleTransaction.Status.MINED
    assert dict(broadcasts) == {row.tx_hash: 1}


@pytest.mark.django_db
def test_a_second_prepare_returns_the_same_row_and_allocates_no_nonce(w3, campaign) -> None:
    first = record(w3, campaign)
    second = record(w3, campaign)
    assert second.pk == first.pk
    assert second.tx_hash == first.tx_hash
    assert OracleTransaction.objects.count() == 1
    assert first.nonce is not None
    assert CustodyNonce.objects.get(address=ORACLE.address.lower()).next_nonce == first.nonce + 1
    # The same purpose with other contents is a conflict, never a second transaction.
    with pytest.raises(OraclePurposeConflict):
        oracle_tx.oracle_tx_prepare(
            purpose_key=first.purpose_key, role="recording", chain_id=first.chain_id, to=first.to, data="0x00"
        )
    with pytest.raises(OraclePurposeConflict):
        record(w3, campaign, digest=OTHER_DIGEST)
    assert OracleTransaction.objects.count() == 1


# ---------------------------------------------------------------------------------------------- crashes


@pytest.mark.django_db
def test_a_crash_after_prepare_before_send_resumes_with_the_same_transaction(w3, campaign, broadcasts) -> None:
    before = oracle_nonce(w3)
    row = record(w3, campaign)
    signed_hash = row.tx_hash
    assert oracle_nonce(w3) == before
    assert not broadcasts
    assert results_hash(w3, campaign) == "0x" + "00" * 32

    # A fresh worker (nothing but the id) picks it up.
    assert oracle_tx.oracle_tx_send(tx_id=row.pk) == OracleTransaction.Status.BROADCAST
    assert oracle_tx.oracle_tx_advance(tx_id=row.pk) == OracleTransaction.Status.MINED
    row.refresh_from_db()
    assert row.tx_hash == signed_hash
    assert dict(broadcasts) == {signed_hash: 1}
    assert oracle_nonce(w3) == before + 1


@pytest.mark.django_db
def test_a_crash_after_the_broadcast_before_anything_was_stored_is_adopted(w3, campaign, broadcasts) -> None:
    row = record(w3, campaign)
    # The bytes reached the node, then the worker died before it stored `broadcast` (let alone the receipt).
    w3.eth.send_raw_transaction(row.raw_tx)
    assert OracleTransaction.objects.get(pk=row.pk).status == OracleTransaction.Status.SIGNED

    assert oracle_tx.oracle_tx_advance(tx_id=row.pk) == OracleTransaction.Status.MINED
    row.refresh_from_db()
    assert row.block_number == w3.eth.get_transaction_receipt(row.tx_hash)["blockNumber"]
    assert results_hash(w3, campaign) == DIGEST
    assert not Alert.objects.exists()


@pytest.mark.django_db
def test_a_crash_after_send_before_the_receipt_was_stored_is_settled_by_advance(w3, campaign, broadcasts) -> None:
    row = record(w3, campaign)
    oracle_tx.oracle_tx_send(tx_id=row.pk)  # mined by Anvil; the worker died before asking for the receipt
    assert OracleTransaction.objects.get(pk=row.pk).status == OracleTransaction.Status.BROADCAST
    assert oracle_tx.oracle_tx_advance(tx_id=row.pk) == OracleTransaction.Status.MINED
    assert dict(broadcasts) == {row.tx_hash: 1}


# ---------------------------------------------------------------------------------------------- what the chain holds


@pytest.mark.django_db
def test_results_already_recorded_with_the_same_digest_are_adopted_without_a_transaction(w3, campaign) -> None:
    fn = campaign_contract(w3, campaign).functions.recordResults(0, bytes.fromhex(DIGEST[2:]), "ipfs://elsewhere")
    call(w3, fn, ORACLE)
    before = oracle_nonce(w3)
    row = record(w3, campaign)
    assert row.status == OracleTransaction.Status.ADOPTED
    assert row.nonce is None
    assert row.tx_hash is None
    assert not row.raw_tx
    assert row.sender == ORACLE.address.lower()
    assert oracle_nonce(w3) == before
    assert not CustodyNonce.objects.exists()
    assert oracle_tx.oracle_tx_advance(tx_id=row.pk) == OracleTransaction.Status.ADOPTED
    assert record(w3, campaign).pk == row.pk


@pytest.mark.django_db
def test_results_recorded_with_another_digest_raise_and_store_nothing(w3, campaign) -> None:
    fn = campaign_contract(w3, campaign).functions.recordResults(0, bytes.fromhex(OTHER_DIGEST[2:]), "ipfs://x")
    call(w3, fn, ORACLE)
    before = oracle_nonce(w3)
    with pytest.raises(ResultsAlreadyRecordedDifferently) as err:
        record(w3, campaign)
    assert err.value.code == "results_already_recorded_differently"
    assert err.value.extra["recorded"] == OTHER_DIGEST
    assert not OracleTransaction.objects.exists()
    assert not CustodyNonce.objects.exists()
    assert oracle_nonce(w3) == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"campaign_address": "0x1234"}, "address"),
        ({"epoch": -1}, "epoch"),
        ({"epoch": 2**256}, "epoch"),
        ({"uri": None}, "uri"),
        ({"digest_hex": "0x" + "00" * 32}, "digest"),
        ({"digest_hex": "ab" * 32}, "digest"),
    ],
)
def test_malformed_arguments_raise_and_store_nothing(w3, campaign, kwargs, field) -> None:
    args: dict[str, Any] = {
        "chain_id": w3.eth.chain_id,
        "campaign_address": campaign,
        "epoch": 0,
        "digest_hex": DIGEST,
        "uri": "ipfs://r",
    }
    with pytest.raises(InvalidOracleCall) as err:
        oracle_tx.record_results_tx(**{**args, **kwargs})
    assert field in err.value.message
    assert not OracleTransaction.objects.exists()
    assert not CustodyNonce.objects.exists()


@pytest.mark.django_db
def test_a_node_serving_another_chain_is_refused_before_signing(w3, campaign) -> None:
    with pytest.raises(OracleChainMismatch) as err:
        oracle_tx.record_results_tx(chain_id=1, campaign_address=campaign, epoch=0, digest_hex=DIGEST, uri="u")
    assert err.value.extra == {"served": w3.eth.chain_id, "chain_id": 1}
    assert not OracleTransaction.objects.exists()
    assert not CustodyNonce.objects.exists()


@pytest.mark.django_db
def test_an_epoch_not_over_is_refused_before_signing(w3, campaign) -> None:
    with pytest.raises(OracleCallRejected) as err:
        record(w3, campaign, epoch=2)
    assert err.value.extra == {"error": "EpochNotEnded"}
    assert not OracleTransaction.objects.exists()
    assert not CustodyNonce.objects.exists()


@pytest.mark.django_db
def test_a_key_the_campaign_does_not_name_is_refused_or_reverts_with_unauthorized(settings, w3, campaign) -> None:
    settings.RECORDING_ORACLE_PRIVATE_KEY = STRANGER.private_key
    # The campaign names ORACLE: this process holds no key for it, and says so before signing anything.
    with pytest.raises(OracleKeyNotConfigured) as absent:
        record(w3, campaign)
    assert absent.value.extra["address"] == ORACLE.address
    assert not OracleTransaction.objects.exists()
    assert not CustodyNonce.objects.exists()

    # Asked to sign with the key it holds, the estimate shows the escrow refusing it.
    data = campaign_contract(w3, campaign).encode_abi("recordResults", args=[0, bytes.fromhex(DIGEST[2:]), "u"])
    common = {"purpose_key": "record:test:unauthorized", "role": "recording", "chain_id": w3.eth.chain_id}
    with pytest.raises(OracleCallRejected) as err:
        oracle_tx.oracle_tx_prepare(**common, to=campaign, data=data)
    assert err.value.extra == {"error": "Unauthorized"}
    assert not OracleTransaction.objects.exists()
    assert not CustodyNonce.objects.exists()

    # Sent all the same (a gas limit given, so nothing estimates it first): it reverts on chain, and the row
    # says with which Campaign error.
    row = oracle_tx.oracle_tx_prepare(**common, to=campaign, data=data, gas=200_000)
    assert row.sender == STRANGER.address.lower()
    assert oracle_tx.oracle_tx_advance(tx_id=row.pk) == OracleTransaction.Status.REVERTED
    row.refresh_from_db()
    assert row.revert_reason == "Unauthorized"
    assert row.block_number is not None
    assert results_hash(w3, campaign) == "0x" + "00" * 32


@pytest.mark.django_db
def test_a_campaign_naming_a_retired_key_is_signed_by_that_key(settings, w3, campaign) -> None:
    settings.RECORDING_ORACLE_PRIVATE_KEY = "0x" + Account.create().key.hex()  # the key new campaigns name
    settings.RECORDING_ORACLE_RETIRED_KEYS = [STRANGER.private_key, ORACLE.private_key]
    row = record(w3, campaign)
    assert row.sender == ORACLE.address.lower()
    assert oracle_tx.oracle_tx_advance(tx_id=row.pk) == OracleTransaction.Status.MINED
    assert results_hash(w3, campaign) == DIGEST
    assert oracle_signer("recording", address=STRANGER.address).address == STRANGER.address
    assert oracle_signer("recording").address != ORACLE.address
    with pytest.raises(OracleKeyNotConfigured):
        oracle_signer("reputation", address=STRANGER.address)


@pytest.mark.django_db
def test_a_revert_caused_by_an_earlier_transaction_of_the_same_block_is_named(w3, campaign, automine_off) -> None:
    first = record(w3, campaign)
    other = campaign_contract(w3, campaign).encode_abi("recordResults", args=[0, bytes.fromhex(OTHER_DIGEST[2:]), "u"])
    # Prepared while the chain holds no results yet (the estimate passes), mined right after the first.
    second = oracle_tx.oracle_tx_prepare(
        purpose_key="record:test:second", role="recording", chain_id=w3.eth.chain_id, to=campaign, data=other
    )
    assert second.nonce == first.nonce + 1  # type: ignore[operator]
    for row in (first, second):
        assert oracle_tx.oracle_tx_advance(tx_id=row.pk) == OracleTransaction.Status.BROADCAST
    mine(w3)
    assert oracle_tx.oracle_tx_advance(tx_id=first.pk) == OracleTransaction.Status.MINED
    assert oracle_tx.oracle_tx_advance(tx_id=second.pk) == OracleTransaction.Status.REVERTED
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.block_number == second.block_number
    assert second.revert_reason == "ResultsAlreadyRecorded"
    assert results_hash(w3, campaign) == DIGEST


@pytest.mark.django_db
def test_a_nonce_used_by_a_transaction_that_is_not_ours_parks_with_an_alert(w3, campaign, broadcasts) -> None:
    row = record(w3, campaign)
    # The key signs something else with the same nonce (used elsewhere) and it mines first.
    other = Account.from_key(ORACLE.private_key).sign_transaction(
        {"chainId": w3.eth.chain_id, "to": STRANGER.address, "value": 1, "nonce": row.nonce, "gas": 21_000,
         "gasPrice": w3.eth.gas_price * 2}
    )  # fmt: skip
    w3.eth.send_raw_transaction(other.raw_transaction)
    assert oracle_tx.oracle_tx_advance(tx_id=row.pk) == OracleTransaction.Status.PARKED
    alert = Alert.objects.get(kind="oracle_nonce_taken")
    assert alert.detail["tx_id"] == row.pk
    assert oracle_tx.oracle_tx_advance(tx_id=row.pk) == OracleTransaction.Status.PARKED
    assert results_hash(w3, campaign) == "0x" + "00" * 32


# ---------------------------------------------------------------------------------------------- replacement


@pytest.mark.django_db
def test_a_pending_transaction_is_replaced_and_exactly_one_version_mines(
    w3, campaign, broadcasts, automine_off
) -> None:
    row = record(w3, campaign)
    assert oracle_tx.oracle_tx_advance(tx_id=row.pk) == OracleTransaction.Status.BROADCAST
    original = row.tx_hash
    # Still pending (no block) with the bump due: the same nonce at a higher price, stored, then sent.
    waited(row)
    assert oracle_tx.oracle_tx_advance(tx_id=row.pk) == OracleTransaction.Status.BROADCAST
    row.refresh_from_db()
    versions = list(row.versions.values_list("tx_hash", "gas_price"))
    assert len(versions) == 2
    assert versions[0][0] == original
    assert versions[1][0] == row.tx_hash
    assert versions[1][1] >= versions[0][1] * 125 // 100
    assert w3.eth.get_transaction(row.tx_hash)["nonce"] == row.nonce
    assert Alert.objects.filter(kind="oracle_tx_stuck").count() == 1
    assert dict(broadcasts) == {original: 1, row.tx_hash: 1}

    automine_off()  # mine one block
    assert oracle_tx.oracle_tx_advance(tx_id=row.pk) == OracleTransaction.Status.MINED
    row.refresh_from_db()
    mined = []
    for tx_hash, _ in versions:
        try:
            mined.append(w3.eth.get_transaction_receipt(tx_hash)["transactionHash"])
        except TransactionNotFound:  # the version that did not mine
            continue
    assert len(mined) == 1
    assert "0x" + mined[0].hex() == row.tx_hash
    assert results_hash(w3, campaign) == DIGEST
    assert not Alert.objects.filter(kind="oracle_tx_stuck", resolved_at__isnull=True).exists()


@pytest.mark.django_db
def test_an_earlier_version_that_mines_after_its_replacement_is_adopted(w3, campaign, automine_off, monkeypatch):
    row = record(w3, campaign)
    assert oracle_tx.oracle_tx_advance(tx_id=row.pk) == OracleTransaction.Status.BROADCAST
    original = (row.tx_hash, row.gas_price)

    def underpriced(w3: Web3, raw_tx: str) -> None:
        raise Web3RPCError("replacement transaction underpriced")

    # The node refuses the replacement while the original still waits in its pool: no failure, it can mine.
    monkeypatch.setattr(oracle_tx, "_send_raw", underpriced)
    waited(row)
    assert oracle_tx.oracle_tx_advance(tx_id=row.pk) == OracleTransaction.Status.BROADCAST
    row.refresh_from_db()
    assert row.versions.count() == 2
    assert row.tx_hash != original[0]

    mine(w3)
    assert oracle_tx.oracle_tx_advance(tx_id=row.pk) == OracleTransaction.Status.MINED
    row.refresh_from_db()
    assert (row.tx_hash, row.gas_price) == original
    assert row.raw_tx == row.versions.get(tx_hash=original[0]).raw_tx
    assert results_hash(w3, campaign) == DIGEST


# ---------------------------------------------------------------------------------------------- two workers


@pytest.mark.django_db(transaction=True)
def test_two_workers_advancing_at_once_send_each_version_once(w3, campaign, broadcasts, automine_off):
    require_postgresql("SQLite serializes writers itself; races need PostgreSQL")
    row = record(w3, campaign)
    results = at_once([lambda: oracle_tx.oracle_tx_advance(tx_id=row.pk)] * 2)
    assert results == [OracleTransaction.Status.BROADCAST] * 2
    assert dict(broadcasts) == {row.tx_hash: 1}

    # Both find it pending with the bump due: one replacement, not two.
    waited(row)
    results = at_once([lambda: oracle_tx.oracle_tx_advance(tx_id=row.pk)] * 2)
    assert results == [OracleTransaction.Status.BROADCAST] * 2, results
    row.refresh_from_db()
    assert row.versions.count() == 2
    assert sorted(broadcasts.values()) == [1, 1]

    automine_off()
    results = at_once([lambda: oracle_tx.oracle_tx_advance(tx_id=row.pk)] * 2)
    assert results == [OracleTransaction.Status.MINED] * 2
    assert sorted(broadcasts.values()) == [1, 1]
    assert results_hash(w3, campaign) == DIGEST


@pytest.mark.django_db(transaction=True)
def test_two_workers_preparing_the_same_purpose_at_once_get_one_row_and_one_nonce(w3, campaign) -> None:
    require_postgresql("SQLite serializes writers itself; races need PostgreSQL")
    results = at_once([lambda: record(w3, campaign).pk] * 2)
    assert results[0] == results[1], results
    row = OracleTransaction.objects.get()
    assert row.nonce is not None
    # The loser's nonce was rolled back with its row: the next transaction takes the very next nonce.
    assert CustodyNonce.objects.get(address=ORACLE.address.lower()).next_nonce == row.nonce + 1
    assert oracle_tx.oracle_tx_advance(tx_id=row.pk) == OracleTransaction.Status.MINED
