"""Every public page as a new visitor finds it, at desktop and phone size: no serious or critical axe-core
violation, no sideways scrolling on a phone, a screenshot of each saved under var/screenshots/; and the pages that
only show data show it with JavaScript turned off."""

from __future__ import annotations

import pytest

from campaigns.models import Campaign
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.page_checks import check_page
from tests.campaigns.test_api import CampaignFactory
from tests.campaigns.test_landing import with_metadata
from tests.plugins.require import require

pytestmark = pytest.mark.slow


@pytest.fixture
def campaign(asgi_server: str) -> Campaign:
    return CampaignFactory.create(
        exchange="binance", pair="MMT/USDT", budget=7_000 * 10**6, metadata_hash=with_metadata("Stable depth")
    )


def pages(campaign: Campaign) -> dict[str, str]:
    return {
        "landing": "/",
        "executors": "/executors/",
        "proof": "/proof/",
        "campaign-proof": f"/proof/campaigns/{campaign.chain_id}/{campaign.address}",
        "stability": f"/campaigns/{campaign.chain_id}/{campaign.address}/stability",
        "me": "/me/",
        "audit": f"/campaigns/{campaign.chain_id}/{campaign.address}/audit",
        "campaign": f"/campaigns/{campaign.chain_id}/{campaign.address}/",
    }


def test_every_public_page_is_accessible_and_fits_a_phone(asgi_server: str, campaign: Campaign, browser_page) -> None:
    for name, path in pages(campaign).items():
        response = browser_page.goto(asgi_server + path)
        assert response is not None, path
        assert response.status == 200, path
        check_page(browser_page, name)


def test_the_data_pages_render_without_javascript(asgi_server: str, campaign: Campaign) -> None:
    if CHROMIUM is None:
        require("Chromium", CHROMIUM, "apt-get install chromium; .ci/run installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(java_script_enabled=False).new_page()
            page.goto(asgi_server + "/")
            assert page.locator(f'tr[data-campaign="31337:{campaign.address}"]').count() == 1
            assert "7,000 USDT" in page.locator(f'tr[data-campaign="31337:{campaign.address}"]').inner_text()
            page.goto(asgi_server + pages(campaign)["audit"])
            assert page.locator("h1").inner_text().startswith("Campaign audit")
            page.goto(asgi_server + pages(campaign)["campaign"])
            assert page.locator("h1").inner_text() == "Stable depth"
            assert page.locator("[data-budget-left]").count() == 1
            for path in ("/executors/", "/proof/", pages(campaign)["stability"]):
                page.goto(asgi_server + path)
                assert page.locator("h1").count() == 1
        finally:
            browser.close()
