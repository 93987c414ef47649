"""The creator wizard end to end with a browser wallet: an EIP-1193 provider injected into the page forwards to
Anvil's unlocked dev account, so the Sign-In with Ethereum signature, the approve and the create-and-fund are real.
The creator signs in, walks the five steps, signs, and lands on the new campaign's page once the indexer has
mirrored it; the metadata hash on chain is the one the review showed. A wallet that declines, and a wallet on
another chain that will not switch, leave nothing sent and say so plainly; bad input never reaches the wallet."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections
from playwright.sync_api import expect
from web3 import Web3

from campaigns.indexer import chain_index
from contracts import load_artifact
from devnet.chain import dev_accounts
from devnet.exchange.fixtures import run_exchange
from tests.browser.anvil_wallet import AnvilWallet
from tests.browser.page_checks import check_page
from tests.browser.test_wizard_steps import wizard_world

pytestmark = [pytest.mark.slow, pytest.mark.chain]
CREATOR = dev_accounts()[8]


@pytest.fixture(scope="module")
def exchange_sim():
    with run_exchange() as running:
        yield running


@pytest.fixture
def site(asgi_server: str, settings, anvil, w3: Web3, exchange_sim) -> dict[str, Any]:
    settings.SIWE_DOMAIN = asgi_server.removeprefix("http://")
    return {**wizard_world(settings, anvil, w3, exchange_sim, CREATOR.address), "url": asgi_server}


@pytest.fixture
def indexer(site: dict[str, Any], w3: Web3) -> Iterator[None]:
    """The indexer beat runs in the real system, here a thread: it mirrors what the factory creates."""
    stop = threading.Event()

    def run() -> None:
        try:
            while not stop.wait(0.5):
                chain_index(w3=w3, factory=site["factory"], confirmations=0)
        finally:
            connections.close_all()  # this thread's own connection, or the test database could not be dropped

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=10)


def sign_in(page: Any, site: dict[str, Any]) -> None:
    page.goto(site["url"] + "/campaigns/new")
    page.click("button[data-siwe-sign-in]")
    page.wait_for_url("**/campaigns/new/template")


def walk_to_review(page: Any, site: dict[str, Any], *, bad_first: bool = False) -> None:
    page.check('input[name=template][value="stable_depth"]')
    page.click("form[data-check-url] button[type=submit]")
    page.wait_for_url("**/campaigns/new/market")
    page.select_option("select[name=exchange]", "binance")
    if bad_first:  # the no-JS path too: submitted, answered with the field's error, nothing further
        page.fill("input[name=pair]", "DOGE/USDT")
        page.click("form[data-check-url] button[type=submit]")
        expect(page.locator('[data-field-errors="pair"]')).to_contain_text("binance does not list DOGE/USDT")
    page.fill("input[name=pair]", "MMT/USDT")
    page.click("form[data-check-url] button[type=submit]")
    page.wait_for_url("**/campaigns/new/budget")
    page.fill("input[name=token]", site["token"])
    page.fill("input[name=budget]", "20000000" if bad_first else "7000")
    if bad_first:
        page.click("form[data-check-url] button[type=submit]")
        expect(page.locator('[data-field-errors="budget"]')).to_contain_text("above your balance")
        page.fill("input[name=budget]", "7000")
    page.click("form[data-check-url] button[type=submit]")
    page.wait_for_url("**/campaigns/new/scoring")
    if bad_first:
        page.fill("input[name=max_spread_bps]", "900")
        page.click("form[data-check-url] button[type=submit]")
        expect(page.locator('[data-field-errors="max_spread_bps"]')).to_contain_text("from 10 to 100")
        page.fill("input[name=max_spread_bps]", "50")
    page.click("form[data-check-url] button[type=submit]")
    page.wait_for_url("**/campaigns/new/review")


def test_a_creator_signs_in_creates_and_funds_a_campaign_and_lands_on_its_page(
    site: dict[str, Any], indexer: None, w3: Web3, browser_page: Any
) -> None:
    page = browser_page
    wallet = AnvilWallet(rpc_url=site["rpc"], address=CREATOR.address)
    wallet.install(page)
    sign_in(page, site)
    assert "personal_sign" in wallet.calls  # the SIWE message, signed by Anvil with the account's key
    walk_to_review(page, site, bad_first=True)
    assert wallet.sent() == []  # every bad input stopped at its field: nothing reached the wallet
    shown_hash = page.locator("[data-metadata-hash]").inner_text()
    prepared = json.loads(page.locator("#campaign-prepared").text_content() or "")

    page.click("#campaign-sign-button")
    page.wait_for_url(f"**/campaigns/31337/{prepared['predicted_address'].lower()}/", timeout=90_000)
    assert wallet.sent() == ["eth_sendTransaction", "eth_sendTransaction"]  # approve, then create-and-fund
    escrow = w3.eth.contract(
        address=Web3.to_checksum_address(prepared["predicted_address"]), abi=load_artifact("Campaign").abi
    )
    assert "0x" + escrow.functions.params().call()[-1].hex() == shown_hash
    token = w3.eth.contract(address=Web3.to_checksum_address(site["token"]), abi=load_artifact("DevToken").abi)
    assert token.functions.balanceOf(escrow.address).call() == 7_000 * 10**6
    expect(page.locator("h1")).to_be_visible()
    check_page(page, "campaign-created")


def test_a_wallet_that_declines_leaves_nothing_sent(site: dict[str, Any], w3: Web3, browser_page: Any) -> None:
    page = browser_page
    wallet = AnvilWallet(rpc_url=site["rpc"], address=CREATOR.address)
    wallet.install(page)
    sign_in(page, site)
    walk_to_review(page, site)
    prepared = json.loads(page.locator("#campaign-prepared").text_content() or "")
    wallet.declines.add("eth_sendTransaction")
    page.click("#campaign-sign-button")
    expect(page.locator("#campaign-sign-error")).to_contain_text("Rejected: you declined the request")
    expect(page.locator("#campaign-sign-button")).to_be_enabled()
    assert w3.eth.get_code(Web3.to_checksum_address(prepared["predicted_address"])) == b""
    # Changing their mind, the creator signs after all: the same page creates the same campaign.
    wallet.declines.clear()
    page.click("#campaign-sign-button")
    expect(page.locator("#campaign-sign-progress")).to_contain_text(
        "create and fund the campaign: done", timeout=60_000
    )
    assert w3.eth.get_code(Web3.to_checksum_address(prepared["predicted_address"])) != b""


def test_a_wallet_on_another_chain_that_will_not_switch_sends_nothing(
    site: dict[str, Any], w3: Web3, browser_page: Any
) -> None:
    page = browser_page
    wallet = AnvilWallet(rpc_url=site["rpc"], address=CREATOR.address)
    wallet.install(page)
    sign_in(page, site)
    walk_to_review(page, site)
    wallet.wallet_chain_id, wallet.switch_refused = 1, True
    page.click("#campaign-sign-button")
    expect(page.locator("#campaign-sign-error")).to_contain_text("Wrong chain")
    assert "wallet_switchEthereumChain" in wallet.calls  # the switch was offered
    assert wallet.sent() == []
    # A wallet that does switch when asked goes on.
    wallet.switch_refused = False
    page.click("#campaign-sign-button")
    expect(page.locator("#campaign-sign-progress")).to_contain_text(
        "create and fund the campaign: done", timeout=60_000
    )
    expect(page.locator("#campaign-sign-progress")).to_contain_text("Waiting for this site to see the new campaign")
