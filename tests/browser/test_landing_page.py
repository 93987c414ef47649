"""The landing page in a real browser, as a new visitor finds it: the campaigns listed, a filter applied through
the form, a bad filter answered with the field's error, and the way from a campaign to its audit page."""

from __future__ import annotations

import pytest

from campaigns.models import Campaign
from tests.campaigns.test_api import CampaignFactory

pytestmark = pytest.mark.slow


# Rows are made before the browser starts (Django's connection would otherwise bind to Playwright's event loop).
@pytest.fixture
def campaigns(asgi_server: str) -> tuple[Campaign, Campaign]:
    return (
        CampaignFactory.create(exchange="binance", pair="MMT/USDT"),
        CampaignFactory.create(exchange="okx", pair="ETH/USDT", chain_id=8453),
    )


def test_a_visitor_filters_the_campaigns_and_reaches_an_audit_page(
    asgi_server: str, campaigns: tuple[Campaign, Campaign], browser_page
) -> None:
    page = browser_page
    mmt, eth = campaigns
    page.goto(asgi_server + "/")
    assert page.locator("tr[data-campaign]").count() == 2
    page.fill("input[name=chain]", "8453")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**/?chain=8453**")
    assert page.locator("tr[data-campaign]").count() == 1
    assert page.locator(f'tr[data-campaign="8453:{eth.address}"]').count() == 1

    page.fill("input[name=chain]", "")
    page.fill("input[name=pair]", "MMTUSDT")
    page.click("form.filters button[type=submit]")
    assert "a pair as BASE/QUOTE" in page.locator('[data-error="pair"]').inner_text()
    assert page.locator("tr[data-campaign]").count() == 0

    page.goto(asgi_server + "/")
    page.click(f'tr[data-campaign="31337:{mmt.address}"] a:text("audit page")')
    page.wait_for_url(f"**/campaigns/31337/{mmt.address}/audit")
    assert page.locator("h1").inner_text().startswith("Campaign audit")
