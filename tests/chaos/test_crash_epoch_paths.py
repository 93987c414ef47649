"""A worker killed (SIGKILL) just before, and just after, each transition of the epoch close and the epoch payout that
only a fault or a person reaches: a close `failed` (from closing: inputs the oracle cannot score; from stored: the
chain already holds other results) and its operator's `retry`; a payout `adopted` (from pending: the escrow already
holds our root; from publishing: our signed publication's nonce went to that same root), `nothing_to_pay` (an epoch
closed for real where nobody scored), `failed` (from pending: another root on chain; from publishing: its nonce
taken) and its operator's `retry`. Each is driven by its real cause, never by a patched function. Then the system
does what it does after a worker died — the close_epochs / pay_epochs beats and the oracle-transaction sweep, the
operator asking again from the admin — and the close or the payout is resumed, or parked with an open alert;
each step once in its timeline, one `ResultsRecorded` / one `PayoutPublished`, every leaf paid once.

The campaigns are tests/payouts/test_closing.py's (a close built for real) and tests/payouts/test_paying.py's (a
recorded epoch with payees), on one chain of this module's own."""

# The fixtures are imported from other modules (a conftest here would override the matrix tests' own devnet):
# pytest takes them from the module namespace, ruff sees the arguments as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from web3 import Web3

from devnet.chain import Anvil, dev_accounts, send
from devnet.chain import token as token_contract
from devnet.protocol import call
from devnet.protocol import campaign as campaign_contract
from execution.models import Alert
from payouts import closing, oracle_tx, paying
from payouts.models import BookSnapshot, EpochClose, EpochPayout, OracleTransaction
from payouts.selectors import ARTIFACT_STORAGE
from tests.chaos import invariants
from tests.chaos.crash_invariants import wait
from tests.chaos.driver_plugin import Driver, DriverRun
from tests.fixtures.chain import chain_of_its_own
from tests.payouts.test_closing import BASE_URL, chain_now, factory_address, open_campaign, token  # noqa: F401
from tests.payouts.test_paying import Epoch, an_epoch
from tests.plugins.require import require_postgresql

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.slow,
    pytest.mark.chain,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(180),
]

ACCOUNTS = dev_accounts()
ORACLE = ACCOUNTS[2]  # test_closing's recording and reputation oracle; test_paying's recording oracle
REPUTATION = ACCOUNTS[3]  # test_paying's reputation oracle
WHEN = ["before", "after"]
PAYEES = 5  # one batch: its two steps are test_crash_epoch_payout.py's kill points
SETTINGS = ["CHAIN_RPC_URL", "RECORDING_ORACLE_PRIVATE_KEY", "REPUTATION_ORACLE_PRIVATE_KEY",
            "RECORDING_ORACLE_RETIRED_KEYS", "ORACLE_GAS_BUMP_SECONDS", "ORACLE_REPORT_GRACE_SECONDS",
            "ORACLE_PUBLIC_BASE_URL", "STORAGES", "ORACLE_CLOSE_LEASE_SECONDS", "CHAIN_CONFIRMATIONS",
            "PAYOUT_BATCH_GAS_CAP", "PAYOUT_BATCHES_IN_FLIGHT", "ORACLE_TX_SWEEP_AFTER_SECONDS"]  # fmt: skip
_seeds = itertools.count(500)

anvil, w3 = chain_of_its_own()


@pytest.fixture
def factory_and_token(factory_address: str, token: str) -> tuple[str, str]:
    return factory_address, token


@pytest.fixture(autouse=True)
def oracle_settings(settings: Any, anvil: Anvil, tmp_path: Path) -> None:
    """Both oracles' settings on this module's chain (test_closing's and test_paying's, which differ only in the
    reputation key: a test of a test_paying campaign sets REPUTATION's)."""
    settings.CHAIN_RPC_URL = anvil.url
    settings.CHAIN_CONFIRMATIONS = 1  # mined is final here; reorgs are tests/chaos/test_matrix_chain_*.py
    settings.RECORDING_ORACLE_PRIVATE_KEY = ORACLE.private_key
    settings.REPUTATION_ORACLE_PRIVATE_KEY = ORACLE.private_key
    settings.RECORDING_ORACLE_RETIRED_KEYS = []
    settings.ORACLE_GAS_BUMP_SECONDS = 3600
    settings.ORACLE_REPORT_GRACE_SECONDS = 0
    settings.ORACLE_PUBLIC_BASE_URL = BASE_URL
    settings.ORACLE_CLOSE_LEASE_SECONDS = 2  # how long a killed builder holds the close (900 s in production)
    settings.ORACLE_TX_SWEEP_AFTER_SECONDS = 0
    settings.PAYOUT_BATCH_GAS_CAP = 1_200_000
    settings.PAYOUT_BATCHES_IN_FLIGHT = 2
    settings.STORAGES = {
        **django_settings.STORAGES,
        ARTIFACT_STORAGE: {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "oracle")},
        },
    }


def shared(settings: Any) -> dict[str, Any]:
    return json.loads(json.dumps({name: getattr(settings, name) for name in SETTINGS}, default=str))


def crash(driver: Driver, flow: str, kill_at: int, when: str, settings: Any, event: str, **args: int) -> DriverRun:
    """A worker running `flow`, SIGKILLed `when` its `kill_at`-th step, which must be `event`."""
    run = driver.run(flow, kill_at, when, settings=shared(settings), args=args)
    assert run.killed, f"the driver was not killed (rc {run.returncode}): {run.output}"
    assert run.steps[-1]["event"] == event, run.steps
    return run


def steps(row: EpochClose | EpochPayout) -> list[str]:
    return list(row.transitions.order_by("pk").values_list("event", flat=True))


def operator_retries(admin_client: Any, model: str, pk: int) -> list[str]:
    """The operator's retry action in the admin (Payouts → Epoch closes / Epoch payouts); the messages shown."""
    response = admin_client.post(f"/admin/payouts/{model}/", {"action": "retry", "_selected_action": [pk]}, follow=True)
    return [str(m) for m in response.context["messages"]]


def open_alert(kind: str, dedup: str) -> Alert:
    (alert,) = Alert.objects.filter(kind=kind, dedup_key=dedup, resolved_at__isnull=True)
    return alert


# ---------------------------------------------------------------------------------------------- the close


def close_beat(w3: Web3, close_id: int) -> EpochClose:
    """The close_epochs beat, tick after tick, until the close is recorded or failed (a failed close is due no
    more): each due close advanced by a new task (its own worker name)."""
    ticks = itertools.count()

    def tick() -> None:
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]  # the chain's clock moves on
        for due in closing.epoch_closes_due(now=chain_now(w3)):
            closing.epoch_close_advance(close_id=due, worker=f"beat-{next(ticks)}", now=chain_now(w3))

    settled = ("recorded", "failed")
    wait(lambda: EpochClose.objects.get(pk=close_id).state in settled, "the close settled", 60, tick)
    return EpochClose.objects.get(pk=close_id)


def record_purpose(close: EpochClose) -> str:
    return f"record:{close.campaign.chain_id}:{close.campaign.address}:{close.epoch}"


def parked_close(close: EpochClose) -> None:
    parked = {"failed": "epoch_close_failed"}
    assert invariants.assert_resumed_or_parked(close.state, resumed=["recorded"], parked=parked) == "parked"
    assert open_alert("epoch_close_failed", f"close-failed:c{close.pk}:0").detail["close_id"] == close.pk
    assert close.lease_owner == ""


def recorded_once(w3: Web3, close: EpochClose, timeline: list[str]) -> None:
    assert invariants.assert_resumed_or_parked(close.state, resumed=["recorded"]) == "resumed", close.failure_reason
    assert steps(close) == timeline, "a step of the close was lost or applied twice"
    # The beat closes the campaign's next epoch too (it is over): only this epoch's are counted.
    event = invariants.assert_recorded_once(w3, campaign_contract(w3, close.campaign.address), close.epoch)
    assert event["args"]["resultsHash"].hex().removeprefix("0x") == close.bundle_digest
    assert OracleTransaction.objects.filter(purpose_key__startswith=record_purpose(close)).count() == 1
    assert close.lease_owner == ""


def unscorable_snapshot(campaign: Any) -> BookSnapshot:
    """A book snapshot of the epoch's that repeats a price on one side (a recorder's bug, a row edited by hand):
    the inputs built from it cannot be scored, and the close fails in `closing` with nothing stored."""
    t_ms = (int(campaign.start.timestamp()) + 10) * 1000  # a sample time open_campaign left a gap at
    book = {"bids": [["0.99", "1000"], ["0.99", "500"]], "asks": [["1.01", "800"]]}
    return BookSnapshot.objects.create(
        campaign=campaign, t_ms=t_ms, book=book, exchange_ts_ms=t_ms, recorded_ms=t_ms + 5, source="ws"
    )


@pytest.mark.parametrize("when", WHEN)
def test_a_worker_killed_at_failed_while_building_parks_the_close_and_a_retry_records_it_once(
    crash_driver: Driver, w3: Web3, factory_address: str, token: str, settings: Any, admin_client: Any, when: str
) -> None:
    require_postgresql("the driver and the test share one database across processes")
    campaign = open_campaign(w3, factory_address, token)
    bad = unscorable_snapshot(campaign)
    close = closing.epoch_close_ensure(campaign=campaign, epoch=0)
    crash(crash_driver, "epoch_close_settled", 2, when, settings, "failed", close=close.pk)
    assert steps(close) == ["grace_over", "failed"][: 2 if when == "after" else 1]

    close = close_beat(w3, close.pk)
    parked_close(close)
    assert steps(close) == ["grace_over", "failed"]
    assert close.failure_reason.startswith("the oracle built inputs it cannot score")
    assert not close.inputs_name
    assert not OracleTransaction.objects.filter(purpose_key__startswith=record_purpose(close)).exists()

    bad.delete()  # the operator removes the bad row, then retries from the admin
    assert "Sent 1 close(s) back to closing." in operator_retries(admin_client, "epochclose", close.pk)
    recorded_once(w3, close_beat(w3, close.pk), ["grace_over", "failed", "retry", "stored", "recorded"])


@pytest.mark.parametrize("when", WHEN)
def test_a_worker_killed_at_failed_while_recording_parks_the_close_and_sends_nothing(
    crash_driver: Driver, w3: Web3, factory_address: str, token: str, settings: Any, when: str
) -> None:
    require_postgresql("the driver and the test share one database across processes")
    campaign = open_campaign(w3, factory_address, token)
    escrow = campaign_contract(w3, campaign.address)
    other = b"\xcd" * 32  # someone else holding the recording key recorded other results for the epoch
    call(w3, escrow.functions.recordResults(0, other, "ipfs://other"), ORACLE)
    close = closing.epoch_close_ensure(campaign=campaign, epoch=0)
    crash(crash_driver, "epoch_close_settled", 3, when, settings, "failed", close=close.pk)
    assert steps(close) == ["grace_over", "stored", "failed"][: 3 if when == "after" else 2]

    close = close_beat(w3, close.pk)
    parked_close(close)
    assert steps(close) == ["grace_over", "stored", "failed"]
    assert "already holds results hash 0x" + other.hex() in close.failure_reason
    assert close.bundle_digest  # the oracle's own bundle is stored all the same, for the operator to compare
    assert invariants.assert_recorded_once(w3, escrow, 0)["args"]["resultsHash"] == other
    assert not OracleTransaction.objects.filter(purpose_key__startswith=record_purpose(close)).exists()


@pytest.mark.parametrize("when", WHEN)
def test_an_operator_killed_at_retry_asks_again_and_the_close_is_recorded_once(
    crash_driver: Driver, w3: Web3, factory_address: str, token: str, settings: Any, admin_client: Any, when: str
) -> None:
    require_postgresql("the driver and the test share one database across processes")
    campaign = open_campaign(w3, factory_address, token)
    bad = unscorable_snapshot(campaign)
    close = closing.epoch_close_ensure(campaign=campaign, epoch=0)
    close = closing.epoch_close_advance(close_id=close.pk, worker="w1", now=chain_now(w3))
    assert close.state == "failed"
    bad.delete()
    crash(crash_driver, "epoch_close_retry", 1, when, settings, "retry", close=close.pk)
    assert steps(close) == ["grace_over", "failed", "retry"][: 3 if when == "after" else 2]

    # The operator saw no answer and asks again: the retry is applied once, a second is refused and said so.
    shown = operator_retries(admin_client, "epochclose", close.pk)
    if when == "after":
        assert any("closing cannot take retry" in m for m in shown), shown
    else:
        assert "Sent 1 close(s) back to closing." in shown
    recorded_once(w3, close_beat(w3, close.pk), ["grace_over", "failed", "retry", "stored", "recorded"])


# ---------------------------------------------------------------------------------------------- the payout


def pay_beat(w3: Web3, payout_id: int) -> EpochPayout:
    """The beats: pay_epochs (each due payout advanced) and sweep_oracle_txs (each unsettled transaction), until
    the payout is paid, empty or failed (a failed payout is due no more)."""

    def tick() -> None:
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        for due in paying.epoch_payouts_due():
            paying.epoch_payout_advance(payout_id=due)
        for tx_id in oracle_tx.oracle_txs_unsettled(older_than_seconds=0):
            oracle_tx.oracle_tx_advance(tx_id=tx_id)

    settled = ("paid", "empty", "failed")
    wait(lambda: EpochPayout.objects.get(pk=payout_id).state in settled, "the payout settled", 90, tick)
    return EpochPayout.objects.get(pk=payout_id)


def an_epoch_to_pay(w3: Web3, factory_and_token: tuple[str, str], settings: Any) -> Epoch:
    settings.REPUTATION_ORACLE_PRIVATE_KEY = REPUTATION.private_key  # the key test_paying's campaigns name
    return an_epoch(w3, factory_and_token, payees=PAYEES, seed=next(_seeds))


def publish_by_hand(w3: Web3, epoch: Epoch, *, another_root: bool = False) -> Any:
    """publishPayout sent by another holder of the reputation key (an old deployment restored from a backup, an
    operator by hand), with the key's next nonce on chain: our root and manifest, or another root."""
    payout = EpochPayout.objects.get(pk=epoch.payout_id)
    escrow = campaign_contract(w3, epoch.campaign.address)
    if another_root:
        fn = escrow.functions.publishPayout(0, b"\x11" * 32, b"\x22" * 32, 1)
    else:
        root, manifest = bytes.fromhex(payout.merkle_root[2:]), bytes.fromhex(payout.manifest_digest)
        fn = escrow.functions.publishPayout(0, root, manifest, payout.total)
    return call(w3, fn, REPUTATION)


def signed_not_sent(crash_driver: Driver, epoch: Epoch, settings: Any) -> OracleTransaction:
    """A worker killed once publishPayout was signed and stored (publishing), before it went to the node."""
    crash(crash_driver, "epoch_payout_settled", 1, "after", settings, "publish_signed", payout=epoch.payout_id)
    signed = OracleTransaction.objects.get(purpose_key__startswith="publish:")
    assert signed.status == "signed"
    return signed


def nonce_of(w3: Web3, receipt: Any) -> int:
    return int(w3.eth.get_transaction(receipt["transactionHash"])["nonce"])


def paid_once(w3: Web3, epoch: Epoch, payout: EpochPayout, transitions: list[str], publications: int) -> None:
    assert invariants.assert_resumed_or_parked(payout.state, resumed=["paid"]) == "resumed", payout.failure_reason
    timeline = list(payout.transitions.order_by("pk").values_list("event", "from_state", "to_state"))
    assert [e for e, a, b in timeline if a != b] == transitions, "a transition was lost or applied twice"
    assert sorted(e for e, a, b in timeline if a == b) == ["batch_paid", "batch_signed"], "a batch twice (or never)"
    escrow = campaign_contract(w3, epoch.campaign.address)
    invariants.assert_published_once(w3, escrow, 0)
    invariants.assert_paid_once(w3, escrow, 0, epoch.paid, epoch.before, token_contract(w3, epoch.campaign.token))
    assert escrow.functions.payoutRoot(0).call().hex() == payout.merkle_root[2:]
    assert OracleTransaction.objects.filter(purpose_key__startswith="publish:").count() == publications
    assert [b.status for b in payout.batches.all()] == ["paid"]


@pytest.mark.parametrize("when", WHEN)
def test_a_worker_killed_at_adopted_from_pending_pays_every_leaf_once(
    crash_driver: Driver, w3: Web3, factory_and_token: tuple[str, str], settings: Any, when: str
) -> None:
    require_postgresql("the driver and the test share one database across processes")
    epoch = an_epoch_to_pay(w3, factory_and_token, settings)
    by_hand = publish_by_hand(w3, epoch)  # the escrow holds our root before any worker of ours sent it
    crash(crash_driver, "epoch_payout_settled", 1, when, settings, "adopted", payout=epoch.payout_id)
    assert steps(EpochPayout.objects.get(pk=epoch.payout_id)) == ["adopted"][: 1 if when == "after" else 0]

    payout = pay_beat(w3, epoch.payout_id)
    paid_once(w3, epoch, payout, ["adopted", "paid"], publications=0)  # nothing of ours was signed to publish
    assert payout.published_tx_hash == "0x" + bytes(by_hand["transactionHash"]).hex()


@pytest.mark.parametrize("when", WHEN)
def test_a_worker_killed_at_adopted_from_publishing_pays_every_leaf_once(
    crash_driver: Driver, w3: Web3, factory_and_token: tuple[str, str], settings: Any, when: str
) -> None:
    require_postgresql("the driver and the test share one database across processes")
    epoch = an_epoch_to_pay(w3, factory_and_token, settings)
    signed = signed_not_sent(crash_driver, epoch, settings)
    # Meanwhile another holder of the key publishes the same root under that very nonce: ours can never mine.
    by_hand = publish_by_hand(w3, epoch)
    assert nonce_of(w3, by_hand) == signed.nonce
    crash(crash_driver, "epoch_payout_settled", 1, when, settings, "adopted", payout=epoch.payout_id)
    done = steps(EpochPayout.objects.get(pk=epoch.payout_id))
    assert done == ["publish_signed", "adopted"][: 2 if when == "after" else 1]

    payout = pay_beat(w3, epoch.payout_id)
    paid_once(w3, epoch, payout, ["publish_signed", "adopted", "paid"], publications=1)
    assert OracleTransaction.objects.get(pk=signed.pk).status == "parked"  # never sent again, nor a second signed
    assert payout.published_tx_hash == "0x" + bytes(by_hand["transactionHash"]).hex()
    open_alert("oracle_nonce_taken", f"oracle-parked:t{signed.pk}")  # the key was used elsewhere: a person knows


@pytest.mark.parametrize("when", WHEN)
def test_a_worker_killed_at_nothing_to_pay_of_an_epoch_nobody_scored_publishes_nothing(
    crash_driver: Driver, w3: Web3, factory_address: str, token: str, settings: Any, when: str
) -> None:
    require_postgresql("the driver and the test share one database across processes")
    campaign = open_campaign(w3, factory_address, token)  # nobody joined: the close scores nobody
    close = closing.epoch_close_ensure(campaign=campaign, epoch=0)
    close = closing.epoch_close_advance(close_id=close.pk, worker="w1", now=chain_now(w3))
    assert (close.state, close.participants) == ("recorded", 0)
    paying.epoch_payouts_due()
    payout = EpochPayout.objects.get(close=close)
    assert (payout.state, payout.leaf_count, payout.total) == ("pending", 0, 0)
    crash(crash_driver, "epoch_payout_settled", 1, when, settings, "nothing_to_pay", payout=payout.pk)
    assert steps(payout) == ["nothing_to_pay"][: 1 if when == "after" else 0]

    payout = pay_beat(w3, payout.pk)
    assert invariants.assert_resumed_or_parked(payout.state, resumed=["empty"]) == "resumed"
    assert steps(payout) == ["nothing_to_pay"]
    escrow = campaign_contract(w3, campaign.address)
    assert invariants.escrow_events(w3, escrow, "PayoutPublished", epoch=0) == []
    assert escrow.functions.payoutRoot(0).call() == b"\0" * 32  # the budget stays refundable
    assert not OracleTransaction.objects.filter(purpose_key__startswith="publish:").exists()
    assert paying.epoch_payouts_due() == []


@pytest.mark.parametrize("when", WHEN)
def test_a_worker_killed_at_failed_from_pending_parks_the_payout_with_an_alert_and_pays_nothing(
    crash_driver: Driver, w3: Web3, factory_and_token: tuple[str, str], settings: Any, when: str
) -> None:
    require_postgresql("the driver and the test share one database across processes")
    epoch = an_epoch_to_pay(w3, factory_and_token, settings)
    publish_by_hand(w3, epoch, another_root=True)  # the reputation key used elsewhere: another root on chain
    crash(crash_driver, "epoch_payout_settled", 1, when, settings, "failed", payout=epoch.payout_id)
    assert steps(EpochPayout.objects.get(pk=epoch.payout_id)) == ["failed"][: 1 if when == "after" else 0]

    payout = pay_beat(w3, epoch.payout_id)
    parked = {"failed": "payout_failed"}
    assert invariants.assert_resumed_or_parked(payout.state, resumed=["paid"], parked=parked) == "parked"
    open_alert("payout_failed", f"payout-failed:p{payout.pk}:0")
    assert steps(payout) == ["failed"]
    assert "another payout root" in payout.failure_reason
    escrow = campaign_contract(w3, epoch.campaign.address)
    assert invariants.assert_published_once(w3, escrow, 0)["args"]["merkleRoot"] == b"\x11" * 32
    assert not OracleTransaction.objects.exists()  # nothing signed: no publication, no batch
    assert invariants.leaves_paid(w3, escrow, 0) == {}


def nonce_taken(w3: Web3, signed: OracleTransaction) -> None:
    """The reputation key's owner spends the nonce of our signed publication on something else."""
    receipt = send(w3, {"to": REPUTATION.address, "value": 0}, REPUTATION)
    assert nonce_of(w3, receipt) == signed.nonce


@pytest.mark.parametrize("when", WHEN)
def test_a_worker_killed_at_failed_from_publishing_parks_the_payout_and_a_retry_pays_every_leaf_once(
    crash_driver: Driver, w3: Web3, factory_and_token: tuple[str, str], settings: Any, admin_client: Any, when: str
) -> None:
    require_postgresql("the driver and the test share one database across processes")
    epoch = an_epoch_to_pay(w3, factory_and_token, settings)
    signed = signed_not_sent(crash_driver, epoch, settings)
    nonce_taken(w3, signed)
    crash(crash_driver, "epoch_payout_settled", 1, when, settings, "failed", payout=epoch.payout_id)
    done = steps(EpochPayout.objects.get(pk=epoch.payout_id))
    assert done == ["publish_signed", "failed"][: 2 if when == "after" else 1]

    payout = pay_beat(w3, epoch.payout_id)
    parked = {"failed": "payout_failed"}
    assert invariants.assert_resumed_or_parked(payout.state, resumed=["paid"], parked=parked) == "parked"
    open_alert("payout_failed", f"payout-failed:p{payout.pk}:0")
    open_alert("oracle_nonce_taken", f"oracle-parked:t{signed.pk}")
    assert steps(payout) == ["publish_signed", "failed"]
    assert "publishPayout parked" in payout.failure_reason
    assert invariants.escrow_events(w3, campaign_contract(w3, epoch.campaign.address), "PayoutPublished") == []

    assert "Sent 1 payout(s) back to pending." in operator_retries(admin_client, "epochpayout", payout.pk)
    payout = pay_beat(w3, epoch.payout_id)
    retried = ["publish_signed", "failed", "retry", "publish_signed", "published", "paid"]
    paid_once(w3, epoch, payout, retried, publications=2)
    assert sorted(OracleTransaction.objects.filter(purpose_key__startswith="publish:").values_list("status")) == [
        ("mined",),
        ("parked",),
    ]


@pytest.mark.parametrize("when", WHEN)
def test_an_operator_killed_at_retry_of_a_failed_payout_asks_again_and_every_leaf_is_paid_once(
    crash_driver: Driver, w3: Web3, factory_and_token: tuple[str, str], settings: Any, admin_client: Any, when: str
) -> None:
    require_postgresql("the driver and the test share one database across processes")
    epoch = an_epoch_to_pay(w3, factory_and_token, settings)
    nonce_taken(w3, signed_not_sent(crash_driver, epoch, settings))
    assert paying.epoch_payout_advance(payout_id=epoch.payout_id).state == "failed"
    crash(crash_driver, "epoch_payout_retry", 1, when, settings, "retry", payout=epoch.payout_id)
    done = steps(EpochPayout.objects.get(pk=epoch.payout_id))
    assert done == ["publish_signed", "failed", "retry"][: 3 if when == "after" else 2]

    # The operator saw no answer and asks again: the retry is applied once, a second is refused and said so.
    shown = operator_retries(admin_client, "epochpayout", epoch.payout_id)
    if when == "after":
        assert any("pending cannot take retry" in m for m in shown), shown
    else:
        assert "Sent 1 payout(s) back to pending." in shown
    payout = pay_beat(w3, epoch.payout_id)
    retried = ["publish_signed", "failed", "retry", "publish_signed", "published", "paid"]
    paid_once(w3, epoch, payout, retried, publications=2)
