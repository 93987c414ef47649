"""The restore drill (docs/reliability.md §4): a `pg_dump -Fc` taken mid-flow, the database dropped and restored
from it, the system started again on the restored database with its normal beat tasks.

At the dump, a custody → exchange deposit is sent and not confirmed, an exchange → custody withdrawal is requested
and not confirmed, and (second test) an epoch's close is stored with its recordResults transaction broadcast and
not mined. After the dump the world moves on, and so does the old database: the deposit is
credited, the withdrawal arrives, both booked — writes the restore then loses, as a restore from the last dump
does. Resumed on the restored database, the trackers find in the chain's and the exchange's history what was
already done: no second custody transfer (the custody nonce and its Transfer logs), no second withdrawal (the
exchange's own list), the ledger balanced and equal to the one the disaster destroyed, and each order ends where it
ended before. The artifact storage is not in the dump: it survives here, as the runbook requires (docs/runbook.md,
"Backups")."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection, connections
from web3 import Web3

from devnet.chain import Anvil, dev_accounts, mint, token
from devnet.exchange.fixtures import RunningExchange
from devnet.exchange.keys import Permission
from devnet.protocol import deploy_factory
from execution import accounts, homeward, jobs, orders, outbound, provisioning, reports, selectors, tasks
from execution.domain.ledger import asset_totals
from execution.models import (
    CustodyTransfer,
    ExchangeWithdrawal,
    ExecutionReport,
    LedgerTransaction,
    MMOrder,
    MMOrderTransition,
)
from mrmarket.celery_app import app as celery_app
from mrmarket.exchanges.credentials import ExchangeCredentials
from payouts import closing, oracle_tx
from payouts import tasks as payout_tasks
from payouts.domain.epochs import CloseState
from payouts.models import EpochClose, OracleTransaction
from payouts.selectors import ARTIFACT_STORAGE
from tests.execution.executor_thread import running_executor
from tests.execution.gate_stand_in import GateStandIn
from tests.execution.running_job import stop_and_check, wait
from tests.execution.test_mm_loop_e2e import seed_custody
from tests.execution.test_withdraw_back import Stopped, on_exchange
from tests.factories import user_with
from tests.fixtures.orders import deposited_order
from tests.payouts import test_closing as closing_tests
from tests.reliability import pg
from tests.reliability.conftest import CUSTODY, USDT

pytestmark = [pytest.mark.chain, pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture
def configured(settings, anvil: Anvil, sim: RunningExchange, tokens: dict[str, str]) -> None:
    pg.require_tools()
    settings.CHAIN_RPC_URL = anvil.url
    settings.CHAIN_CONFIRMATIONS = 2
    settings.EXCHANGE_API_URLS = {"binance": sim.base_url}
    settings.CUSTODY_ASSETS = {
        "USDT": {"token": tokens["USDT"], "decimals": 6},
        "MMT": {"token": tokens["MMT"], "decimals": 18},
    }
    settings.CUSTODY_PRIVATE_KEY = CUSTODY.private_key
    settings.EXECUTOR_URLS = []  # no executor: the drill is about the money in flight


@pytest.fixture
def beat_in_process() -> Iterator[None]:
    """The beat tasks run here, their subtasks at once (as a worker would run them, minus the queue)."""
    saved = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = True, True
    try:
        yield
    finally:
        celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = saved


def beat_until(w3: Web3, done: Callable[[], bool], *, what: str, timeout: float = 60.0) -> None:
    """Run the money-tracking beat tasks and mine a block, until `done()`."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        tasks.track_deposits()
        tasks.track_withdrawals()
        tasks.drive_jobs()
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        time.sleep(0.2)


def state(order_id: int) -> str:
    return MMOrder.objects.get(pk=order_id).state


def custody_transfers(w3: Web3, tokens: dict[str, str]) -> list[Any]:
    """Every token transfer out of the custody wallet the chain holds."""
    found: list[Any] = []
    for address in tokens.values():
        transfer = token(w3, address).events.Transfer()
        found += transfer.get_logs(from_block=0, argument_filters={"from": CUSTODY.address})
    return found


@pytest.mark.django_db(transaction=True)
def test_a_restore_from_a_dump_taken_mid_flow_resumes_every_flow_without_sending_twice(
    configured: None, beat_in_process: None, w3: Web3, sim: RunningExchange, tokens: dict[str, str], tmp_path: Path
) -> None:
    seed_custody(w3, tokens)
    # A withdrawal in flight: a stopped order holding USDT and MMT on its exchange account, brought home.
    homebound = Stopped(sim)
    order = homeward.mm_order_withdraw_back(order_id=homebound.order.pk, treasury_account_id=homebound.treasury.pk)
    assert order.state == "withdrawing_back"
    assert sorted(w.status for w in ExchangeWithdrawal.objects.filter(order=order)) == ["sent", "sent"]
    # A deposit in flight: an order funded from custody, its transfer broadcast, not yet seen mined.
    trading = homebound.account
    outward = orders.mm_order_create(
        owner_id=trading.owner_id,
        exchange_account_id=accounts.exchange_account_enrol(
            owner_id=trading.owner_id,
            exchange="binance",
            label="outward",
            role="trading",
            credentials=_new_key(sim),
        ).pk,
        symbol="MMT/USDT",
        funding_asset="USDT",
        funding_amount=1_000 * USDT,
    )
    assert outbound.mm_order_fund(order_id=outward.pk).state == "withdrawing_to_exchange"

    backup = tmp_path / "mrmarket.dump"
    pg.dump(connection.settings_dict, backup)

    # After the dump: the world moves on and the old database books it (the writes the restore will lose).
    beat_until(
        w3,
        lambda: state(outward.pk) == "deposit_confirmed" and state(order.pk) == "settled",
        what="both flows to finish before the disaster",
    )
    ledger_before = selectors.ledger_balances()
    sent_before = custody_transfers(w3, tokens)
    nonce_before = w3.eth.get_transaction_count(CUSTODY.address)
    assert len(sent_before) == 1  # the deposit (the withdrawal came from the exchange's hot wallet)

    # The disaster and the recovery.
    connections.close_all()
    pg.drop_and_restore(connection.settings_dict, backup)
    assert state(outward.pk) == "withdrawing_to_exchange"
    assert state(order.pk) == "withdrawing_back"
    assert selectors.ledger_balances() != ledger_before

    beat_until(
        w3,
        lambda: state(outward.pk) == "deposit_confirmed" and state(order.pk) == "settled",
        what="both flows to resume on the restored database",
    )
    # Nothing was sent again: the chain holds one custody transfer, the custody key signed nothing more.
    assert custody_transfers(w3, tokens) == sent_before
    assert w3.eth.get_transaction_count(CUSTODY.address) == nonce_before
    assert CustodyTransfer.objects.filter(order_id=outward.pk).count() == 1
    # The exchange holds one withdrawal per asset, the ones the restored rows name.
    for asset in ("USDT", "MMT"):
        (sent,) = on_exchange(sim, homebound.venue, asset)
        (row,) = homebound.rows(asset)
        assert (row.status, row.client_id) == ("confirmed", sent.withdraw_order_id)
    # The deposit was credited once on the exchange, and once in the ledger.
    outward_account = MMOrder.objects.get(pk=outward.pk).exchange_account
    balance = accounts.exchange_account_client(account=outward_account).fetch_balance()
    assert balance["total"]["USDT"] == 1_000
    # The ledger is balanced and is the one the disaster destroyed, entry for entry in every account.
    assert asset_totals(selectors.ledger_balances()) == {"USDT": 0, "MMT": 0}
    assert selectors.ledger_balances() == ledger_before
    for asset, address in tokens.items():
        on_chain = token(w3, address).functions.balanceOf(CUSTODY.address).call()
        assert selectors.ledger_balance(account=f"custody:{asset}") == on_chain, asset
    # Each step happened once in each order's history.
    for order_id in (outward.pk, order.pk):
        events = list(MMOrderTransition.objects.filter(order_id=order_id).values_list("event", flat=True))
        assert len(events) == len(set(events)), events


def _new_key(sim: RunningExchange) -> Any:
    key = sim.sim.create_account(permissions=frozenset({Permission.TRADE}))
    return ExchangeCredentials(key.key, key.secret)


@pytest.fixture
def epoch_settings(settings, anvil: Anvil, tmp_path: Path) -> Path:
    """The recording oracle's keys and its artifact storage (outside the database, and not part of its dump)."""
    pg.require_tools()
    settings.CHAIN_RPC_URL = anvil.url
    settings.RECORDING_ORACLE_PRIVATE_KEY = closing_tests.ORACLE.private_key
    settings.REPUTATION_ORACLE_PRIVATE_KEY = closing_tests.ORACLE.private_key
    settings.RECORDING_ORACLE_RETIRED_KEYS = []
    settings.ORACLE_GAS_BUMP_SECONDS = 3600
    settings.ORACLE_REPORT_GRACE_SECONDS = 0
    settings.ORACLE_TX_SWEEP_AFTER_SECONDS = 0
    settings.ORACLE_PUBLIC_BASE_URL = closing_tests.BASE_URL
    location = tmp_path / "oracle"
    settings.STORAGES = {
        **django_settings.STORAGES,
        ARTIFACT_STORAGE: {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": location}},
    }
    return location


def oracle_beat_until(w3: Web3, done: Callable[[], bool], *, what: str, timeout: float = 60.0) -> None:
    """Run the recording oracle's beat tasks (close every epoch due, sweep its transactions) until `done()`."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        payout_tasks.close_epochs()
        payout_tasks.sweep_oracle_txs()
        time.sleep(0.2)


@pytest.mark.django_db(transaction=True)
def test_a_restore_from_a_dump_taken_mid_close_records_the_epoch_once(
    epoch_settings: Path, beat_in_process: None, w3: Web3, tokens: dict[str, str], tmp_path: Path, monkeypatch
) -> None:
    usdt = tokens["USDT"]
    mint(w3, usdt, closing_tests.CREATOR.address, 10**9 * USDT, sender=dev_accounts()[0])
    campaign = closing_tests.open_campaign(w3, deploy_factory(w3, sender=dev_accounts()[0]), usdt, over=1)
    broadcasts: Counter[str] = Counter()
    real_send = oracle_tx._send_raw

    def counting(w3: Web3, raw_tx: str) -> None:
        broadcasts["0x" + Web3.keccak(hexstr=raw_tx).hex()] += 1
        real_send(w3, raw_tx)

    monkeypatch.setattr(oracle_tx, "_send_raw", counting)
    # Mid-close: the bundle stored, recordResults signed and broadcast, the block not mined yet.
    w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        close = closing_tests.advance(w3, closing.epoch_close_ensure(campaign=campaign, epoch=0))
        assert close.state == CloseState.STORED
        assert close.record_tx is not None
        sent = str(close.record_tx.tx_hash)
        assert dict(broadcasts) == {sent: 1}
        pg.dump(connection.settings_dict, tmp_path / "mrmarket.dump")
    finally:
        w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    def recorded() -> bool:
        return EpochClose.objects.get(pk=close.pk).state == CloseState.RECORDED

    oracle_beat_until(w3, recorded, what="the close to be recorded before the disaster")
    nonce_before = w3.eth.get_transaction_count(closing_tests.ORACLE.address)

    connections.close_all()
    pg.drop_and_restore(connection.settings_dict, tmp_path / "mrmarket.dump")
    assert EpochClose.objects.get(pk=close.pk).state == CloseState.STORED

    oracle_beat_until(w3, recorded, what="the close to resume on the restored database")
    resumed = EpochClose.objects.get(pk=close.pk)
    assert (resumed.tx_hash, resumed.bundle_digest) == (sent, close.bundle_digest)
    assert closing_tests.transitions(resumed) == closing_tests.HAPPY
    # Recorded once on chain, by the one transaction broadcast once; the oracle key signed nothing more.
    epochs = [e["args"]["epoch"] for e in closing_tests.results_recorded(w3, campaign)]
    assert epochs.count(0) == 1
    assert len(epochs) == len(set(epochs))
    assert broadcasts[sent] == 1
    assert OracleTransaction.objects.filter(purpose_key__endswith=f"{campaign.address}:0").count() == 1
    if len(epochs) == 1:  # no later epoch ended during the test (each is a minute long)
        assert w3.eth.get_transaction_count(closing_tests.ORACLE.address) == nonce_before


@pytest.fixture
def quoting(configured: None, settings, sim: RunningExchange, monkeypatch) -> Iterator[str]:
    """An executor (in a thread) the orders' jobs run on; its keys pass the trust gate's stand-in."""
    stand_in = GateStandIn()
    monkeypatch.setattr(provisioning, "attested_identity", stand_in.identity)
    monkeypatch.setattr(reports, "signing_key_attested", stand_in.signing_key_attested)
    with running_executor(sim.base_url) as url:
        settings.EXECUTOR_URLS = [url]
        yield url


def running(sim: RunningExchange) -> MMOrder:
    """An order whose deposit is confirmed (its holdings booked), started on the executor."""
    key = sim.sim.create_account(permissions=frozenset({Permission.TRADE}), balances={"USDT": Decimal(1500)})
    account = accounts.exchange_account_enrol(
        owner_id=user_with().pk,
        exchange="binance",
        label="mm",
        role="trading",
        credentials=ExchangeCredentials(key.key, key.secret),
    )
    order = deposited_order(account, funding_amount=1_500 * USDT, holdings={"USDT": 1_500 * USDT})
    return jobs.mm_order_start_job(order_id=order.pk)


def stored_reports(order: MMOrder) -> list[tuple[int, str]]:
    return list(ExecutionReport.objects.filter(order=order).order_by("sequence").values_list("sequence", "digest"))


@pytest.mark.django_db(transaction=True)
def test_a_restore_from_a_dump_taken_while_a_job_runs_fetches_its_later_reports_again_and_books_them_once(
    quoting: str, sim: RunningExchange, tmp_path: Path
) -> None:
    order = running(sim)
    assert order.state == "running"

    def reported(count: int) -> Callable[[], bool]:
        def enough() -> bool:
            jobs.mm_order_sync_job(order_id=order.pk)
            return len(stored_reports(order)) >= count

        return enough

    wait(reported(1), timeout=40)
    pg.dump(connection.settings_dict, tmp_path / "mrmarket.dump")
    at_dump = stored_reports(order)
    # After the dump the job reports on, and the old database books it: the restore loses those reports.
    wait(reported(len(at_dump) + 1), timeout=40)
    before = stored_reports(order)
    fills_before = LedgerTransaction.objects.filter(key__startswith=f"o{order.pk}-fill-").count()
    ledger_before = selectors.ledger_balances(prefix=f"exchange:a{order.exchange_account_id}:")

    connections.close_all()
    pg.drop_and_restore(connection.settings_dict, tmp_path / "mrmarket.dump")
    assert stored_reports(order) == at_dump

    # The next sync asks the executor for the reports after the last one stored: the lost ones come back.
    wait(reported(len(before)), timeout=40)
    assert stored_reports(order)[: len(before)] == before  # the same reports, verified and stored again
    assert LedgerTransaction.objects.filter(key__startswith=f"o{order.pk}-fill-").count() >= fills_before
    if stored_reports(order) == before:  # no later report yet: the ledger is the one the disaster destroyed
        assert selectors.ledger_balances(prefix=f"exchange:a{order.exchange_account_id}:") == ledger_before
    # Stopped: nothing rests, every report stored once without gaps, every trade on the exchange one booked fill.
    stop_and_check(MMOrder.objects.get(pk=order.pk))
    assert asset_totals(selectors.ledger_balances()) == {"USDT": 0, "MMT": 0}
