"""The public campaign page (/campaigns/<chain_id>/<address>/): everything it shows is in the HTML (no JavaScript
needed); the budget left read from the chain in token units; the rules in plain words; the leaderboard ranked by
estimated reward; the depth chart's first paint with its band; nodes quoting now; an unreachable chain said, the
page still served."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from eth_typing import ChecksumAddress
from web3 import Web3

from attestation.models import ExecutorRecord
from campaigns import live
from campaigns.domain.templates import TEMPLATES
from campaigns.models import Campaign, CampaignMetadata
from devnet.chain import Anvil, deploy_dev_token, dev_accounts, mint
from execution.domain import mm_order as mm
from execution.models import ExchangeAccount, ExecutionReport, MMOrder
from payouts.campaign_page import NODE_WINDOW_SECONDS, nodes_quoting
from payouts.models import EpochClose, EpochPreview
from tests.campaigns.test_api import CampaignFactory
from tests.factories import user_with
from tests.payouts.page_tree import Node, parse

pytestmark = pytest.mark.django_db
TITLE = "Stable depth on MMT/USDT"
DOWN = "http://127.0.0.1:9"  # the discard port: nothing answers
FRAME = {
    "type": "depth.frame",
    "exchange": "binance",
    "symbol": "MMT/USDT",
    "seq": 41,
    "created_ms": 1_700_000_000_000,
    "exchange_ts_ms": None,
    "mid": "0.1000",
    "bids": [["0.0999", "5000"], ["0.0990", "1000"]],
    "asks": [["0.1002", "3000"], ["0.1008", "2000"]],
}


def campaign_with(token: str = "0x" + "ab" * 20, **fields: Any) -> Campaign:
    metadata = {
        "title": TITLE,
        "reward_token": {"address": token, "symbol": "USDT", "decimals": 6},
        "scoring": TEMPLATES["stable_depth"].scoring,
    }
    digest = "0x" + hashlib.sha256(repr(metadata).encode()).hexdigest()
    CampaignMetadata.objects.create(hash=digest, document=metadata)
    return CampaignFactory.create(
        token=token.lower(),
        exchange="binance",
        pair="MMT/USDT",
        metadata_hash=digest,
        budget=7_000 * 10**6,
        epoch_seconds=3_600,
        start=timezone.now() - timedelta(hours=2, minutes=30),
        end=timezone.now() + timedelta(hours=21, minutes=30),
        **fields,
    )


@pytest.fixture
def chain_down(settings) -> None:
    settings.CHAIN_RPC_URL = DOWN


@pytest.fixture
def frame(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setattr(
        live, "latest_frame", lambda exchange, symbol: FRAME if (exchange, symbol) == ("binance", "MMT/USDT") else None
    )
    return FRAME


def page_of(client: Client, campaign: Campaign) -> tuple[Node, str]:
    response = client.get(f"/campaigns/{campaign.chain_id}/{campaign.address}/")
    assert response.status_code == 200
    return parse(response.content.decode()), response.content.decode()


def test_an_unknown_campaign_is_404(client: Client, chain_down: None) -> None:
    assert client.get(f"/campaigns/31337/0x{'99' * 20}/").status_code == 404


def test_the_page_shows_everything_without_javascript(client: Client, chain_down: None, frame: dict[str, Any]) -> None:
    campaign = campaign_with()
    EpochClose.objects.create(
        campaign=campaign,
        epoch=0,
        epoch_start=campaign.start,
        epoch_end=campaign.start + timedelta(hours=1),
        state="recorded",
    )
    page, html = page_of(client, campaign)

    assert "Stable depth on MMT/USDT" in page.one("h1").text()
    assert "MMT/USDT on binance" in html
    assert page.one(data_status=True).text() == "active"
    epochs = page.one(data_epochs=True).text()
    assert "24 epochs of 1 hour" in epochs
    assert "2 ended, epoch 2 running now" in epochs
    assert "1 with results on chain" in epochs
    assert f'href="/campaigns/31337/{campaign.address}/audit"' in html
    assert f'href="/api/v1/campaigns/metadata/{campaign.metadata_hash}"' in html
    assert client.get(f"/api/v1/campaigns/metadata/{campaign.metadata_hash}").json()["title"] == TITLE
    rules = [li.text() for li in page.one(data_rules=True).find_all("li")]
    assert "orders within 0.50 % of the mid count" in rules[0]
    assert "at least 100 USDT" in rules[1]
    assert "earns a third of that side" in rules[2]
    # The depth chart's first paint, drawn on the server: both sides and the ±50 bps band around the mid.
    svg = page.one("svg", data_depth_chart=True)
    assert not svg.has_attr("hidden")
    assert svg["data-band-bps"] == "50"
    assert svg["data-ws-path"] == f"/ws/v1/campaigns/31337/{campaign.address}/depth"
    band = svg.one("rect", data_part="band")
    assert float(band["width"]) > 0
    assert svg.one("path", data_part="bids")["d"].startswith("M")
    assert svg.one("path", data_part="asks")["d"].endswith("Z")
    assert page.one(data_chart_note=True).has_attr("hidden")
    assert "±50 bps" in html
    assert page.one("script")["type"] == "module"  # the script only makes it live


def test_budget_left_is_read_from_the_chain_in_token_units(
    client: Client, settings, anvil: Anvil, w3: Web3, dev_token: ChecksumAddress, frame: dict[str, Any]
) -> None:
    settings.CHAIN_RPC_URL = anvil.url
    campaign = campaign_with(token=dev_token, address="0x" + "5e" * 20)
    mint(w3, dev_token, Web3.to_checksum_address(campaign.address), 6_543_210_000, sender=dev_accounts()[0])
    page, _ = page_of(client, campaign)
    cell = page.one(data_budget_left=True).text()
    assert "6,543.21 USDT" in cell
    assert "6543210000 base units" in cell
    assert "of 7,000 USDT" in cell
    # No code at this address: the proof is read, and its first check fails with what it found.
    assert page.one("li", data_check="clone")["data-passed"] == "false"


def test_amounts_are_shown_in_the_tokens_own_decimals_when_the_metadata_lies(
    client: Client, settings, anvil: Anvil, w3: Web3, frame: dict[str, Any]
) -> None:
    # The metadata says "USDT, 6 decimals" (its hash binds only the creator's word); the token has 18 and is MMT.
    settings.CHAIN_RPC_URL = anvil.url
    junk = deploy_dev_token(w3, sender=dev_accounts()[0], symbol="MMT", decimals=18)
    campaign = campaign_with(token=junk, address="0x" + "5f" * 20)
    mint(w3, junk, Web3.to_checksum_address(campaign.address), 7 * 10**18, sender=dev_accounts()[0])
    page, _ = page_of(client, campaign)
    cell = page.one(data_budget_left=True).text()
    assert "7 MMT" in cell  # not 7,000,000,000,000 USDT
    assert "of 0.000000007 MMT" in cell  # the budget of 7,000 × 10^6 base units, as the token counts them
    note = page.one(data_token_note=True).text()
    assert "the metadata says USDT with 6 decimals; the token itself says MMT with 18" in note


def test_an_unreachable_chain_is_said_and_the_page_still_served(
    client: Client, chain_down: None, frame: dict[str, Any]
) -> None:
    page, _ = page_of(client, campaign_with())
    assert "chain unreachable" in page.one(data_budget_left=True).text()
    assert "The budget was 7,000 USDT" in page.one(data_budget_left=True).text()
    assert "chain unreachable" in page.one(data_proof_unreachable=True).text()
    assert page.find("li", data_check="clone") is None
    assert "recordResults" in page.one("table", data_permissions=True).text()  # the permission table stays


def test_without_an_rpc_configured_the_page_says_so(client: Client, settings) -> None:
    settings.CHAIN_RPC_URL = ""
    page, _ = page_of(client, campaign_with())
    assert "no CHAIN_RPC_URL is configured" in page.one(data_budget_left=True).text()
    assert "no CHAIN_RPC_URL is configured" in page.one(data_proof_unreachable=True).text()


def test_the_leaderboard_ranks_by_estimated_reward_in_token_units(client: Client, chain_down: None) -> None:
    campaign = campaign_with()
    a, b, c = "0x" + "a1" * 20, "0x" + "b2" * 20, "0x" + "c3" * 20
    EpochPreview.objects.create(
        campaign=campaign,
        epoch=2,
        as_of_ms=1_700_000_000_000,
        bundle={
            "participants": [
                {"address": a, "depth": "10", "volume": "5", "share": "1/4", "amount": "25000000"},
                {"address": b, "depth": "30", "volume": "0", "share": "5/8", "amount": "62500000"},
                {"address": c, "depth": "5", "volume": "900", "share": "1/8", "amount": "12500000"},
            ]
        },
    )
    page, _ = page_of(client, campaign)
    rows = page.one("table", data_leaderboard=True).find_all("tr", data_participant=True)
    assert [row["data-participant"] for row in rows] == [b, a, c]
    assert [row.find_all("td")[0].text() for row in rows] == ["1", "2", "3"]
    assert rows[0].one(data_amount="estimate").text() == "62.5 USDT"
    assert "62.5 %" in rows[0].text()
    # Maker volume is scored in hundredths of the quote unit and shown in the quote unit.
    assert [row.one(data_volume=True).text() for row in rows] == ["0.00 USDT", "0.05 USDT", "9.00 USDT"]
    assert "epoch 2" in page.one("h2", id="leaderboard-h").text()


def test_without_a_frame_the_page_says_no_book_yet(client: Client, chain_down: None) -> None:
    page, _ = page_of(client, campaign_with())
    assert page.one("svg", data_depth_chart=True).has_attr("hidden")
    note = page.one(data_chart_note=True)
    assert not note.has_attr("hidden")
    assert "No book yet" in note.text()
    assert "No estimate yet" in page.one(data_leaderboard_empty=True).text()


def test_nodes_are_attested_executors_with_a_recent_report_on_the_market(monkeypatch: pytest.MonkeyPatch) -> None:
    campaign = campaign_with()
    owner = user_with()

    def reporting(
        key: str,
        *,
        state: str = ExecutorRecord.State.VERIFIED,
        symbol: str = "MMT/USDT",
        order_state: str = mm.State.RUNNING.value,
    ) -> None:
        ExecutorRecord.objects.create(url=f"http://{key[:6]}", state=state, signing_key=key)
        account = ExchangeAccount.objects.create(
            owner=owner, exchange="binance", label=key[:4], role="trading", api_key_hint="k"
        )
        order = MMOrder.objects.create(
            owner=owner,
            exchange_account=account,
            symbol=symbol,
            funding_asset="USDT",
            funding_amount=1,
            state=order_state,
            job_id=key[:8],
        )
        ExecutionReport.objects.create(
            order=order,
            job_id=order.job_id,
            sequence=0,
            digest=key,
            signing_key=key,
            window_start_ms=0,
            window_end_ms=1,
            envelope="{}",
        )

    reporting("a1" * 32)
    reporting("a2" * 32)
    reporting("b1" * 32, state=ExecutorRecord.State.FAILED)  # lost its attestation
    reporting("b2" * 32, symbol="ETH/USDT")  # another market
    reporting("b3" * 32, order_state=mm.State.STOPPING.value)  # not quoting any more
    earlier = timezone.now() - timedelta(seconds=NODE_WINDOW_SECONDS + 5)
    with monkeypatch.context() as m:
        m.setattr(timezone, "now", lambda: earlier)  # the report's received_at (auto_now_add) is that long ago
        reporting("b4" * 32)  # silent for longer than the window
    assert nodes_quoting(campaign, now=timezone.now()) == 2
