"""The MM order API: create (typed refusals, nothing created), detail with timeline and ledger, fund, stop."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from unittest import mock

import pytest
from rest_framework.test import APIClient

from devnet.exchange.fixtures import RunningExchange, run_exchange
from devnet.exchange.keys import Permission
from execution import accounts, jobspec, services
from execution.domain import mm_order as mm
from execution.models import ExchangeAccount, LedgerTransaction, MMOrder
from mrmarket.exchanges.credentials import ExchangeCredentials
from mrmarket.roles import Role
from tests.factories import user_with
from wire.jobs import JobSpec
from wire.strategies import BASELINE_DEFAULTS

pytestmark = pytest.mark.django_db
UNIT = 10**6


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningExchange]:
    with run_exchange() as running:
        yield running


@pytest.fixture
def operator(settings, sim: RunningExchange) -> tuple[APIClient, ExchangeAccount]:
    settings.EXCHANGE_API_URLS = {"binance": sim.base_url}
    settings.CUSTODY_ASSETS = {"USDT": {"token": "0x" + "ab" * 20, "decimals": 6}}
    user = user_with(Role.OPERATOR)
    key = sim.sim.create_account(permissions=frozenset({Permission.TRADE}))
    account = accounts.exchange_account_enrol(
        owner_id=user.pk,
        exchange="binance",
        label="mm",
        role="trading",
        credentials=ExchangeCredentials(key.key, key.secret),
    )
    client = APIClient()
    client.force_authenticate(user)
    return client, account


def create(client: APIClient, account: ExchangeAccount, **overrides: object):
    body = {
        "exchange_account_id": account.pk,
        "symbol": "MMT/USDT",
        "funding_asset": "USDT",
        "funding_amount": str(500 * UNIT),
        **overrides,
    }
    return client.post("/api/v1/execution/mm-orders", body, format="json")


def test_create_then_read_with_timeline_and_ledger(operator) -> None:
    client, account = operator
    created = create(client, account)
    assert created.status_code == 201, created.json()
    order_id = created.json()["id"]
    assert created.json()["state"] == "created"
    services.mm_order_transition(order_id=order_id, event=mm.Event.FUND, key="f")
    detail = client.get(f"/api/v1/execution/mm-orders/{order_id}").json()
    assert [t["event"] for t in detail["timeline"]] == ["fund"]
    assert detail["ledger"] == {}
    assert (detail["funding_amount"], detail["funding_amount_display"]) == (str(500 * UNIT), "500 USDT")
    assert [o["id"] for o in client.get("/api/v1/execution/mm-orders").json()] == [order_id]


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"symbol": "DOGE/USDT"}, "market_not_listed"),
        ({"funding_amount": "1000000"}, "amount_below_minimum"),
        ({"funding_asset": "BTC"}, "mm_order_rejected"),
        ({"exchange_account_id": 999_999}, "not_found"),
    ],
)
def test_bad_orders_are_refused_and_nothing_is_created(operator, overrides: dict, code: str) -> None:
    client, account = operator
    response = create(client, account, **overrides)
    assert response.status_code in (400, 404)
    assert response.json()["code"] == code
    assert not MMOrder.objects.exists()


def test_fund_is_queued_after_commit_and_only_for_created_orders(operator, django_capture_on_commit_callbacks) -> None:
    client, account = operator
    order_id = create(client, account).json()["id"]
    with mock.patch("execution.tasks.fund_order.delay") as delay, django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/api/v1/execution/mm-orders/{order_id}/fund").status_code == 202
    delay.assert_called_once_with(order_id)
    services.mm_order_transition(order_id=order_id, event=mm.Event.FUND, key="f")
    again = client.post(f"/api/v1/execution/mm-orders/{order_id}/fund")
    assert again.status_code == 409
    assert again.json()["code"] == "invalid_order_transition"


def test_stop_follows_the_state_machine_and_only_for_owners(operator) -> None:
    client, account = operator
    order_id = create(client, account).json()["id"]
    refused = client.post(f"/api/v1/execution/mm-orders/{order_id}/stop")
    assert refused.status_code == 409
    assert refused.json()["extra"]["allowed"] == ["fund", "refund"]
    for event, key in [
        (mm.Event.FUND, "f"),
        (mm.Event.TRANSFER_SENT, "s"),
        (mm.Event.TRANSFER_MINED, "m"),
        (mm.Event.DEPOSIT_CONFIRMED, "c"),
    ]:
        services.mm_order_transition(order_id=order_id, event=event, key=key)
    other = APIClient()
    other.force_authenticate(user_with(Role.OPERATOR))
    assert other.post(f"/api/v1/execution/mm-orders/{order_id}/stop").status_code == 404
    stopped = client.post(f"/api/v1/execution/mm-orders/{order_id}/stop")
    assert stopped.json()["state"] == "stopping"
    assert client.post(f"/api/v1/execution/mm-orders/{order_id}/stop").json()["state"] == "stopping"  # idempotent


@pytest.mark.parametrize(
    ("strategy", "code", "names"),
    [
        ({"params": {"levls": 2}}, "invalid_strategy_params", "strategy.params.levls"),
        ({"params": {"levels": 0}}, "invalid_strategy_params", "strategy.params.levels"),
        ({"params": {"bid_spread": "1" * 80}}, "invalid_strategy_params", "strategy.params.bid_spread"),
        ({"risk": {"max_open_order": 5}}, "invalid_job_spec", "max_open_order"),
        ({"risk": {"max_loss_quote": "0"}}, "invalid_job_spec", "spec.risk.max_loss_quote"),
        ({"name": "grid"}, "unknown_strategy", "grid"),
        ({"sample_seconds": 7}, "invalid_job_spec", "spec.sample_seconds"),
        ({"report_interval_seconds": 5}, "invalid_job_spec", "spec.report_interval_seconds"),
    ],
)
def test_a_job_spec_the_executor_would_refuse_is_refused_at_creation_and_nothing_exists(
    operator, strategy: dict, code: str, names: str
) -> None:
    client, account = operator
    response = create(client, account, strategy=strategy)
    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["code"] == code
    assert names in body["message"]
    assert not MMOrder.objects.exists()
    assert not LedgerTransaction.objects.exists()


def test_an_order_carries_the_complete_strategy_it_was_checked_with(operator) -> None:
    client, account = operator
    created = create(client, account, strategy={"params": {"bid_spread": "0.003"}, "risk": {"max_open_orders": 8}})
    assert created.status_code == 201, created.json()
    order = MMOrder.objects.get(pk=created.json()["id"])
    strategy = order.strategy
    assert strategy["name"] == "baseline"
    assert strategy["params"] == {**BASELINE_DEFAULTS, "bid_spread": "0.003", "order_amount": mock.ANY}
    assert strategy["risk"]["max_open_orders"] == 8
    # What the job starts with is that very strategy, whatever the market did meanwhile.
    spec = jobspec.build_job_spec(order, mid=Decimal("1234"))
    assert spec["strategy"] == {"name": "baseline", "params": strategy["params"]}
    assert spec["risk"] == strategy["risk"]
    assert JobSpec.parse(spec).strategy.name == "baseline"


def test_the_list_shows_each_orders_reports_and_ledger_in_a_fixed_number_of_queries(operator) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from execution.domain.ledger import exchange_holdings, in_transit, transfer
    from execution.models import ExecutionReport

    client, account = operator
    first = create(client, account).json()["id"]

    def listed() -> tuple[list[dict], int]:
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/api/v1/execution/mm-orders")
        assert response.status_code == 200
        return response.json(), len(queries)

    for sequence, fills in ((0, 3), (1, 4)):
        ExecutionReport.objects.create(
            order_id=first,
            job_id="j1",
            sequence=sequence,
            digest=f"{sequence:02d}" * 32,
            signing_key="aa" * 32,
            window_start_ms=sequence * 10_000,
            window_end_ms=(sequence + 1) * 10_000,
            envelope="{}",
            fills=fills,
        )
    services.ledger_record(
        tx=transfer("t1", "test", asset="USDT", amount=7, source="external:chain", target=in_transit(first))
    )
    holdings = exchange_holdings(account.pk)
    services.ledger_record(tx=transfer("t2", "test", asset="USDT", amount=5, source="external:chain", target=holdings))
    _, alone = listed()
    second = create(client, account).json()["id"]
    third = create(client, account).json()["id"]
    services.mm_order_transition(order_id=third, event=mm.Event.FUND, key="f3")

    orders, many = listed()
    assert many == alone  # three orders, reports and balances read in as many queries as one order alone
    by_id = {o["id"]: o for o in orders}
    assert by_id[first]["reports"] == {"count": 2, "fills": 7, "latest_sequence": 1}
    assert by_id[first]["ledger"] == {f"transit:o{first}:USDT": "7", f"{holdings}:USDT": "5"}
    assert by_id[second]["reports"] == {"count": 0, "fills": 0, "latest_sequence": None}
    assert by_id[second]["ledger"] == {f"{holdings}:USDT": "5"}  # the exchange account's, shared; no transit
    assert [t["event"] for t in by_id[third]["timeline"]] == ["fund"]
    for order_id in (first, second, third):  # a single order reads the same summary on its own
        assert client.get(f"/api/v1/execution/mm-orders/{order_id}").json() == by_id[order_id]
