"""Public campaign discovery and detail, and the status each campaign shows."""

from __future__ import annotations

from datetime import timedelta

import factory as fb
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from campaigns.models import Campaign, CampaignMetadata
from campaigns.selectors import CampaignStatus, campaign_status
from mrmarket.roles import Role
from tests.factories import user_with

pytestmark = pytest.mark.django_db
TOKEN = "0x" + "ab" * 20


class CampaignFactory(fb.django.DjangoModelFactory[Campaign]):
    class Meta:
        model = Campaign

    chain_id = 31337
    address = fb.Sequence(lambda n: f"0x{n:040x}")
    factory = "0x" + "fa" * 20
    creator = "0x" + "c0" * 20
    token = TOKEN
    recording_oracle = "0x" + "01" * 20
    reputation_oracle = "0x" + "02" * 20
    fee_recipient = "0x" + "03" * 20
    start = fb.LazyFunction(lambda: timezone.now() - timedelta(days=1))
    end = fb.LazyFunction(lambda: timezone.now() + timedelta(days=1))
    epoch_seconds = 86_400
    dispute_window_seconds = 172_800
    budget = 10**24 + 7
    fee_bps = 0
    metadata_hash = "0x" + "11" * 32
    created_block = fb.Sequence(lambda n: n + 1)
    created_tx = "0x" + "77" * 32
    funded = True


def test_list_and_detail_are_public_with_exact_amounts() -> None:
    c = CampaignFactory.create()
    client = APIClient()
    listing = client.get("/api/v1/campaigns/")
    assert listing.status_code == 200
    assert listing.json()[0]["budget"] == str(10**24 + 7)
    detail = client.get(f"/api/v1/campaigns/31337/{c.address.upper().replace('0X', '0x')}")
    assert detail.status_code == 200
    assert detail.json()["status"] == "active"


def test_filters_and_their_errors() -> None:
    CampaignFactory.create()
    CampaignFactory.create(chain_id=8453)
    CampaignFactory.create(funded=False)
    client = APIClient()
    assert len(client.get("/api/v1/campaigns/?chain_id=8453").json()) == 1
    assert len(client.get("/api/v1/campaigns/?status=unfunded").json()) == 1
    assert len(client.get(f"/api/v1/campaigns/?token={TOKEN}&chain_id=31337").json()) == 2
    bad = client.get("/api/v1/campaigns/?status=moon&chain_id=0")
    assert bad.status_code == 400
    assert set(bad.json()["extra"]["fields"]) == {"status", "chain_id"}


def test_unknown_campaign_is_a_typed_404() -> None:
    response = APIClient().get("/api/v1/campaigns/1/0x" + "00" * 20)
    assert response.status_code == 404
    assert response.json()["code"] == "campaign_not_found"


@pytest.mark.parametrize(
    ("funded", "start_days", "end_days", "expected"),
    [
        (False, -1, 1, CampaignStatus.UNFUNDED),
        (True, 1, 2, CampaignStatus.UPCOMING),
        (True, -1, 1, CampaignStatus.ACTIVE),
        (True, -3, -1, CampaignStatus.SETTLING),
        (True, -9, -3, CampaignStatus.CLOSED),
    ],
)
def test_status(funded: bool, start_days: int, end_days: int, expected: CampaignStatus) -> None:
    now = timezone.now()
    c = CampaignFactory.build(funded=funded, start=now + timedelta(days=start_days), end=now + timedelta(days=end_days))
    assert campaign_status(c, now=now) == expected


def test_amounts_come_with_their_token_units_when_the_metadata_says_the_decimals() -> None:
    digest = "0x" + "22" * 32
    CampaignMetadata.objects.create(
        hash=digest, document={"reward_token": {"address": TOKEN, "symbol": "USDT", "decimals": 6}}
    )
    named = CampaignFactory.create(metadata_hash=digest, budget=7_000_500_000, paid_out=2_500_000)
    unnamed = CampaignFactory.create()
    client = APIClient()
    listing = {c["address"]: c for c in client.get("/api/v1/campaigns/").json()}
    assert listing[named.address]["budget"] == "7000500000"
    assert listing[named.address]["budget_display"] == "7,000.5 USDT"
    assert listing[named.address]["paid_out_display"] == "2.5 USDT"
    assert listing[named.address]["refunded_display"] == "0 USDT"
    assert listing[unnamed.address]["budget_display"] is None  # decimals unknown: the base units are all there is
    detail = client.get(f"/api/v1/campaigns/31337/{named.address}").json()
    assert detail["budget_display"] == "7,000.5 USDT"


@pytest.mark.parametrize("rpc_url", ["", "http://127.0.0.1:9"])  # none configured; a node that refuses
def test_without_an_answering_chain_prepare_and_funding_check_are_a_typed_503(settings, rpc_url: str) -> None:
    """Found by tests/fuzz/test_api_openapi.py: both answered 500 (ConfigError, ConnectionError escaped the view);
    the wizard's pages already said `chain_unavailable`."""
    settings.CHAIN_RPC_URL = rpc_url
    client = APIClient()
    client.force_authenticate(user_with(Role.CREATOR))
    address = "0x" + "11" * 20
    prepare = {
        "creator": address,
        "template": "stable_depth",
        "reward_token": {"address": address, "symbol": "USDT", "decimals": 6},
        "exchange": "binance",
        "pair": "MMT/USDT",
        "start": 1_800_000_000,
        "end": 1_800_000_000 + 7 * 86_400,
        "budget": "7000000000",
        "recording_oracle": address,
        "reputation_oracle": address,
    }
    funding = {"creator": address, "predicted_address": address, "token": address, "budget": "1"}
    for path, data in (("/api/v1/campaigns/prepare", prepare), ("/api/v1/campaigns/funding-check", funding)):
        response = client.post(path, data, format="json")
        assert response.status_code == 503, (path, response.content)
        assert response.json()["code"] == "chain_unavailable"
    assert not CampaignMetadata.objects.exists()
