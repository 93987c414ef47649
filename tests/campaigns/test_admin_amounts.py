"""Amounts for people in the admin: a campaign's budget, paid out and refunded, and an epoch payout's totals, are
shown in the reward token's units with its symbol, the base units beside them; base units alone when the metadata
does not give the token's decimals."""

from __future__ import annotations

import pytest
from django.test import Client

from payouts.models import EpochClose, EpochPayout
from tests.campaigns.test_api import CampaignFactory
from tests.campaigns.test_landing import with_metadata
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(UserFactory.create(is_staff=True, is_superuser=True))
    return client


def test_the_campaign_list_and_page_show_token_units(staff: Client) -> None:
    campaign = CampaignFactory.create(budget=7_000_500_000, paid_out=2_500_000_000, metadata_hash=with_metadata("A"))
    listing = staff.get("/admin/campaigns/campaign/").content.decode()
    assert "7,000.5 USDT (7000500000 base units)" in listing
    assert "2,500 USDT (2500000000 base units)" in listing
    page = staff.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    assert "0 USDT (0 base units)" in page  # refunded


def test_without_decimals_only_base_units_are_shown(staff: Client) -> None:
    CampaignFactory.create(budget=123, metadata_hash=with_metadata("B", None))
    listing = staff.get("/admin/campaigns/campaign/").content.decode()
    assert "123 base units" in listing
    assert "USDT" not in listing


def test_an_epoch_payout_shows_token_units(staff: Client) -> None:
    campaign = CampaignFactory.create(budget=10**10, metadata_hash=with_metadata("C"))
    close = EpochClose.objects.create(campaign=campaign, epoch=0, epoch_start=campaign.start, epoch_end=campaign.end)
    EpochPayout.objects.create(close=close, total=1_250_000, distributed_amount=250_000)
    listing = staff.get("/admin/payouts/epochpayout/").content.decode()
    assert "1.25 USDT (1250000 base units)" in listing
    assert "0.25 USDT (250000 base units)" in listing
