"""The return leg, exchange → custody, per asset (ADR 0014) on the devnet (Anvil + the exchange simulator through
ccxt): a request whose answer was lost is found in the exchange's history instead of being sent again (with or
without a client id the exchange deduplicates), a refused asset leaves the sent one booked, a failed asset
neither strands nor hides another's tracking, a failed order can be stopped and brought home, and two
concurrent requests send once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import ccxt
import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient
from web3 import Web3

from devnet.chain import deploy_dev_token, dev_accounts, mint, token
from devnet.exchange.config import ChainConfig, SimConfig
from devnet.exchange.faults import Fault, FaultKind
from devnet.exchange.fixtures import RunningExchange, run_exchange
from devnet.exchange.keys import Permission
from execution import accounts, homeward, selectors, services, withdrawals
from execution.domain import mm_order as mm
from execution.domain import withdrawal as wd
from execution.domain.ledger import asset_totals, transfer
from execution.errors import InvalidOrderTransition, OrderRejected
from execution.models import Alert, ExchangeAccount, ExchangeWithdrawal, LedgerTransaction, MMOrder
from mrmarket.exchanges.credentials import ExchangeCredentials
from mrmarket.exchanges.errors import ExchangeUnavailable
from mrmarket.roles import Role
from tests.factories import user_with
from tests.plugins.require import require_postgresql

pytestmark = [pytest.mark.chain, pytest.mark.timeout(120)]
USDT, MMT = 10**6, 10**18
CUSTODY = dev_accounts()[4]
HOLDINGS = {"USDT": 700 * USDT, "MMT": 3 * MMT}


@pytest.fixture(scope="module")
def tokens(w3: Web3) -> dict[str, str]:
    return {
        "USDT": deploy_dev_token(w3, sender=dev_accounts()[0]),
        "MMT": deploy_dev_token(w3, sender=dev_accounts()[0], name="Market Maker Token", symbol="MMT", decimals=18),
    }


@pytest.fixture(scope="module")
def sim(anvil, w3: Web3, tokens: dict[str, str]) -> Iterator[RunningExchange]:
    hot = dev_accounts()[9]
    mint(w3, tokens["USDT"], hot.address, 1_000_000 * USDT, sender=dev_accounts()[0])
    mint(w3, tokens["MMT"], hot.address, 1_000_000 * MMT, sender=dev_accounts()[0])
    chain = ChainConfig(
        rpc_url=anvil.url, assets=tokens, hot_wallet_key=hot.private_key, confirmations=2, poll_interval=0.1
    )
    with run_exchange(SimConfig(run_market=False, chain=chain)) as running:
        yield running


class Stopped:
    """A stopped order holding HOLDINGS on its exchange account (booked in the ledger and held by the simulator),
    with a treasury key of the same account and an operator's API client."""

    def __init__(self, sim: RunningExchange) -> None:
        self.owner = user_with(Role.OPERATOR)
        key = sim.sim.create_account(
            permissions=frozenset({Permission.TRADE}),
            balances={"USDT": Decimal(HOLDINGS["USDT"]) / USDT, "MMT": Decimal(HOLDINGS["MMT"]) / MMT},
        )
        self.venue = key.account_id
        treasury_key = sim.sim.create_key(key.account_id, permissions=frozenset({Permission.WITHDRAW}))
        self.account = accounts.exchange_account_enrol(
            owner_id=self.owner.pk,
            exchange="binance",
            label="mm",
            role="trading",
            credentials=ExchangeCredentials(key.key, key.secret),
        )
        self.treasury = accounts.exchange_account_enrol(
            owner_id=self.owner.pk,
            exchange="binance",
            label="treasury",
            role="treasury",
            credentials=ExchangeCredentials(treasury_key.key, treasury_key.secret),
        )
        self.order = MMOrder.objects.create(
            owner=self.owner,
            exchange_account=self.account,
            symbol="MMT/USDT",
            funding_asset="USDT",
            funding_amount=HOLDINGS["USDT"],
            state=mm.State.DEPOSIT_CONFIRMED,
        )
        for asset, units in HOLDINGS.items():
            services.ledger_record(
                tx=transfer(
                    f"o{self.order.pk}-seed-{asset}",
                    "deposit_credit",
                    asset=asset,
                    amount=units,
                    source="external:chain",
                    target=f"exchange:a{self.account.pk}:free",
                )
            )
        self.api = APIClient()
        self.api.force_authenticate(self.owner)
        self.stop()

    def stop(self) -> str:
        answer = self.api.post(f"/api/v1/execution/mm-orders/{self.order.pk}/stop", format="json")
        assert answer.status_code == 200, answer.json()
        return str(answer.json()["state"])

    def withdraw_back(self) -> MMOrder:
        return homeward.mm_order_withdraw_back(order_id=self.order.pk, treasury_account_id=self.treasury.pk)

    def state(self) -> str:
        return MMOrder.objects.get(pk=self.order.pk).state

    def rows(self, asset: str) -> list[ExchangeWithdrawal]:
        return list(ExchangeWithdrawal.objects.filter(order=self.order, asset=asset).order_by("pk"))

    def free(self, asset: str) -> int:
        return selectors.ledger_balance(account=f"exchange:a{self.account.pk}:free:{asset}")

    def transit(self, asset: str) -> int:
        return selectors.ledger_balance(account=f"transit:o{self.order.pk}:{asset}")


@pytest.fixture
def stopped(settings, anvil, sim: RunningExchange, tokens: dict[str, str]) -> Stopped:
    settings.CHAIN_RPC_URL = anvil.url
    settings.CHAIN_CONFIRMATIONS = 2
    settings.EXCHANGE_API_URLS = {"binance": sim.base_url}
    settings.CUSTODY_ASSETS = {
        "USDT": {"token": tokens["USDT"], "decimals": 6},
        "MMT": {"token": tokens["MMT"], "decimals": 18},
    }
    settings.CUSTODY_PRIVATE_KEY = CUSTODY.private_key
    return Stopped(sim)


def on_exchange(sim: RunningExchange, venue: str, asset: str) -> list[Any]:
    """The withdrawals the exchange itself holds for the account (what was really sent)."""
    assert sim.sim.funds is not None
    return [w for w in sim.sim.funds.withdrawals.values() if w.account_id == venue and w.coin == asset]


def track_until(stopped: Stopped, w3: Web3, done: Callable[[], bool]) -> None:
    for _ in range(200):  # bounded: 20 s
        homeward.mm_order_track_withdrawal(order_id=stopped.order.pk)
        if done():
            return
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        time.sleep(0.1)
    pytest.fail(f"order stuck in {stopped.state()}")


class Exchange:
    """The treasury's ccxt client as a test needs it: without client ids (an exchange that has none), refusing
    one asset, or losing the answer of an accepted withdrawal (the call times out after the exchange took it)."""

    def __init__(self, real: Any, *, client_ids: bool = True, refuse: str = "", lose_answer: bool = False) -> None:
        self.real, self.client_ids, self.refuse, self.lose_answer = real, client_ids, refuse, lose_answer
        self.withdraw_calls: list[str] = []

    def withdraw(self, code: str, amount: Any, address: str, params: dict[str, Any] | None = None) -> Any:
        self.withdraw_calls.append(code)
        if code == self.refuse:
            raise ccxt.InsufficientFunds("Account has insufficient balance for requested action.")
        result = self.real.withdraw(code, amount, address, params if self.client_ids else {})
        if self.lose_answer:
            raise ccxt.RequestTimeout("binance POST /sapi/v1/capital/withdraw/apply timed out")
        return result

    def fetch_withdrawals(self, code: str, since: Any = None, limit: Any = None, params: Any = None) -> Any:
        return self.real.fetch_withdrawals(code, since, limit, (params or {}) if self.client_ids else {})

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def patch_treasury(monkeypatch, stopped: Stopped, exchange: Exchange | None) -> None:
    real = accounts.exchange_account_client

    def client_for(*, account: ExchangeAccount) -> Any:
        client = real(account=account)
        if exchange is None or account.pk != stopped.treasury.pk:
            return client
        exchange.real = client
        return exchange

    monkeypatch.setattr(accounts, "exchange_account_client", client_for)


# --- a lost answer is looked up, never resent ------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("client_ids", [True, False], ids=["by-client-id", "by-amount-address-time"])
def test_an_accepted_withdrawal_whose_answer_was_lost_is_found_not_resent(
    monkeypatch, stopped: Stopped, sim: RunningExchange, w3: Web3, client_ids: bool
) -> None:
    if not client_ids:
        monkeypatch.setattr(withdrawals, "WITHDRAW_CLIENT_ID_PARAM", {})
    exchange = Exchange(None, client_ids=client_ids, lose_answer=True)
    patch_treasury(monkeypatch, stopped, exchange)
    with pytest.raises(ExchangeUnavailable):
        stopped.withdraw_back()
    # The exchange took both; we heard nothing: the requests are recorded, nothing is booked yet.
    assert [w.status for w in ExchangeWithdrawal.objects.filter(order=stopped.order)] == ["requesting"] * 2
    assert stopped.free("USDT") == HOLDINGS["USDT"]
    assert stopped.transit("USDT") == 0
    assert stopped.state() == "stopping"

    exchange.lose_answer = False
    order = stopped.withdraw_back()  # the operator retries (the beat would do the same)
    assert order.state == "withdrawing_back"
    assert exchange.withdraw_calls == ["MMT", "USDT"], "an accepted withdrawal was sent again"
    for asset, units in HOLDINGS.items():
        assert len(on_exchange(sim, stopped.venue, asset)) == 1
        (row,) = stopped.rows(asset)
        assert (row.status, row.sends) == ("sent", 1)
        assert row.exchange_id == on_exchange(sim, stopped.venue, asset)[0].withdraw_id
        assert stopped.transit(asset) == units
        assert stopped.free(asset) == 0
    track_until(stopped, w3, lambda: stopped.state() == "settled")
    for asset, units in HOLDINGS.items():
        assert selectors.ledger_balance(account=f"custody:{asset}") == units
    assert asset_totals(selectors.ledger_balances()) == {"USDT": 0, "MMT": 0}


@pytest.mark.django_db
def test_without_client_ids_a_request_the_exchange_never_got_is_sent_again_only_after_the_listing_window(
    monkeypatch, stopped: Stopped, sim: RunningExchange
) -> None:
    monkeypatch.setattr(withdrawals, "WITHDRAW_CLIENT_ID_PARAM", {})
    exchange = Exchange(None, client_ids=False)
    patch_treasury(monkeypatch, stopped, exchange)
    sim.sim.faults.add(Fault(kind=FaultKind.HTTP_5XX, status=502, endpoint="/sapi/v1/capital/withdraw/apply", count=2))
    with pytest.raises(ExchangeUnavailable):
        stopped.withdraw_back()
    assert exchange.withdraw_calls == ["MMT", "USDT"]
    # Asked again at once: its history does not list them, but they might still appear, so nothing is sent.
    assert stopped.withdraw_back().state == "stopping"
    assert exchange.withdraw_calls == ["MMT", "USDT"]
    assert not on_exchange(sim, stopped.venue, "MMT")
    # Once the window has passed, their absence proves they never landed: each is sent once more.
    monkeypatch.setattr(withdrawals, "WITHDRAWAL_LISTING_SECONDS", 0.0)
    assert stopped.withdraw_back().state == "withdrawing_back"
    assert exchange.withdraw_calls == ["MMT", "USDT", "MMT", "USDT"]
    for asset in HOLDINGS:
        assert len(on_exchange(sim, stopped.venue, asset)) == 1
        assert [(r.status, r.sends) for r in stopped.rows(asset)] == [("sent", 2)]


# --- one asset refused: the other is sent and booked; the refused one is retried ------------------------------


@pytest.mark.django_db
def test_a_refused_asset_leaves_the_sent_one_booked_and_is_retried(
    monkeypatch, stopped: Stopped, sim: RunningExchange, w3: Web3
) -> None:
    exchange = Exchange(None, refuse="USDT")  # MMT is asked first, then USDT is refused
    patch_treasury(monkeypatch, stopped, exchange)
    with pytest.raises(OrderRejected) as refused:
        stopped.withdraw_back()
    assert refused.value.code == "withdrawal_refused"
    # MMT left the exchange and is booked in transit; USDT did not move, in the ledger or on the exchange.
    assert stopped.transit("MMT") == HOLDINGS["MMT"]
    assert stopped.free("MMT") == 0
    assert stopped.free("USDT") == HOLDINGS["USDT"]
    assert stopped.transit("USDT") == 0
    assert not on_exchange(sim, stopped.venue, "USDT")
    assert [r.status for r in stopped.rows("USDT")] == ["failed"]
    assert stopped.state() == "stopping"  # not every asset is on its way yet
    assert Alert.objects.filter(kind="withdrawal_failed", resolved_at__isnull=True).count() == 1
    # The sent asset is tracked home meanwhile; the refused one is asked again once the operator retries.
    track_until(stopped, w3, lambda: stopped.rows("MMT")[0].status == "confirmed")
    assert stopped.state() == "stopping"
    exchange.refuse = ""
    assert stopped.withdraw_back().state == "withdrawing_back"
    assert [r.status for r in stopped.rows("USDT")] == ["failed", "sent"]
    assert len(on_exchange(sim, stopped.venue, "MMT")) == 1
    track_until(stopped, w3, lambda: stopped.state() == "settled")
    for asset, units in HOLDINGS.items():
        assert selectors.ledger_balance(account=f"custody:{asset}") == units
        assert stopped.transit(asset) == 0


# --- one asset fails at the exchange: the other still arrives; the failed order is stopped and brought home ----


@pytest.mark.django_db
def test_a_failed_asset_does_not_strand_the_other_and_the_failed_order_is_stopped_and_brought_home(
    stopped: Stopped, sim: RunningExchange, w3: Web3, tokens: dict[str, str]
) -> None:
    custody_before = {a: token(w3, t).functions.balanceOf(CUSTODY.address).call() for a, t in tokens.items()}
    sim.sim.faults.add(Fault(kind=FaultKind.WITHDRAWAL_FAILURE, account=stopped.venue, count=1))
    assert stopped.withdraw_back().state == "withdrawing_back"
    # The exchange fails the first withdrawal it processes (MMT, asked first); USDT goes through.
    track_until(stopped, w3, lambda: stopped.state() != "withdrawing_back")
    assert [r.status for r in stopped.rows("MMT")] == ["failed"]
    assert [r.status for r in stopped.rows("USDT")] == ["confirmed"]
    assert selectors.ledger_balance(account="custody:USDT") == HOLDINGS["USDT"]
    assert stopped.transit("USDT") == 0
    assert stopped.transit("MMT") == 0
    assert stopped.free("MMT") == HOLDINGS["MMT"]  # booked back where the exchange refunded it
    order = MMOrder.objects.get(pk=stopped.order.pk)
    assert order.state == "failed"
    assert "MMT" in order.failure_reason

    # A failed order whose funds are on the exchange can be stopped, and its funds brought back.
    assert stopped.stop() == "stopping"
    assert stopped.stop() == "stopping"  # a repeated stop is the same stop
    assert stopped.withdraw_back().state == "withdrawing_back"
    assert [r.status for r in stopped.rows("MMT")] == ["failed", "sent"]
    assert len({r.client_id for r in stopped.rows("MMT")}) == 2  # a new request, not the failed one's id
    track_until(stopped, w3, lambda: stopped.state() == "settled")
    for asset, units in HOLDINGS.items():
        assert selectors.ledger_balance(account=f"custody:{asset}") == units
        onchain = token(w3, tokens[asset]).functions.balanceOf(CUSTODY.address).call()
        assert onchain - custody_before[asset] == units
    assert asset_totals(selectors.ledger_balances()) == {"USDT": 0, "MMT": 0}
    events = list(MMOrder.objects.get(pk=stopped.order.pk).transitions.values_list("event", flat=True))
    assert events == ["stop", "orders_settled", "fail", "stop", "orders_settled", "withdrawal_arrived"]


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_once_a_withdrawal_failure_committed_still_leaves_it_alerted(
    monkeypatch, stopped: Stopped, sim: RunningExchange, w3: Web3
) -> None:
    """The alert of a withdrawal the exchange failed is written in the failure's own transaction. A worker that
    died just after the failure committed used to lose it: nothing tracks a failed row again, and the order then
    failed on it silently (tests/chaos/test_crash_mm_paths.py kills a real worker there)."""
    sim.sim.faults.add(Fault(kind=FaultKind.WITHDRAWAL_FAILURE, account=stopped.venue, count=1))
    assert stopped.withdraw_back().state == "withdrawing_back"

    class WorkerDied(Exception):
        pass

    def die() -> None:
        raise WorkerDied

    real = withdrawals._apply

    def apply(row: ExchangeWithdrawal, event: wd.Event, **kwargs: Any) -> ExchangeWithdrawal:
        applied = real(row, event, **kwargs)
        if event is wd.Event.FAILED:
            transaction.on_commit(die)  # the worker dies as soon as the failure is committed
        return applied

    monkeypatch.setattr(withdrawals, "_apply", apply)
    with pytest.raises(WorkerDied):  # noqa: PT012 - the beat, pass after pass, until the worker dies in one
        for _ in range(200):  # bounded: 20 s
            homeward.mm_order_track_withdrawal(order_id=stopped.order.pk)
            w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
            time.sleep(0.1)
    monkeypatch.setattr(withdrawals, "_apply", real)
    (failed,) = [r for r in ExchangeWithdrawal.objects.filter(order=stopped.order) if r.status == "failed"]
    track_until(stopped, w3, lambda: stopped.state() == "failed")  # the next beats: the order fails on it
    (alert,) = Alert.objects.filter(kind="withdrawal_failed", resolved_at__isnull=True)
    assert alert.detail["withdrawal"] == failed.client_id


# --- bad input changes nothing ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_withdrawing_back_a_running_order_is_refused_and_changes_nothing(stopped: Stopped) -> None:
    running = MMOrder.objects.create(
        owner=stopped.owner,
        exchange_account=stopped.account,
        symbol="MMT/USDT",
        funding_asset="USDT",
        funding_amount=HOLDINGS["USDT"],
        state=mm.State.RUNNING,
    )
    with pytest.raises(InvalidOrderTransition) as refused:
        homeward.mm_order_withdraw_back(order_id=running.pk, treasury_account_id=stopped.treasury.pk)
    assert refused.value.code == "invalid_order_transition"
    assert MMOrder.objects.get(pk=running.pk).state == "running"
    assert not ExchangeWithdrawal.objects.filter(order=running).exists()


# --- two concurrent requests send once (PostgreSQL row locks) --------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_withdraw_backs_send_each_asset_once(
    monkeypatch, stopped: Stopped, sim: RunningExchange, w3: Web3
) -> None:
    require_postgresql("row locks need PostgreSQL")
    # Without client ids the exchange would take every request: only our locks keep it to one each.
    monkeypatch.setattr(withdrawals, "WITHDRAW_CLIENT_ID_PARAM", {})
    exchange = Exchange(None, client_ids=False)
    patch_treasury(monkeypatch, stopped, exchange)
    # The exchange is slow to answer, so the second call arrives while the first one's request is on its way.
    sim.sim.faults.add(
        Fault(kind=FaultKind.LATENCY, endpoint="/sapi/v1/capital/withdraw/apply", latency_ms=400, count=2)
    )
    start = threading.Barrier(2)
    outcomes: list[Any] = []

    def call() -> None:
        try:
            start.wait(10)
            outcomes.append(stopped.withdraw_back().state)
        except Exception as exc:  # collected, asserted below
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(isinstance(o, Exception) for o in outcomes), outcomes
    assert sorted(exchange.withdraw_calls) == ["MMT", "USDT"]
    for asset, units in HOLDINGS.items():
        assert len(on_exchange(sim, stopped.venue, asset)) == 1
        (row,) = stopped.rows(asset)
        assert row.sends == 1
        assert LedgerTransaction.objects.filter(key=f"o{stopped.order.pk}-wd{row.pk}-sent").count() == 1
        assert stopped.transit(asset) == units
    track_until(stopped, w3, lambda: stopped.state() == "settled")


# --- assets custody holds no token for: the rest still comes home -------------------------------------------------


@pytest.mark.django_db
def test_assets_custody_cannot_take_never_block_the_return_of_the_rest(stopped: Stopped, w3: Web3) -> None:
    here = f"exchange:a{stopped.account.pk}:free"
    # A fee paid in BNB from a balance the ledger never saw arrive (the order holds it negative), and a rebate
    # in XYZ custody has no token for (positive): neither may make withdraw-back refuse, or raise on every call.
    for key, asset, amount, source, target in (
        (f"a{stopped.account.pk}-unbooked-bnb", "BNB", 10**15, f"external:unbooked:a{stopped.account.pk}", here),
        (f"o{stopped.order.pk}-fee-t1", "BNB", 10**15, here, "external:fees"),
        (f"o{stopped.order.pk}-rebate-t2", "XYZ", 7 * 10**17, "external:market", here),
    ):
        services.ledger_record(tx=transfer(key, "fee_debit", asset=asset, amount=amount, source=source, target=target))
    assert selectors.order_holdings(stopped.order)["BNB"] < 0
    assert stopped.withdraw_back().state == "withdrawing_back"
    assert sorted(r.asset for r in ExchangeWithdrawal.objects.filter(order=stopped.order)) == ["MMT", "USDT"]
    (stranded,) = Alert.objects.filter(kind="withdrawal_not_possible", resolved_at__isnull=True)
    assert stranded.detail == {"order": stopped.order.pk, "assets": {"XYZ": str(7 * 10**17)}}
    stopped.withdraw_back()  # again: one alert, nothing asked twice
    assert Alert.objects.filter(kind="withdrawal_not_possible").count() == 1
    track_until(stopped, w3, lambda: stopped.state() == "settled")
    assert stopped.free("XYZ") == 7 * 10**17  # still booked where it is: on the exchange account


# --- the web process queues it; a worker, which holds the master key, opens the treasury key (ADR 0015) --------


@pytest.mark.django_db
def test_withdraw_back_through_the_api_is_queued_and_the_worker_applies_it(
    stopped: Stopped, settings, django_capture_on_commit_callbacks
) -> None:
    from unittest import mock

    from execution import tasks

    worker_keys = settings.CREDENTIALS_MASTER_KEYS
    settings.CREDENTIALS_MASTER_KEYS = {}  # the web process: any attempt to open a stored key would raise
    url = f"/api/v1/execution/mm-orders/{stopped.order.pk}/withdraw-back"
    body = {"treasury_account_id": stopped.treasury.pk}
    with mock.patch.object(tasks.withdraw_back, "delay") as delay, django_capture_on_commit_callbacks(execute=True):
        answer = stopped.api.post(url, body, format="json")
    assert answer.status_code == 202, answer.json()
    assert answer.json()["state"] == "stopping"
    delay.assert_called_once_with(stopped.order.pk, stopped.treasury.pk)
    assert not ExchangeWithdrawal.objects.filter(order=stopped.order).exists()  # nothing asked yet

    settings.CREDENTIALS_MASTER_KEYS = worker_keys  # the worker runs the queued task
    tasks.withdraw_back(stopped.order.pk, stopped.treasury.pk)
    shown = stopped.api.get(f"/api/v1/execution/mm-orders/{stopped.order.pk}").json()
    assert shown["state"] == "withdrawing_back"
    assert {row.asset for row in ExchangeWithdrawal.objects.filter(order=stopped.order)} == set(HOLDINGS)

    # Asked again (a double click, a retried request): queued again, and the worker sends nothing twice.
    settings.CREDENTIALS_MASTER_KEYS = {}
    with mock.patch.object(tasks.withdraw_back, "delay") as delay, django_capture_on_commit_callbacks(execute=True):
        assert stopped.api.post(url, body, format="json").status_code == 202
    settings.CREDENTIALS_MASTER_KEYS = worker_keys
    tasks.withdraw_back(*delay.call_args.args)
    assert ExchangeWithdrawal.objects.filter(order=stopped.order).count() == len(HOLDINGS)


@pytest.mark.django_db
def test_a_withdraw_back_refused_without_the_exchange_is_answered_at_once_and_queues_nothing(
    stopped: Stopped, django_capture_on_commit_callbacks
) -> None:
    from unittest import mock

    from execution import tasks

    url = f"/api/v1/execution/mm-orders/{stopped.order.pk}/withdraw-back"
    with mock.patch.object(tasks.withdraw_back, "delay") as delay, django_capture_on_commit_callbacks(execute=True):
        trading = stopped.api.post(url, {"treasury_account_id": stopped.account.pk}, format="json")
        unknown = stopped.api.post(url, {"treasury_account_id": 999_999}, format="json")
    assert (trading.status_code, trading.json()["code"]) == (400, "mm_order_rejected")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")
    delay.assert_not_called()
    assert stopped.state() == "stopping"


@pytest.mark.django_db
def test_a_treasury_key_of_another_account_is_refused_by_the_worker_and_alerted(
    stopped: Stopped, sim: RunningExchange
) -> None:
    from execution import tasks

    elsewhere = sim.sim.create_account(permissions=frozenset({Permission.WITHDRAW}))
    other = accounts.exchange_account_enrol(
        owner_id=stopped.owner.pk,
        exchange="binance",
        label="other-treasury",
        role="treasury",
        credentials=ExchangeCredentials(elsewhere.key, elsewhere.secret),
    )
    tasks.withdraw_back(stopped.order.pk, other.pk)
    tasks.withdraw_back(stopped.order.pk, other.pk)  # once alerted, not again
    alerts = Alert.objects.filter(kind="withdraw_back_refused")
    assert [a.detail["code"] for a in alerts] == ["mm_order_rejected"]
    assert "another exchange account" in alerts[0].message
    assert stopped.state() == "stopping"
    assert not ExchangeWithdrawal.objects.filter(order=stopped.order).exists()


@pytest.mark.django_db
def test_a_treasury_row_whose_credentials_a_database_writer_swapped_withdraws_nothing(
    settings, stopped: Stopped, sim: RunningExchange
) -> None:
    from execution import tasks
    from execution.domain import envelope

    # The attacker's own withdrawal key, sealed correctly to the public key as the treasury row's, not signed.
    theirs = sim.sim.create_account(permissions=frozenset({Permission.WITHDRAW}))
    treasury = stopped.treasury
    sealed = envelope.seal(
        ExchangeCredentials(theirs.key, theirs.secret).to_bytes(),
        public_key=settings.CREDENTIALS_PUBLIC_KEY,
        key_id=settings.CREDENTIALS_MASTER_KEY_ID,
        context=treasury.context,
    )
    ExchangeAccount.objects.filter(pk=treasury.pk).update(
        credentials_wrapped_key=sealed.wrapped_key, credentials_ciphertext=sealed.ciphertext
    )
    tasks.withdraw_back(stopped.order.pk, treasury.pk)
    tasks.withdraw_back(stopped.order.pk, treasury.pk)  # retried: still nothing, alerted once
    assert [a.detail["account_id"] for a in Alert.objects.filter(kind="credentials_untrusted")] == [treasury.pk]
    assert [a.detail["code"] for a in Alert.objects.filter(kind="withdraw_back_refused")] == ["credentials_untrusted"]
    assert stopped.state() == "stopping"
    assert not ExchangeWithdrawal.objects.filter(order=stopped.order).exists()
    assert on_exchange(sim, stopped.venue, "USDT") == on_exchange(sim, theirs.account_id, "USDT") == []
