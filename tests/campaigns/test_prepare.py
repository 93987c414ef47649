"""Creation helpers: metadata and unsigned transactions for the creator's wallet; nothing sent on bad input."""

from __future__ import annotations

import hashlib

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient
from web3 import Web3

from campaigns.indexer import chain_index
from campaigns.models import CampaignMetadata
from devnet.chain import DevAccount, deploy_dev_token, dev_accounts, mint, send, token
from devnet.protocol import campaign, deploy_factory, now
from mrmarket.roles import Role
from tests.factories import user_with
from wire.canonical import canonical_bytes

pytestmark = [pytest.mark.chain, pytest.mark.django_db]
CREATOR, ORACLE, POOR = dev_accounts()[5], dev_accounts()[6], dev_accounts()[7]


@pytest.fixture(scope="module")
def exchange_sim():
    from devnet.exchange.fixtures import run_exchange

    with run_exchange() as running:
        yield running


@pytest.fixture
def deployed(settings, anvil, w3: Web3, exchange_sim) -> dict:
    deployer = dev_accounts()[0]
    tok = deploy_dev_token(w3, sender=deployer)
    mint(w3, tok, CREATOR.address, 10**13, sender=deployer)
    settings.CHAIN_RPC_URL = anvil.url
    settings.EXCHANGE_API_URLS = {"binance": exchange_sim.base_url}
    cache.delete("exchange-symbols:binance")
    settings.CAMPAIGN_FACTORY_ADDRESS = deploy_factory(w3, sender=deployer)
    return {"token": tok}


def body(deployed: dict, w3: Web3, **overrides: object) -> dict:
    start = now(w3) + 3_600
    data = {
        "creator": CREATOR.address,
        "template": "stable_depth",
        "reward_token": {"address": deployed["token"], "symbol": "USDT", "decimals": 6},
        "exchange": "binance",
        "pair": "MMT/USDT",
        "start": start,
        "end": start + 7 * 86_400,
        "budget": "7000000000",
        "recording_oracle": ORACLE.address,
        "reputation_oracle": ORACLE.address,
        "scoring": {"max_spread_bps": 40},
    }
    data.update(overrides)
    return data


def creator_client() -> APIClient:
    client = APIClient()
    client.force_authenticate(user_with(Role.CREATOR))
    return client


def sign_and_send(w3: Web3, tx: dict, sender: DevAccount) -> None:
    send(w3, {"to": tx["to"], "data": tx["data"], "value": int(tx["value"])}, sender)


def test_the_wallet_flow_creates_and_funds_the_predicted_campaign(settings, deployed: dict, w3: Web3) -> None:
    client = creator_client()
    response = client.post("/api/v1/campaigns/prepare", body(deployed, w3), format="json")
    assert response.status_code == 200, response.json()
    prepared = response.json()
    assert [t["purpose"] for t in prepared["transactions"]] == [
        "approve the campaign to pull its budget",
        "create and fund the campaign",
    ]
    assert prepared["metadata"]["scoring"]["max_spread_bps"] == 40
    check = {
        "creator": CREATOR.address,
        "predicted_address": prepared["predicted_address"],
        "token": deployed["token"],
        "budget": "7000000000",
    }
    refused = client.post("/api/v1/campaigns/funding-check", check, format="json")
    assert refused.status_code == 409
    assert refused.json()["code"] == "budget_not_approved"
    sign_and_send(w3, prepared["transactions"][0], CREATOR)
    assert client.post("/api/v1/campaigns/funding-check", check, format="json").json() == {"ready": True}
    sign_and_send(w3, prepared["transactions"][1], CREATOR)
    address = prepared["predicted_address"]
    assert token(w3, deployed["token"]).functions.balanceOf(address).call() == 7_000_000_000
    onchain_hash = campaign(w3, address).functions.params().call()[11]
    assert "0x" + onchain_hash.hex() == prepared["metadata_hash"]
    served = APIClient().get(f"/api/v1/campaigns/metadata/{prepared['metadata_hash']}")
    assert served.status_code == 200
    assert "0x" + hashlib.sha256(canonical_bytes(served.json())).hexdigest() == prepared["metadata_hash"]
    assert prepared["metadata_uri"].endswith(prepared["metadata_hash"])
    # The indexer mirrors it, with its market from the verified metadata, and discovery finds it.
    chain_index(w3=w3, factory=settings.CAMPAIGN_FACTORY_ADDRESS, confirmations=0)
    found = APIClient().get("/api/v1/campaigns/?exchange=binance&pair=MMT/USDT").json()
    assert [c["address"] for c in found] == [address.lower()]
    assert found[0]["funded"] is True
    assert APIClient().get("/api/v1/campaigns/?exchange=okx").json() == []


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"end": 1_800_000_000, "start": 1_900_000_000}, "end"),
        ({"pair": "MRM-USDT"}, "pair"),
        ({"scoring": {"max_spread_bps": 900}}, "scoring.max_spread_bps"),
        ({"template": "moon"}, "template"),
    ],
)
def test_bad_metadata_is_refused_and_nothing_is_stored_or_sent(deployed: dict, w3: Web3, overrides, field) -> None:
    nonce = w3.eth.get_transaction_count(CREATOR.address)
    response = creator_client().post("/api/v1/campaigns/prepare", body(deployed, w3, **overrides), format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_metadata"
    assert field in response.json()["extra"]["fields"]
    assert not CampaignMetadata.objects.exists()
    assert w3.eth.get_transaction_count(CREATOR.address) == nonce


def test_a_pair_the_exchange_does_not_list_is_refused(deployed: dict, w3: Web3) -> None:
    nonce = w3.eth.get_transaction_count(CREATOR.address)
    response = creator_client().post("/api/v1/campaigns/prepare", body(deployed, w3, pair="DOGE/USDT"), format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "pair_not_listed"
    assert response.json()["extra"]["listed"] == ["BTC/USDT", "ETH/USDT", "MMT/USDT"]
    assert not CampaignMetadata.objects.exists()
    assert w3.eth.get_transaction_count(CREATOR.address) == nonce


def test_an_unreachable_exchange_is_a_clear_error(settings, deployed: dict, w3: Web3) -> None:
    from devnet.ports import free_port

    settings.EXCHANGE_API_URLS = {"binance": f"http://127.0.0.1:{free_port()}"}
    response = creator_client().post("/api/v1/campaigns/prepare", body(deployed, w3), format="json")
    assert response.status_code == 503
    assert response.json()["code"] == "exchange_unavailable"


def test_a_budget_beyond_the_balance_is_refused(deployed: dict, w3: Web3) -> None:
    response = creator_client().post(
        "/api/v1/campaigns/prepare", body(deployed, w3, creator=POOR.address), format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "insufficient_balance"
    assert response.json()["extra"] == {"balance": "0", "budget": "7000000000"}
    assert not CampaignMetadata.objects.exists()


def test_without_a_factory_the_helper_says_so(settings, deployed: dict, w3: Web3) -> None:
    settings.CAMPAIGN_FACTORY_ADDRESS = ""
    response = creator_client().post("/api/v1/campaigns/prepare", body(deployed, w3), format="json")
    assert response.status_code == 503
    assert response.json()["code"] == "factory_not_configured"
