"""The creator wizard's five steps in a real browser with JavaScript on, on Anvil and the devnet exchange: a pair the
exchange does not list is answered beside the field by the live check before anything is submitted, the market's
minimums and the scoring example update as the creator types, and the review shows the metadata, its hash and
the signing section. Each step's page passes the accessibility and phone checks (screenshots under var/)."""

from __future__ import annotations

import json

import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.backends.db import SessionStore
from django.core.cache import cache
from playwright.sync_api import expect
from web3 import Web3

from campaigns.domain.metadata import metadata_hash
from devnet.chain import deploy_dev_token, dev_accounts, mint
from devnet.protocol import deploy_factory
from mrmarket import siwe_views
from tests.browser.page_checks import check_page

pytestmark = [pytest.mark.slow, pytest.mark.chain]
CREATOR, ORACLE = dev_accounts()[5], dev_accounts()[6]


@pytest.fixture(scope="module")
def exchange_sim():
    from devnet.exchange.fixtures import run_exchange

    with run_exchange() as running:
        yield running


def wizard_world(settings, anvil, w3: Web3, exchange_sim, creator: str) -> dict:
    """A chain with the factory and a 6-decimal token the creator holds, the exchange simulator, and the oracles'
    addresses the wizard names; the web process holds no oracle key, as in production."""
    deployer = dev_accounts()[0]
    tok = deploy_dev_token(w3, sender=deployer)
    mint(w3, tok, creator, 10**13, sender=deployer)
    settings.CHAIN_RPC_URL = anvil.url
    settings.EXCHANGE_API_URLS = {"binance": exchange_sim.base_url}
    settings.RECORDING_ORACLE_PRIVATE_KEY = ""
    settings.REPUTATION_ORACLE_PRIVATE_KEY = ""
    settings.RECORDING_ORACLE_ADDRESS = ORACLE.address
    settings.REPUTATION_ORACLE_ADDRESS = ORACLE.address
    settings.CAMPAIGN_FACTORY_ADDRESS = deploy_factory(w3, sender=deployer)
    cache.delete("exchange-symbols:binance")
    return {"token": tok, "factory": settings.CAMPAIGN_FACTORY_ADDRESS, "rpc": anvil.url}


# Everything touching the database happens before the browser starts (Django's connection would otherwise bind to
# Playwright's event loop).
@pytest.fixture
def site(asgi_server: str, settings, anvil, w3: Web3, exchange_sim) -> dict:
    world = wizard_world(settings, anvil, w3, exchange_sim, CREATOR.address)
    session = SessionStore()
    session[siwe_views.SESSION_ADDRESS] = CREATOR.address.lower()  # as the SIWE sign-in leaves it
    session.create()
    return {**world, "url": asgi_server, "session": session.session_key}


def test_a_creator_walks_the_five_steps_with_live_validation(site: dict, browser_page) -> None:
    page = browser_page
    page.context.add_cookies(
        [{"name": django_settings.SESSION_COOKIE_NAME, "value": site["session"], "url": site["url"]}]
    )
    page.goto(site["url"] + "/campaigns/new")
    page.wait_for_url("**/campaigns/new/template")
    expect(page.locator('[data-buys="stable_depth"]')).to_contain_text("tokens a day")
    check_page(page, "wizard-template")
    page.check('input[name=template][value="stable_depth"]')
    page.click("form[data-check-url] button[type=submit]")

    page.wait_for_url("**/campaigns/new/market")
    page.select_option("select[name=exchange]", "binance")
    page.fill("input[name=pair]", "DOGE/USDT")
    page.locator("input[name=pair]").dispatch_event("change")
    expect(page.locator('[data-field-errors="pair"]')).to_contain_text("binance does not list DOGE/USDT")
    assert page.url.endswith("/campaigns/new/market")  # nothing was submitted
    assert page.locator("input[name=pair]").get_attribute("aria-invalid") == "true"
    page.fill("input[name=pair]", "MMT/USDT")
    page.locator("input[name=pair]").dispatch_event("change")
    expect(page.locator('[data-fact="market.symbol"]')).to_have_text("MMT/USDT")
    expect(page.locator('[data-field-errors="pair"] li')).to_have_count(0)
    check_page(page, "wizard-market")
    page.click("form[data-check-url] button[type=submit]")

    page.wait_for_url("**/campaigns/new/budget")
    page.fill("input[name=token]", site["token"])
    page.locator("input[name=token]").dispatch_event("change")
    expect(page.locator('[data-fact="token.balance"]')).to_have_text("10,000,000 USDT")
    page.fill("input[name=budget]", "20000000")
    page.locator("input[name=budget]").dispatch_event("change")
    expect(page.locator('[data-field-errors="budget"]')).to_contain_text("above your balance")
    page.fill("input[name=budget]", "7000")
    page.locator("input[name=budget]").dispatch_event("change")
    expect(page.locator('[data-fact="per_epoch"]')).to_have_text("1,000 USDT")
    check_page(page, "wizard-budget")
    page.click("form[data-check-url] button[type=submit]")

    page.wait_for_url("**/campaigns/new/scoring")
    page.fill("input[name=max_spread_bps]", "60")
    page.locator("input[name=max_spread_bps]").dispatch_event("change")
    expect(page.locator('[data-fact="examples.max_spread_bps"]')).to_contain_text("scores 25,000 points a sample")
    page.fill("input[name=max_spread_bps]", "900")
    page.locator("input[name=max_spread_bps]").dispatch_event("change")
    expect(page.locator('[data-field-errors="max_spread_bps"]')).to_contain_text("from 10 to 100 for Stable depth")
    page.fill("input[name=max_spread_bps]", "60")
    check_page(page, "wizard-scoring")
    page.click("form[data-check-url] button[type=submit]")

    page.wait_for_url("**/campaigns/new/review")
    shown = json.loads(page.locator("[data-metadata-json]").inner_text())
    digest = page.locator("[data-metadata-hash]").inner_text()
    assert "0x" + metadata_hash(shown).hex() == digest
    prepared = json.loads(page.locator("#campaign-prepared").text_content() or "")
    assert prepared["metadata_hash"] == digest
    assert [t["kind"] for t in prepared["transactions"]] == ["approve", "create"]
    assert page.locator("#campaign-sign-button").count() == 1
    check_page(page, "wizard-review")
