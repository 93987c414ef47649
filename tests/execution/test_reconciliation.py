"""Reconciliation per exchange account: an operator's trading and treasury keys open one account on the
exchange, with one balance, booked in the ledger under the trading key."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from devnet.exchange.fixtures import RunningExchange
from devnet.exchange.keys import Permission
from execution import accounts, reconciliation, services, tasks
from execution.domain.ledger import transfer
from execution.models import Alert, ExchangeAccount
from mrmarket.exchanges.credentials import ExchangeCredentials
from tests.executor.harness import live_exchange
from tests.factories import user_with

pytestmark = pytest.mark.django_db

UNIT = 10**6


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningExchange]:
    with live_exchange(run_market=False) as ex:
        yield ex


@pytest.fixture
def keys(settings, sim: RunningExchange) -> tuple[ExchangeAccount, ExchangeAccount]:
    """A trading and a treasury key of one exchange account holding 1411.504005 USDT, all of it on the ledger."""
    settings.EXCHANGE_API_URLS = {"binance": sim.base_url}
    settings.CUSTODY_ASSETS = {"USDT": {"token": "0x" + "ab" * 20, "decimals": 6}}
    settings.CUSTODY_PRIVATE_KEY = ""  # no chain here: the custody side is tested in test_funds.py
    venue = sim.sim.create_account(permissions=frozenset({Permission.TRADE}), balances={"USDT": Decimal("1411.504005")})
    treasury_key = sim.sim.create_key(venue.account_id, permissions=frozenset({Permission.WITHDRAW}))
    owner = user_with()
    trading = accounts.exchange_account_enrol(
        owner_id=owner.pk,
        exchange="binance",
        label="mm",
        role="trading",
        credentials=ExchangeCredentials(venue.key, venue.secret),
    )
    treasury = accounts.exchange_account_enrol(
        owner_id=owner.pk,
        exchange="binance",
        label="mm treasury",
        role="treasury",
        credentials=ExchangeCredentials(treasury_key.key, treasury_key.secret),
    )
    services.ledger_record(
        tx=transfer(
            f"seed-a{trading.pk}",
            "deposit_credit",
            asset="USDT",
            amount=1_411_504_005,
            source="external:chain",
            target=f"exchange:a{trading.pk}:free",
        )
    )
    return trading, treasury


def test_a_treasury_key_is_not_reconciled_as_a_separate_account(keys) -> None:
    tasks.reconcile()  # what beat runs
    assert list(Alert.objects.values_list("message", flat=True)) == []
    trading, treasury = keys
    assert reconciliation.reconcile_exchange_account(account_id=treasury.pk) == []
    assert reconciliation.reconcile_exchange_account(account_id=trading.pk) == []


def test_a_real_difference_is_one_alert_for_the_account_whichever_key_sees_it(keys, sim: RunningExchange) -> None:
    trading, treasury = keys
    venue = sim.sim.keys.authenticate(accounts.exchange_account_credentials(account=trading).api_key).account_id
    sim.admin("POST", f"/_devnet/accounts/{venue}/credit", {"asset": "USDT", "amount": "7"})
    (mismatch,) = reconciliation.reconcile_exchange_accounts()
    assert (mismatch.scope, mismatch.asset) == (f"exchange:a{trading.pk}", "USDT")
    assert (mismatch.ledger, mismatch.actual) == (1_411_504_005, 1_418_504_005)
    reconciliation.reconcile_exchange_account(account_id=treasury.pk)  # the same fact through the other key
    assert Alert.objects.filter(resolved_at__isnull=True).count() == 1


def test_a_mismatch_alert_names_the_operator_and_clears_once_the_ledger_agrees(keys, sim: RunningExchange) -> None:
    trading, _ = keys
    venue = sim.sim.keys.authenticate(accounts.exchange_account_credentials(account=trading).api_key).account_id
    sim.admin("POST", f"/_devnet/accounts/{venue}/credit", {"asset": "USDT", "amount": "7"})
    reconciliation.reconcile_exchange_accounts()
    reconciliation.reconcile_exchange_accounts()  # the same fact again: still one alert
    (alert,) = Alert.objects.filter(kind="reconciliation_mismatch")
    assert (alert.owner_id, alert.resolved_at, alert.severity) == (trading.owner_id, None, "critical")
    # The 7 USDT are booked (a deposit the ledger had missed): the next pass finds no difference and clears it.
    services.ledger_record(
        tx=transfer(
            "late-credit",
            "deposit_credit",
            asset="USDT",
            amount=7 * UNIT,
            source="external:chain",
            target=f"exchange:a{trading.pk}:free",
        )
    )
    assert reconciliation.reconcile_exchange_accounts() == []
    alert.refresh_from_db()
    assert alert.resolved_at is not None
    assert alert.resolved_by is None


def test_keys_of_two_accounts_are_reconciled_apart(keys, sim: RunningExchange, settings) -> None:
    trading, _ = keys
    other = sim.sim.create_account(permissions=frozenset({Permission.TRADE}), balances={"USDT": Decimal(5)})
    stranger = accounts.exchange_account_enrol(
        owner_id=trading.owner_id,
        exchange="binance",
        label="other",
        role="trading",
        credentials=ExchangeCredentials(other.key, other.secret),
    )
    (mismatch,) = reconciliation.reconcile_exchange_accounts()
    assert (mismatch.scope, mismatch.ledger, mismatch.actual) == (f"exchange:a{stranger.pk}", 0, 5 * UNIT)


class _NoUidClient:
    """An exchange whose balances do not name the account: its deposit address does."""

    def __init__(self, address: str) -> None:
        self.address = address

    def fetch_deposit_address(self, asset: str) -> dict[str, str]:
        return {"address": self.address}


def test_without_an_account_id_the_deposit_address_tells_keys_apart(settings) -> None:
    settings.CUSTODY_ASSETS = {"USDT": {"token": "0x" + "ab" * 20, "decimals": 6}}
    key = ExchangeAccount(pk=7)
    same = reconciliation._venue_identity(key, _NoUidClient("0xAB"), {"info": {}})
    assert same == reconciliation._venue_identity(ExchangeAccount(pk=8), _NoUidClient("0xab"), {"info": []})
    assert same != reconciliation._venue_identity(key, _NoUidClient("0xcd"), {})
    settings.CUSTODY_ASSETS = {}
    assert reconciliation._venue_identity(key, _NoUidClient("0xab"), {}) == "key:7"


def test_a_deposit_the_exchange_credited_before_the_order_booked_it_is_no_mismatch(keys, sim: RunningExchange) -> None:
    from execution.domain import mm_order as mm
    from execution.models import MMOrder

    trading, _ = keys
    order = MMOrder.objects.create(
        owner_id=trading.owner_id,
        exchange_account=trading,
        symbol="MMT/USDT",
        funding_asset="USDT",
        funding_amount=50 * UNIT,
        state=mm.State.DEPOSIT_CONFIRMING,
    )
    for key, source, target in (("in", "external:chain", "custody"), ("sent", "custody", f"transit:o{order.pk}")):
        services.ledger_record(
            tx=transfer(key, "deposit_credit", asset="USDT", amount=50 * UNIT, source=source, target=target)
        )
    venue = sim.sim.keys.authenticate(accounts.exchange_account_credentials(account=trading).api_key).account_id
    sim.admin("POST", f"/_devnet/accounts/{venue}/credit", {"asset": "USDT", "amount": "50"})  # credited, not booked
    assert reconciliation.reconcile_exchange_accounts() == []
    sim.admin("POST", f"/_devnet/accounts/{venue}/credit", {"asset": "USDT", "amount": "1"})  # more than in flight
    (mismatch,) = reconciliation.reconcile_exchange_accounts()
    assert mismatch.actual - mismatch.ledger == 51 * UNIT


def test_a_key_that_cannot_be_read_skips_its_exchange_and_no_false_alert_is_raised(
    keys, sim: RunningExchange, settings
) -> None:
    trading, treasury = keys
    # The treasury key's row no longer opens (say a database writer swapped it): its account is unknown, so the
    # trading key's account is not compared without it, and nothing raises for the rest of the pass.
    ExchangeAccount.objects.filter(pk=treasury.pk).update(credentials_signature="")
    venue = sim.sim.keys.authenticate(accounts.exchange_account_credentials(account=trading).api_key).account_id
    sim.admin("POST", f"/_devnet/accounts/{venue}/credit", {"asset": "USDT", "amount": "7"})  # a real difference
    assert reconciliation.reconcile_exchange_accounts() == []  # skipped this pass, not a wrong verdict
    assert not Alert.objects.filter(kind="reconciliation_mismatch").exists()
    assert Alert.objects.filter(kind="credentials_untrusted").count() == 1  # what was wrong is alerted
