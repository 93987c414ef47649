"""An MM order serves a campaign for a reward address: set at creation (both or neither), checked through the
core's campaign directory (execution never imports campaigns), and never changed afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.contrib import admin
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from campaigns.directory import DIRECTORY
from campaigns.models import Campaign
from devnet.exchange.fixtures import RunningExchange, run_exchange
from devnet.exchange.keys import Permission
from execution import accounts, orders
from execution.models import ExchangeAccount, LedgerTransaction, MMOrder
from mrmarket import campaign_directory
from mrmarket.campaign_directory import CampaignDirectoryNotConfigured
from mrmarket.exchanges.credentials import ExchangeCredentials
from mrmarket.roles import Role
from tests.factories import user_with

pytestmark = pytest.mark.django_db
UNIT = 10**6
CAMPAIGN = "0x" + "c4" * 20
REWARD = "0xAbCdEf" + "0" * 34


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


def campaign(**fields: object) -> Campaign:
    now = timezone.now()
    values: dict[str, object] = {
        "chain_id": 31337,
        "address": CAMPAIGN,
        "factory": "0x" + "fa" * 20,
        "creator": "0x" + "c0" * 20,
        "token": "0x" + "ab" * 20,
        "recording_oracle": "0x" + "01" * 20,
        "reputation_oracle": "0x" + "02" * 20,
        "fee_recipient": "0x" + "03" * 20,
        "start": now - timedelta(days=1),
        "end": now + timedelta(days=1),
        "epoch_seconds": 86_400,
        "dispute_window_seconds": 172_800,
        "budget": 10**24,
        "fee_bps": 0,
        "metadata_hash": "0x" + "11" * 32,
        "exchange": "binance",
        "pair": "MMT/USDT",
        "created_block": 1,
        "created_tx": "0x" + "77" * 32,
        "funded": True,
        **fields,
    }
    return Campaign.objects.create(**values)


def create(client: APIClient, account: ExchangeAccount, **overrides: object):
    body = {
        "exchange_account_id": account.pk,
        "symbol": "MMT/USDT",
        "funding_asset": "USDT",
        "funding_amount": str(500 * UNIT),
        "campaign_chain_id": 31337,
        "campaign_address": CAMPAIGN.upper().replace("0X", "0x"),
        "reward_address": REWARD,
        **overrides,
    }
    return client.post("/api/v1/execution/mm-orders", body, format="json")


def test_an_order_for_a_known_campaign_stores_it_and_the_reward_address_lower_case(operator) -> None:
    client, account = operator
    campaign()
    created = create(client, account)
    assert created.status_code == 201, created.json()
    order = MMOrder.objects.get(pk=created.json()["id"])
    assert (order.campaign_chain_id, order.campaign_address, order.reward_address) == (31337, CAMPAIGN, REWARD.lower())
    body = created.json()
    assert (body["campaign_chain_id"], body["campaign_address"], body["reward_address"]) == (
        31337,
        CAMPAIGN,
        REWARD.lower(),
    )


def test_an_order_may_serve_no_campaign(operator) -> None:
    client, account = operator
    created = create(client, account, campaign_chain_id=None, campaign_address="", reward_address="")
    assert created.status_code == 201, created.json()
    order = MMOrder.objects.get(pk=created.json()["id"])
    assert (order.campaign_chain_id, order.campaign_address, order.reward_address) == (None, "", "")


@pytest.mark.parametrize(
    ("stored", "overrides", "code"),
    [
        ({}, {"campaign_address": "0x" + "99" * 20}, "campaign_unknown"),
        ({}, {"campaign_chain_id": 8453}, "campaign_unknown"),
        ({"end": timezone.now() - timedelta(seconds=1)}, {}, "campaign_not_active"),
        ({"pair": "BTC/USDT"}, {}, "campaign_market_mismatch"),
        ({"exchange": "okx"}, {}, "campaign_market_mismatch"),
        ({"exchange": "", "pair": ""}, {}, "campaign_market_mismatch"),  # its metadata is not held
        ({}, {"reward_address": "0x1234"}, "reward_address_invalid"),
        ({}, {"reward_address": "0x" + "g" * 40}, "reward_address_invalid"),
        ({}, {"reward_address": "ab" * 21}, "reward_address_invalid"),
        ({}, {"reward_address": ""}, "reward_address_missing"),
        ({}, {"campaign_address": "0x12"}, "campaign_address_invalid"),
        ({}, {"campaign_chain_id": None}, "campaign_binding_invalid"),
        ({}, {"campaign_address": ""}, "campaign_binding_invalid"),
        ({}, {"campaign_chain_id": None, "campaign_address": ""}, "campaign_binding_invalid"),  # reward alone
    ],
)
def test_a_bad_campaign_binding_is_refused_and_nothing_is_stored(
    operator, stored: dict, overrides: dict, code: str
) -> None:
    client, account = operator
    campaign(**stored)
    response = create(client, account, **overrides)
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == code
    assert not MMOrder.objects.exists()
    assert not LedgerTransaction.objects.exists()


def test_the_service_refuses_with_the_typed_error_and_stores_nothing(operator) -> None:
    _, account = operator
    campaign(end=timezone.now() - timedelta(days=2))
    with pytest.raises(campaign_directory.CampaignNotActive):
        orders.mm_order_create(
            owner_id=account.owner_id,
            exchange_account_id=account.pk,
            symbol="MMT/USDT",
            funding_asset="USDT",
            funding_amount=500 * UNIT,
            campaign_chain_id=31337,
            campaign_address=CAMPAIGN,
            reward_address=REWARD,
        )
    assert not MMOrder.objects.exists()


def test_without_a_registered_directory_a_campaign_is_refused_never_waved_through(operator) -> None:
    client, account = operator
    campaign()
    assert campaign_directory.registered() is DIRECTORY  # campaigns registered it in ready()
    campaign_directory.unregister()
    try:
        with pytest.raises(CampaignDirectoryNotConfigured):
            orders.mm_order_create(
                owner_id=account.owner_id,
                exchange_account_id=account.pk,
                symbol="MMT/USDT",
                funding_asset="USDT",
                funding_amount=500 * UNIT,
                campaign_chain_id=31337,
                campaign_address=CAMPAIGN,
                reward_address=REWARD,
            )
        response = create(client, account)
        assert response.status_code == 503
        assert response.json()["code"] == "campaign_directory_not_configured"
    finally:
        campaign_directory.register(DIRECTORY)
    assert not MMOrder.objects.exists()


def test_a_second_directory_cannot_replace_the_registered_one() -> None:
    class Other:
        def campaign_for_order(self, *, chain_id: int, address: str, exchange: str, symbol: str) -> None:
            return None

    with pytest.raises(ValueError, match="already registered"):
        campaign_directory.register(Other())
    campaign_directory.register(DIRECTORY)  # the same one again: ready() may run twice
    assert campaign_directory.registered() is DIRECTORY


def test_no_api_call_changes_the_binding(operator) -> None:
    client, account = operator
    campaign()
    order_id = create(client, account).json()["id"]
    path = f"/api/v1/execution/mm-orders/{order_id}"
    other = {"campaign_chain_id": 1, "campaign_address": "0x" + "99" * 20, "reward_address": "0x" + "98" * 20}
    for method in (client.put, client.patch):
        assert method(path, other, format="json").status_code == 405
    for action in ("fund", "stop"):
        client.post(f"{path}/{action}", other, format="json")
    order = MMOrder.objects.get(pk=order_id)
    assert (order.campaign_chain_id, order.campaign_address, order.reward_address) == (31337, CAMPAIGN, REWARD.lower())


def test_the_binding_is_read_only_in_the_admin() -> None:
    model_admin = admin.site._registry[MMOrder]
    assert {"campaign_chain_id", "campaign_address", "reward_address"} <= set(model_admin.readonly_fields)


def test_the_database_refuses_half_a_binding(operator) -> None:
    _, account = operator
    base = {
        "owner_id": account.owner_id,
        "exchange_account": account,
        "symbol": "MMT/USDT",
        "funding_asset": "USDT",
        "funding_amount": 500 * UNIT,
    }
    for half in (
        {"campaign_chain_id": 31337, "campaign_address": CAMPAIGN},
        {"reward_address": REWARD.lower()},
        {"campaign_chain_id": 31337, "reward_address": REWARD.lower()},
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            MMOrder.objects.create(**base, **half)
    assert not MMOrder.objects.exists()
