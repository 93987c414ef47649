"""Custody → exchange on the devnet (Anvil + the exchange simulator through ccxt): confirmed only by the
exchange's history of this very transaction *and* chain confirmations; retries and crashes never send twice."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from eth_account import Account
from eth_typing import HexStr
from web3 import Web3

from devnet.chain import deploy_dev_token, dev_accounts, mint, token
from devnet.exchange.config import ChainConfig, SimConfig
from devnet.exchange.fixtures import RunningExchange, run_exchange
from devnet.exchange.keys import Permission
from execution import accounts, custody, homeward, orders, outbound, selectors, services
from execution.domain import envelope
from execution.domain import mm_order as mm
from execution.domain.ledger import asset_totals, transfer
from execution.errors import CredentialsUntrusted, LedgerOverdraft, OrderRejected
from execution.models import Alert, CustodyTransfer, ExchangeAccount, ExchangeWithdrawal, MMOrder
from mrmarket.exchanges.credentials import ExchangeCredentials
from mrmarket.exchanges.errors import ExchangeUnavailable, MarketNotListed
from tests.factories import user_with

pytestmark = [pytest.mark.chain, pytest.mark.django_db]
UNIT = 10**6
CUSTODY = dev_accounts()[3]


@pytest.fixture(scope="module")
def dev_token(w3: Web3) -> str:
    return deploy_dev_token(w3, sender=dev_accounts()[0])


@pytest.fixture(scope="module")
def sim(anvil, w3: Web3, dev_token: str) -> Iterator[RunningExchange]:
    hot = dev_accounts()[9]
    mint(w3, dev_token, hot.address, 1_000_000 * UNIT, sender=dev_accounts()[0])
    mint(w3, dev_token, CUSTODY.address, 1_000_000 * UNIT, sender=dev_accounts()[0])
    chain = ChainConfig(
        rpc_url=anvil.url,
        assets={"USDT": dev_token},
        hot_wallet_key=hot.private_key,
        confirmations=3,
        poll_interval=0.1,
    )
    with run_exchange(SimConfig(run_market=False, chain=chain)) as running:
        yield running


@pytest.fixture
def account(settings, anvil, sim: RunningExchange, dev_token: str) -> ExchangeAccount:
    settings.CHAIN_RPC_URL = anvil.url
    settings.CHAIN_CONFIRMATIONS = 3
    settings.EXCHANGE_API_URLS = {"binance": sim.base_url}
    settings.CUSTODY_ASSETS = {"USDT": {"token": dev_token, "decimals": 6}}
    settings.CUSTODY_PRIVATE_KEY = CUSTODY.private_key
    # The custody wallet's holdings enter the ledger the way an external deposit would.
    services.ledger_record(
        tx=transfer(
            "custody-seed",
            "deposit_credit",
            asset="USDT",
            amount=5_000 * UNIT,
            source="external:chain",
            target="custody",
        )
    )
    key = sim.sim.create_account(permissions=frozenset({Permission.TRADE}))
    return accounts.exchange_account_enrol(
        owner_id=user_with().pk,
        exchange="binance",
        label="mm",
        role="trading",
        credentials=ExchangeCredentials(key.key, key.secret),
    )


def new_order(account: ExchangeAccount, amount: int = 1_000 * UNIT) -> MMOrder:
    return orders.mm_order_create(
        owner_id=account.owner_id,
        exchange_account_id=account.pk,
        symbol="MMT/USDT",
        funding_asset="USDT",
        funding_amount=amount,
    )


def track_until(order: MMOrder, state: str, w3: Web3, *, mine: bool = True) -> MMOrder:
    for _ in range(150):  # bounded: 15 s
        order = outbound.mm_order_track_deposit(order_id=order.pk)
        if order.state == state:
            return order
        if mine:
            w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        time.sleep(0.1)
    pytest.fail(f"order stuck in {order.state}, expected {state}")


def test_funds_reach_the_exchange_and_are_confirmed_by_history_and_chain(account, w3: Web3, dev_token) -> None:
    order = new_order(account)
    order = outbound.mm_order_fund(order_id=order.pk)
    assert order.state == "withdrawing_to_exchange"
    sent = CustodyTransfer.objects.get(order=order)
    assert selectors.ledger_balance(account="custody:USDT") == 4_000 * UNIT
    assert selectors.ledger_balance(account=f"transit:o{order.pk}:USDT") == 1_000 * UNIT
    order = outbound.mm_order_track_deposit(order_id=order.pk)  # Anvil mined it at once
    assert order.state == "deposit_confirming"
    # One block is not enough confirmations, and the exchange has not credited it yet.
    assert outbound.mm_order_track_deposit(order_id=order.pk).state == "deposit_confirming"
    order = track_until(order, "deposit_confirmed", w3)
    assert selectors.ledger_balance(account=f"exchange:a{account.pk}:free:USDT") == 1_000 * UNIT
    assert selectors.ledger_balance(account=f"transit:o{order.pk}:USDT") == 0
    assert asset_totals(selectors.ledger_balances()) == {"USDT": 0}
    assert token(w3, dev_token).functions.balanceOf(Web3.to_checksum_address(sent.to_address)).call() == 1_000 * UNIT
    timeline = list(order.transitions.values_list("event", flat=True))
    assert timeline == ["fund", "transfer_sent", "transfer_mined", "deposit_confirmed"]


def test_retries_never_send_twice(account, w3: Web3, dev_token) -> None:
    order = new_order(account)
    outbound.mm_order_fund(order_id=order.pk)
    outbound.mm_order_fund(order_id=order.pk)  # a retried task
    sent = CustodyTransfer.objects.get(order=order)
    to = Web3.to_checksum_address(sent.to_address)
    track_until(order, "deposit_confirmed", w3)
    outbound.mm_order_fund(order_id=order.pk)
    assert CustodyTransfer.objects.filter(order=order).count() == 1
    assert token(w3, dev_token).functions.balanceOf(to).call() >= 1_000 * UNIT
    assert selectors.ledger_balance(account=f"exchange:a{account.pk}:free:USDT") == 1_000 * UNIT


def test_a_crash_between_signing_and_broadcast_resends_the_same_transaction(account, w3: Web3) -> None:
    order = new_order(account)
    order = services.mm_order_transition(order_id=order.pk, event=mm.Event.FUND, key=f"o{order.pk}-fund")
    signed = outbound._sign_deposit_transfer(w3, order)  # the worker dies right after this commit
    assert signed is not None
    assert signed.status == "signed"
    order = outbound.mm_order_track_deposit(order_id=order.pk)  # the next beat finds it and broadcasts it
    assert order.state == "withdrawing_to_exchange"
    receipt = w3.eth.get_transaction_receipt(HexStr(signed.tx_hash))
    assert receipt["status"] == 1
    assert CustodyTransfer.objects.get(order=order).tx_hash == signed.tx_hash


def test_a_worker_killed_after_reserving_and_before_signing_is_continued_by_the_beat(account, w3: Web3) -> None:
    order = new_order(account)
    reserve = outbound._reservation(order)
    services.mm_order_transition(order_id=order.pk, event=mm.Event.FUND, key=f"o{order.pk}-fund", ledger=[reserve])
    # The worker dies here: reserved, nothing signed, and its fund_order task not redelivered (yet, or ever).
    order = outbound.mm_order_track_deposit(order_id=order.pk)  # the next track_deposits beat
    assert order.state == "withdrawing_to_exchange"
    assert CustodyTransfer.objects.filter(order=order).count() == 1
    outbound.mm_order_fund(order_id=order.pk)  # the task redelivered after all: nothing more
    assert CustodyTransfer.objects.filter(order=order).count() == 1
    track_until(order, "deposit_confirmed", w3)
    assert selectors.ledger_balance(account="custody:USDT") == 4_000 * UNIT
    assert asset_totals(selectors.ledger_balances()) == {"USDT": 0}


def test_underfunded_custody_reserves_and_signs_nothing(account) -> None:
    order = new_order(account, amount=9_000 * UNIT)
    before = selectors.ledger_balances()
    with pytest.raises(LedgerOverdraft, match="custody holds") as err:
        outbound.mm_order_fund(order_id=order.pk)
    assert err.value.code == "ledger_overdraft"
    assert not CustodyTransfer.objects.exists()
    assert MMOrder.objects.get(pk=order.pk).state == "created"  # resumable once custody is topped up
    assert selectors.ledger_balances() == before


def test_an_account_whose_credentials_a_database_writer_swapped_is_never_funded(
    settings, account, sim: RunningExchange, w3: Web3, dev_token: str
) -> None:
    # The attacker's own key on the exchange, sealed correctly to the public key as this account's row, unsigned.
    theirs = sim.sim.create_account(permissions=frozenset({Permission.TRADE}))
    assert sim.sim.funds is not None
    their_address = Web3.to_checksum_address(sim.sim.funds.deposit_address(theirs.account_id, "USDT"))
    sealed = envelope.seal(
        ExchangeCredentials(theirs.key, theirs.secret).to_bytes(),
        public_key=settings.CREDENTIALS_PUBLIC_KEY,
        key_id=settings.CREDENTIALS_MASTER_KEY_ID,
        context=account.context,
    )
    ExchangeAccount.objects.filter(pk=account.pk).update(
        credentials_scheme=sealed.scheme,
        credentials_wrapped_key=sealed.wrapped_key,
        credentials_ciphertext=sealed.ciphertext,
        credentials_signature="",
    )
    order = new_order(account)
    custody_before = token(w3, dev_token).functions.balanceOf(CUSTODY.address).call()
    with pytest.raises(CredentialsUntrusted) as refused:
        outbound.mm_order_fund(order_id=order.pk)
    assert refused.value.code == "credentials_untrusted"
    with pytest.raises(CredentialsUntrusted):
        outbound.mm_order_fund(order_id=order.pk)  # the task retried: still nothing
    assert not CustodyTransfer.objects.exists()  # nothing signed, nothing sent
    assert token(w3, dev_token).functions.balanceOf(CUSTODY.address).call() == custody_before
    assert token(w3, dev_token).functions.balanceOf(their_address).call() == 0
    alert = Alert.objects.get(kind="credentials_untrusted")
    assert (alert.severity, alert.detail["account_id"]) == (Alert.Severity.CRITICAL, account.pk)


@pytest.mark.parametrize(
    ("change", "error", "code"),
    [
        ({"symbol": "DOGE/USDT"}, MarketNotListed, "market_not_listed"),
        ({"funding_amount": UNIT}, OrderRejected, "amount_below_minimum"),
        ({"funding_asset": "ETH"}, OrderRejected, "mm_order_rejected"),
        ({"funding_amount": 0}, OrderRejected, "mm_order_rejected"),
    ],
)
def test_bad_orders_are_refused_and_nothing_is_created(account, change, error, code) -> None:
    kwargs = {
        "owner_id": account.owner_id,
        "exchange_account_id": account.pk,
        "symbol": "MMT/USDT",
        "funding_asset": "USDT",
        "funding_amount": 1_000 * UNIT,
        **change,
    }
    with pytest.raises(error) as err:
        orders.mm_order_create(**kwargs)
    assert err.value.code == code
    assert not MMOrder.objects.exists()


def test_a_revoked_account_cannot_fund_orders(account) -> None:
    accounts.exchange_account_revoke(account_id=account.pk)
    with pytest.raises(OrderRejected, match="not an active trading account"):
        new_order(account)


def _stopped_order_with_treasury(account, sim, w3):
    trading_key = sim.sim.keys.get(accounts.exchange_account_credentials(account=account).api_key)
    treasury_key = sim.sim.create_key(trading_key.account_id, permissions=frozenset({Permission.WITHDRAW}))
    treasury = accounts.exchange_account_enrol(
        owner_id=account.owner_id,
        exchange="binance",
        label=f"treasury-{treasury_key.key[:6]}",
        role="treasury",
        credentials=ExchangeCredentials(treasury_key.key, treasury_key.secret),
    )
    order = new_order(account)
    outbound.mm_order_fund(order_id=order.pk)
    order = track_until(order, "deposit_confirmed", w3)
    services.mm_order_stop(order_id=order.pk)
    return order, treasury, trading_key.account_id


def test_exchange_down_during_the_withdrawal_moves_nothing_and_the_retry_withdraws_once(account, sim, w3: Web3):
    order, treasury, _ = _stopped_order_with_treasury(account, sim, w3)
    fault = sim.admin(
        "POST", "/_devnet/faults", {"kind": "http_5xx", "status": 503, "endpoint": "/sapi/v1/capital/withdraw/apply"}
    )
    with pytest.raises(ExchangeUnavailable):
        homeward.mm_order_withdraw_back(order_id=order.pk, treasury_account_id=treasury.pk)
    assert MMOrder.objects.get(pk=order.pk).state == "stopping"
    assert selectors.ledger_balance(account=f"exchange:a{account.pk}:free:USDT") == 1_000 * UNIT
    sim.admin("DELETE", f"/_devnet/faults/{fault['fault_id']}")
    order = homeward.mm_order_withdraw_back(order_id=order.pk, treasury_account_id=treasury.pk)
    assert order.state == "withdrawing_back"
    (withdrawal,) = ExchangeWithdrawal.objects.filter(order=order)
    assert (withdrawal.status, withdrawal.sends) == ("sent", 2)
    listed = services_client(treasury).fetch_withdrawals("USDT")
    assert len([w for w in listed if w["info"].get("withdrawOrderId") == withdrawal.client_id]) == 1


def services_client(treasury):
    from mrmarket.exchanges.client import exchange_client

    return exchange_client("binance", credentials=accounts.exchange_account_credentials(account=treasury))


def test_the_round_trip_returns_every_unit_to_custody_with_the_ledger_balanced(account, sim, w3: Web3, dev_token):
    """custody → exchange → stop → withdraw back with the treasury key → arrived on chain → settled."""
    trading_key = sim.sim.keys.get(accounts.exchange_account_credentials(account=account).api_key)
    treasury_key = sim.sim.create_key(trading_key.account_id, permissions=frozenset({Permission.WITHDRAW}))
    treasury = accounts.exchange_account_enrol(
        owner_id=account.owner_id,
        exchange="binance",
        label="treasury",
        role="treasury",
        credentials=ExchangeCredentials(treasury_key.key, treasury_key.secret),
    )
    custody_before = token(w3, dev_token).functions.balanceOf(CUSTODY.address).call()
    order = new_order(account)
    outbound.mm_order_fund(order_id=order.pk)
    order = track_until(order, "deposit_confirmed", w3)
    order = services.mm_order_stop(order_id=order.pk)
    order = homeward.mm_order_withdraw_back(order_id=order.pk, treasury_account_id=treasury.pk)
    assert order.state == "withdrawing_back"
    # A retried call is the same withdrawal (the exchange deduplicates withdrawOrderId).
    assert (
        homeward.mm_order_withdraw_back(order_id=order.pk, treasury_account_id=treasury.pk).state == "withdrawing_back"
    )
    for _ in range(150):
        order = homeward.mm_order_track_withdrawal(order_id=order.pk)
        if order.state == "settled":
            break
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        time.sleep(0.1)
    assert order.state == "settled", order.state
    assert token(w3, dev_token).functions.balanceOf(CUSTODY.address).call() == custody_before
    assert selectors.ledger_balance(account="custody:USDT") == 5_000 * UNIT
    assert selectors.ledger_balance(account=f"exchange:a{account.pk}:free:USDT") == 0
    assert selectors.ledger_balance(account=f"transit:o{order.pk}:USDT") == 0
    assert asset_totals(selectors.ledger_balances()) == {"USDT": 0}
    events = list(order.transitions.values_list("event", flat=True))
    assert events[-3:] == ["stop", "orders_settled", "withdrawal_arrived"]


def test_a_treasury_key_of_another_exchange_account_is_refused(account, sim, w3: Web3):
    other = sim.sim.create_account(permissions=frozenset({Permission.WITHDRAW}))
    treasury = accounts.exchange_account_enrol(
        owner_id=account.owner_id,
        exchange="binance",
        label="elsewhere",
        role="treasury",
        credentials=ExchangeCredentials(other.key, other.secret),
    )
    order = new_order(account)
    outbound.mm_order_fund(order_id=order.pk)
    order = track_until(order, "deposit_confirmed", w3)
    services.mm_order_stop(order_id=order.pk)
    with pytest.raises(OrderRejected, match="another exchange account"):
        homeward.mm_order_withdraw_back(order_id=order.pk, treasury_account_id=treasury.pk)
    assert MMOrder.objects.get(pk=order.pk).state == "stopping"
    assert not ExchangeWithdrawal.objects.exists()


def test_reconciliation_alerts_and_pauses_on_a_mismatch_and_is_quiet_otherwise(account, sim, w3: Web3, dev_token):
    from execution import reconciliation
    from execution.models import Alert
    from mrmarket import health

    # The ledger's custody balance is what the chain holds (earlier tests in this module moved tokens).
    onchain = token(w3, dev_token).functions.balanceOf(CUSTODY.address).call()
    services.ledger_record(
        tx=transfer(
            "custody-align",
            "deposit_credit",
            asset="USDT",
            amount=onchain - 5_000 * UNIT,
            source="external:chain",
            target="custody",
        )
    )
    order = new_order(account)
    outbound.mm_order_fund(order_id=order.pk)
    order = track_until(order, "deposit_confirmed", w3)
    for event in (mm.Event.START, mm.Event.JOB_RUNNING):
        services.mm_order_transition(order_id=order.pk, event=event, key=f"o{order.pk}-{event.value}")
    assert reconciliation.reconcile_exchange_account(account_id=account.pk) == []
    assert reconciliation.reconcile_custody() == []
    assert health.run_checks(["alerts"])[0].state == "ok"

    # Funds appear on the exchange account that no ledger entry explains.
    venue = sim.sim.keys.get(accounts.exchange_account_credentials(account=account).api_key).account_id
    sim.admin("POST", f"/_devnet/accounts/{venue}/credit", {"asset": "USDT", "amount": "7"})
    (mismatch,) = reconciliation.reconcile_exchange_account(account_id=account.pk)
    assert (mismatch.asset, mismatch.ledger, mismatch.actual) == ("USDT", 1_000 * UNIT, 1_007 * UNIT)
    assert MMOrder.objects.get(pk=order.pk).state == "paused"
    reconciliation.reconcile_exchange_account(account_id=account.pk)  # the same fact: one open alert
    assert Alert.objects.filter(resolved_at__isnull=True).count() == 1
    check = health.run_checks(["alerts"])[0]
    assert check.state == "fail"
    assert "the ledger says 1000000000, the outside world says 1007000000" in check.detail

    # Tokens reach the custody wallet without a ledger entry.
    mint(w3, dev_token, CUSTODY.address, 3 * UNIT, sender=dev_accounts()[0])
    (custody_mismatch,) = reconciliation.reconcile_custody()
    assert custody_mismatch.actual - custody_mismatch.ledger == 3 * UNIT


def test_a_signed_transfer_not_yet_sent_keeps_its_funds_reserved(account, w3: Web3) -> None:
    first = new_order(account, amount=3_000 * UNIT)
    order = services.mm_order_transition(order_id=first.pk, event=mm.Event.FUND, key=f"o{first.pk}-fund")
    outbound._sign_deposit_transfer(w3, order)  # signed; the worker dies before the broadcast books it as sent
    second = new_order(account, amount=3_000 * UNIT)
    before = selectors.ledger_balances()
    with pytest.raises(LedgerOverdraft, match="custody holds 2000000000 base units of USDT free") as err:
        outbound.mm_order_fund(order_id=second.pk)
    assert err.value.extra == {"account": "custody:USDT", "short": 1_000 * UNIT}
    assert MMOrder.objects.get(pk=second.pk).state == "created"
    assert not CustodyTransfer.objects.filter(order=second).exists()
    assert selectors.ledger_balances() == before
    assert outbound.mm_order_track_deposit(order_id=first.pk).state == "withdrawing_to_exchange"
    assert selectors.ledger_balance(account=f"custody:reserved:o{first.pk}:USDT") == 0
    assert selectors.ledger_balance(account=f"transit:o{first.pk}:USDT") == 3_000 * UNIT
    assert asset_totals(selectors.ledger_balances()) == {"USDT": 0}


@pytest.fixture
def manual_mining(w3: Web3) -> Iterator[None]:
    """Transactions wait in the mempool until the test mines a block."""
    w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        yield
    finally:
        w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]


def _mine(w3: Web3) -> None:
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def _open_alerts(kind: str) -> list:
    from execution.models import Alert

    return list(Alert.objects.filter(kind=kind, resolved_at__isnull=True))


def test_a_stuck_transfer_is_replaced_at_a_higher_gas_price_and_the_replacement_is_what_mines(
    account, w3: Web3, manual_mining, settings
) -> None:
    settings.CUSTODY_GAS_BUMP_SECONDS = 0  # every beat finds it overdue
    order = outbound.mm_order_fund(order_id=new_order(account).pk)
    assert order.state == "withdrawing_to_exchange"
    original = CustodyTransfer.objects.get(order=order)
    order = outbound.mm_order_track_deposit(order_id=order.pk)  # still pending: replaced, and no error
    assert order.state == "withdrawing_to_exchange"
    bumped = CustodyTransfer.objects.get(order=order)
    assert (bumped.nonce, bumped.amount, bumped.to_address) == (original.nonce, original.amount, original.to_address)
    assert bumped.tx_hash != original.tx_hash
    assert bumped.gas_price >= original.gas_price * 125 // 100
    assert list(bumped.versions.values_list("tx_hash", flat=True)) == [original.tx_hash, bumped.tx_hash]
    (alert,) = _open_alerts("custody_transfer_stuck")
    assert (alert.severity, alert.detail["transfer_id"]) == ("warning", bumped.pk)
    # The pool holds the replacement in place of the original.
    assert w3.eth.get_transaction(HexStr(bumped.tx_hash))["nonce"] == original.nonce
    settings.CUSTODY_GAS_BUMP_SECONDS = 3600
    _mine(w3)
    order = outbound.mm_order_track_deposit(order_id=order.pk)
    assert order.state == "deposit_confirming"
    assert CustodyTransfer.objects.get(order=order).tx_hash == bumped.tx_hash
    assert not _open_alerts("custody_transfer_stuck")  # the stall is over
    w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    order = track_until(order, "deposit_confirmed", w3)  # the exchange credits the replacement's hash
    assert selectors.ledger_balance(account=f"exchange:a{account.pk}:free:USDT") == 1_000 * UNIT
    assert asset_totals(selectors.ledger_balances()) == {"USDT": 0}


def test_a_transfer_that_mined_while_a_replacement_was_due_is_not_replaced_and_is_credited(
    account, w3: Web3, manual_mining, settings
) -> None:
    order = outbound.mm_order_fund(order_id=new_order(account).pk)
    original = CustodyTransfer.objects.get(order=order)
    _mine(w3)  # it mined; the tracker has not seen it yet when a beat finds the transfer overdue
    settings.CUSTODY_GAS_BUMP_SECONDS = 0
    kept = custody.sign_replacement(w3, original)
    assert kept.tx_hash == original.tx_hash
    assert not kept.versions.exclude(tx_hash=original.tx_hash).exists()  # no version that could never mine
    settings.CUSTODY_GAS_BUMP_SECONDS = 3600
    w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    order = track_until(outbound.mm_order_track_deposit(order_id=order.pk), "deposit_confirmed", w3)
    assert selectors.ledger_balance(account=f"exchange:a{account.pk}:free:USDT") == 1_000 * UNIT


def test_an_earlier_version_that_mines_after_its_replacement_is_accepted(
    account, w3: Web3, manual_mining, settings
) -> None:
    settings.CUSTODY_GAS_BUMP_SECONDS = 0
    order = outbound.mm_order_fund(order_id=new_order(account).pk)
    original = CustodyTransfer.objects.get(order=order)
    outbound.mm_order_track_deposit(order_id=order.pk)
    replacement = CustodyTransfer.objects.get(order=order)
    settings.CUSTODY_GAS_BUMP_SECONDS = 3600
    # Another node still had the original and a miner took it: the replacement can no longer be sent
    # ("nonce too low"), and the transfer is the original.
    w3.provider.make_request("anvil_dropTransaction", [replacement.tx_hash])  # type: ignore[arg-type]
    w3.eth.send_raw_transaction(HexStr(original.raw_tx))
    _mine(w3)
    order = outbound.mm_order_track_deposit(order_id=order.pk)
    assert order.state == "deposit_confirming"
    mined = CustodyTransfer.objects.get(order=order)
    assert (mined.tx_hash, mined.raw_tx, mined.status) == (original.tx_hash, original.raw_tx, "mined")
    assert order.transitions.get(event="transfer_mined").detail["tx_hash"] == original.tx_hash


def test_a_nonce_taken_by_a_transaction_not_ours_parks_the_transfer_with_an_alert(
    account, w3: Web3, manual_mining
) -> None:
    order = outbound.mm_order_fund(order_id=new_order(account).pk)
    ours = CustodyTransfer.objects.get(order=order)
    # The custody key used elsewhere: another transaction with our nonce mines, ours leaves the pool.
    w3.provider.make_request("anvil_dropTransaction", [ours.tx_hash])  # type: ignore[arg-type]
    other = Account.from_key(CUSTODY.private_key).sign_transaction(
        {
            "to": CUSTODY.address,
            "value": 0,
            "nonce": ours.nonce,
            "gas": 21_000,
            "gasPrice": w3.eth.gas_price,
            "chainId": w3.eth.chain_id,
        }
    )
    w3.eth.send_raw_transaction(other.raw_transaction)
    _mine(w3)
    before = selectors.ledger_balances()
    for _ in range(2):  # every later beat: no error, no second alert
        order = outbound.mm_order_track_deposit(order_id=order.pk)
        assert order.state == "withdrawing_to_exchange"
    assert CustodyTransfer.objects.get(order=order).status == "parked"
    (alert,) = _open_alerts("custody_nonce_taken")
    assert (alert.severity, alert.detail["nonce"]) == ("critical", ours.nonce)
    assert selectors.ledger_balances() == before  # the funds stay located in transit for the operator


def test_a_transfer_pending_at_the_gas_price_cap_alerts_instead_of_replacing(
    account, w3: Web3, manual_mining, settings
) -> None:
    settings.CUSTODY_GAS_BUMP_SECONDS = 0
    order = outbound.mm_order_fund(order_id=new_order(account).pk)
    original = CustodyTransfer.objects.get(order=order)
    settings.CUSTODY_GAS_PRICE_CAP_WEI = original.gas_price
    for _ in range(2):
        assert outbound.mm_order_track_deposit(order_id=order.pk).state == "withdrawing_to_exchange"
    assert CustodyTransfer.objects.get(order=order).tx_hash == original.tx_hash
    assert original.versions.count() == 1
    (alert,) = _open_alerts("custody_gas_cap")
    assert alert.detail["transfer_id"] == original.pk
    assert not _open_alerts("custody_transfer_stuck")
    _mine(w3)
    assert outbound.mm_order_track_deposit(order_id=order.pk).state == "deposit_confirming"
    assert not _open_alerts("custody_gas_cap")
