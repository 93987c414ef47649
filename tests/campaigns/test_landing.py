"""The landing page at `/`: every campaign of every configured chain (one discovery selector), with filters that
work without JavaScript, budgets left in token units, and links to each campaign's audit page; a bad filter names
the field and what it allows."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from campaigns.models import Campaign, CampaignEvent, CampaignMetadata
from campaigns.selectors import campaign_cards
from tests.campaigns.test_api import TOKEN, CampaignFactory
from tests.payouts.page_tree import parse as parse_html

pytestmark = pytest.mark.django_db
USDT = {"address": TOKEN, "symbol": "USDT", "decimals": 6}


def with_metadata(title: str, token: dict[str, object] | None = USDT) -> str:
    digest = "0x" + hashlib.sha256(title.encode()).hexdigest()
    CampaignMetadata.objects.create(hash=digest, document={"title": title, "reward_token": token})
    return digest


def event(campaign: Campaign, kind: str, **data: object) -> None:
    CampaignEvent.objects.create(
        campaign=campaign,
        kind=kind,
        block_number=10,
        block_hash="0x" + "00" * 32,
        tx_hash="0x" + "aa" * 32,
        log_index=CampaignEvent.objects.count(),
        data={k: str(v) for k, v in data.items()},
    )


def test_every_chains_campaigns_with_their_budget_left_in_token_units(client: Client) -> None:
    live = CampaignFactory.create(
        budget=7_000 * 10**6, exchange="binance", pair="MMT/USDT", metadata_hash=with_metadata("Stable depth")
    )
    live.paid_out, live.refunded = 2 * 10**6 + 500_000, 0
    live.save()
    event(live, CampaignEvent.Kind.PAYOUT_PUBLISHED, fee=1_000_000, total=1)
    other = CampaignFactory.create(
        chain_id=8453, pair="ETH/USDT", exchange="binance", metadata_hash=with_metadata("x", None)
    )

    response = client.get("/")

    assert response.status_code == 200
    html = response.content.decode()
    row = f'data-campaign="31337:{live.address}"'
    assert row in html
    assert f'data-campaign="8453:{other.address}"' in html
    assert "6,996.5 USDT" in html  # 7,000 − 1 fee − 2.5 paid
    assert "of 7,000 USDT" in html
    assert f"{10**24 + 7:,} base units" in html  # no decimals known: base units, said so
    assert f'href="/campaigns/31337/{live.address}/audit"' in html
    assert f'href="/campaigns/31337/{live.address}/"' in html  # the campaign page, from its title and its row
    assert "Stable depth" in html


def test_filters_narrow_the_list_and_work_without_javascript(client: Client) -> None:
    a = CampaignFactory.create(exchange="binance", pair="MMT/USDT")
    b = CampaignFactory.create(exchange="okx", pair="ETH/USDT", chain_id=8453)
    ended = CampaignFactory.create(
        exchange="binance",
        pair="MMT/USDT",
        start=timezone.now() - timedelta(days=10),
        end=timezone.now() - timedelta(days=9),
        dispute_window_seconds=60,
    )
    spent = CampaignFactory.create(exchange="binance", pair="MMT/USDT", budget=100, paid_out=100)

    def listed(query: str) -> set[str]:
        html = client.get("/" + query).content.decode()
        return {c.address for c in (a, b, ended, spent) if f':{c.address}"' in html}

    assert listed("") == {a.address, b.address, ended.address, spent.address}
    assert listed("?chain=8453") == {b.address}
    assert listed("?exchange=binance&pair=mmt/usdt") == {a.address, ended.address, spent.address}
    assert listed("?status=closed") == {ended.address}
    assert listed("?budget_left=on&exchange=binance") == {a.address, ended.address}


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("?chain=x", "chain", "a chain id is a whole number"),
        ("?pair=MMTUSDT", "pair", "a pair as BASE/QUOTE (MMT/USDT)"),
        ("?exchange=Binance!", "exchange", "an exchange id: lower-case letters, digits and _ (binance)"),
        ("?status=running", "status", "Select a valid choice"),
    ],
)
def test_a_bad_filter_names_the_field_and_what_it_allows(client: Client, query: str, field: str, message: str) -> None:
    CampaignFactory.create()
    response = client.get("/" + query)
    assert response.status_code == 400
    page = parse_html(response.content.decode())
    error = page.find(data_error=field)
    assert error is not None
    assert message in error.text()
    assert "data-campaign=" not in response.content.decode()  # nothing listed under a filter that was not applied


def test_the_selector_is_one_over_all_chains() -> None:
    CampaignFactory.create(chain_id=1)
    CampaignFactory.create(chain_id=8453)
    assert sorted(card.campaign.chain_id for card in campaign_cards()) == [1, 8453]
