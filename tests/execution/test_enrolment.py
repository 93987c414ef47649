"""Enrolling exchange keys: the exchange (the devnet simulator, through ccxt) is asked what each key can do;
a key that does not fit its role is refused and nothing is stored; a key whose rights change is revoked."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection
from rest_framework.test import APIClient

from devnet.exchange.fixtures import RunningExchange, run_exchange
from devnet.exchange.keys import Permission
from execution import accounts
from execution.models import ExchangeAccount
from mrmarket.roles import Role
from tests.factories import user_with

pytestmark = pytest.mark.django_db
TRADE, WITHDRAW = Permission.TRADE, Permission.WITHDRAW


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningExchange]:
    with run_exchange() as running:
        yield running


@pytest.fixture
def operator(settings, sim: RunningExchange) -> APIClient:
    settings.EXCHANGE_API_URLS = {"binance": sim.base_url}
    client = APIClient()
    client.force_authenticate(user_with(Role.OPERATOR))
    return client


def key(sim: RunningExchange, *permissions: Permission):
    return sim.sim.create_account(permissions=frozenset(permissions))


def enrol(client: APIClient, api_key, role: str, *, label: str = "main", secret: str | None = None):
    body = {
        "exchange": "binance",
        "label": label,
        "role": role,
        "api_key": api_key.key,
        "secret": secret or api_key.secret,
    }
    return client.post("/api/v1/execution/exchange-accounts", body, format="json")


def test_a_trading_key_without_withdrawals_is_enrolled(operator: APIClient, sim: RunningExchange) -> None:
    k = key(sim, TRADE)
    response = enrol(operator, k, "trading")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["permissions"] == {"read": True, "trade": True, "withdraw": False}
    assert body["api_key_hint"] == k.key[-4:]
    assert k.secret not in response.content.decode()
    assert k.key not in response.content.decode()
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials_ciphertext FROM execution_exchangeaccount")
        (ciphertext,) = cursor.fetchone()
    assert k.secret.encode() not in bytes(ciphertext)
    listed = operator.get("/api/v1/execution/exchange-accounts").json()
    assert [a["label"] for a in listed] == ["main"]


@pytest.mark.parametrize(
    ("permissions", "role", "problem"),
    [
        ((TRADE, WITHDRAW), "trading", "the key has the withdraw permission, which a trading key must not have"),
        ((), "trading", "the key lacks the trade permission, which a trading key needs"),
        ((TRADE,), "read_only", "the key has the trade permission, which a read_only key must not have"),
        ((TRADE,), "treasury", "the key lacks the withdraw permission, which a treasury key needs"),
    ],
)
def test_keys_that_do_not_fit_their_role_are_refused_and_nothing_is_stored(
    operator: APIClient, sim: RunningExchange, permissions, role: str, problem: str
) -> None:
    response = enrol(operator, key(sim, *permissions), role)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "key_permissions_mismatch"
    assert problem in body["extra"]["problems"]
    assert not ExchangeAccount.objects.exists()


def test_a_read_only_and_a_treasury_key_fit_their_roles(operator: APIClient, sim: RunningExchange) -> None:
    assert enrol(operator, key(sim), "read_only", label="watch").status_code == 201
    assert enrol(operator, key(sim, WITHDRAW), "treasury", label="back-to-custody").status_code == 201


def test_a_wrong_secret_is_a_clear_error(operator: APIClient, sim: RunningExchange) -> None:
    response = enrol(operator, key(sim, TRADE), "trading", secret="0" * 64)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_exchange_key"
    assert not ExchangeAccount.objects.exists()


def test_an_exchange_whose_key_rights_cannot_be_read_is_refused(operator: APIClient) -> None:
    body = {"exchange": "kraken", "label": "k", "role": "trading", "api_key": "k", "secret": "s"}
    response = operator.post("/api/v1/execution/exchange-accounts", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "permissions_unverifiable"


def test_the_same_label_twice_is_a_conflict(operator: APIClient, sim: RunningExchange) -> None:
    assert enrol(operator, key(sim, TRADE), "trading").status_code == 201
    second = enrol(operator, key(sim, TRADE), "trading")
    assert second.status_code == 409
    assert second.json()["code"] == "exchange_account_exists"


def test_a_key_that_gains_withdrawals_is_revoked_on_the_next_probe(operator: APIClient, sim: RunningExchange) -> None:
    k = key(sim, TRADE)
    account_id = enrol(operator, k, "trading").json()["id"]
    assert accounts.exchange_account_reprobe(account_id=account_id).status == "active"
    sim.sim.keys.update_permissions(k.key, frozenset({TRADE, WITHDRAW}))
    account = accounts.exchange_account_reprobe(account_id=account_id)
    assert account.status == "revoked"
    assert account.permissions == {"read": True, "trade": True, "withdraw": True}
    assert bytes(account.credentials_ciphertext) == b""


def test_a_key_deleted_at_the_exchange_is_revoked(operator: APIClient, sim: RunningExchange) -> None:
    k = key(sim, TRADE)
    account_id = enrol(operator, k, "trading").json()["id"]
    sim.sim.keys.delete(k.key)
    assert accounts.exchange_account_reprobe(account_id=account_id).status == "revoked"


def test_operators_revoke_only_their_own_accounts(operator: APIClient, sim: RunningExchange) -> None:
    account_id = enrol(operator, key(sim, TRADE), "trading").json()["id"]
    other = APIClient()
    other.force_authenticate(user_with(Role.OPERATOR))
    assert other.post(f"/api/v1/execution/exchange-accounts/{account_id}/revoke").status_code == 404
    revoked = operator.post(f"/api/v1/execution/exchange-accounts/{account_id}/revoke")
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked"


def test_the_web_side_enrols_with_the_public_key_alone_and_the_worker_reprobes_the_row(
    operator: APIClient, sim: RunningExchange, settings
) -> None:
    from execution import tasks

    worker_keys = settings.CREDENTIALS_MASTER_KEYS
    settings.CREDENTIALS_MASTER_KEYS = {}  # the web process holds the public half only (ADR 0015)
    k = key(sim, TRADE)
    response = enrol(operator, k, "trading")
    assert response.status_code == 201, response.json()
    settings.CREDENTIALS_MASTER_KEYS = worker_keys  # the worker
    sim.sim.keys.update_permissions(k.key, frozenset({TRADE, WITHDRAW}))
    tasks.reprobe_exchange_key(response.json()["id"])
    assert ExchangeAccount.objects.get(pk=response.json()["id"]).status == "revoked"
