"""The campaign audit page in a real browser: it loads, the address form shows an address's leaves, and the Claim
button sends the escrow's claim call through a wallet (a fake EIP-1193 provider injected before the page loads,
found by EIP-6963 discovery or as window.ethereum): the right chain, to and data, the hash shown; a rejection, an
unknown chain and no wallet at all are each a plain message; "Use my wallet's address" fills the form."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import expect

from payouts.selectors import payout_leaf_proof
from tests.payouts.audit_fixtures import ADDRESS, AUDITED, CHAIN, Scene, oracle_settings, scene

pytestmark = pytest.mark.slow

SENDER = "0x" + "12" * 20  # anyone may send a claim: the amount goes to the leaf's account
TX_HASH = "0x" + "ab" * 32


def fake_wallet(*, account: str = SENDER, chain: int = CHAIN, send: str = "ok", announce: bool = True) -> str:
    """An EIP-1193 provider that records every request in window.__walletCalls; `send` is "ok" (returns TX_HASH),
    "reject" (code 4001) or "unknown_chain" (wallet_switchEthereumChain fails with 4902)."""
    install = (
        """window.addEventListener("eip6963:requestProvider", () => window.dispatchEvent(new CustomEvent(
            "eip6963:announceProvider",
            {detail: Object.freeze({info: {uuid: "test-wallet", name: "Test wallet", icon: "data:,", rdns: "test"},
                                    provider})})));"""
        if announce
        else "window.ethereum = provider;"
    )
    return f"""(() => {{
      const calls = [];
      window.__walletCalls = calls;
      let chain = {json.dumps(hex(chain))};
      const send = {json.dumps(send)};
      const provider = {{
        request: async ({{method, params}}) => {{
          calls.push({{method, params: params === undefined ? null : JSON.parse(JSON.stringify(params))}});
          switch (method) {{
            case "eth_requestAccounts": return [{json.dumps(account)}];
            case "eth_chainId": return chain;
            case "wallet_switchEthereumChain":
              if (send === "unknown_chain") throw Object.assign(new Error("Unrecognized chain"), {{code: 4902}});
              chain = params[0].chainId;
              return null;
            case "eth_sendTransaction":
              if (send === "reject") throw Object.assign(new Error("User rejected the request."), {{code: 4001}});
              return {json.dumps(TX_HASH)};
            default: throw Object.assign(new Error("unsupported " + method), {{code: 4200}});
          }}
        }},
      }};
      {install}
    }})();"""


# Rows are made before the browser starts: inside Playwright's event loop Django would open a connection bound to
# that async context, which nothing closes.
@pytest.fixture
def audit_scene(asgi_server: str, settings, tmp_path: Path) -> Scene:
    oracle_settings(settings, tmp_path / "oracle")
    return scene()


@pytest.fixture
def claim_data(audit_scene: Scene) -> str:
    proof = payout_leaf_proof(close=audit_scene.closes[2], account=AUDITED)
    assert proof is not None
    assert proof.status == "claimable"
    return proof.claim_data


def page_url(asgi_server: str) -> str:
    return f"{asgi_server}/campaigns/{CHAIN}/{ADDRESS}/audit"


def claim_button(page):
    return page.locator('article[data-epoch="2"] button[data-claim]')


def claim_status(page):
    return page.locator('article[data-epoch="2"] [data-claim-status]')


def test_the_page_loads_and_the_address_form_shows_the_leaves(
    asgi_server: str, audit_scene: Scene, browser_page
) -> None:
    page = browser_page
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(page_url(asgi_server))
    assert page.locator("h1").inner_text() == "Campaign audit: MMT depth"
    assert page.locator("article.epoch").count() == 5
    assert page.locator("[data-leaf]").count() == 0
    assert page.locator("button[data-connect]").is_visible()  # claim.js ran (the CSP let it)
    page.fill("#id_address", AUDITED)
    page.click("#audit-address button[type=submit]")
    page.wait_for_url(f"**/audit?address={AUDITED}")
    assert page.locator("[data-leaf]").count() == 5
    assert claim_button(page).is_visible()
    assert page.locator("button[data-claim]").count() == 1
    assert page.locator('article[data-epoch="3"] [data-leaf-status="distributed"]').count() == 1
    page.fill("#id_address", "0xnot-an-address")
    page.click("#audit-address button[type=submit]")
    page.locator("#address-error").wait_for()
    assert "Not an address" in page.locator("#address-error").inner_text()
    assert page.locator("[data-leaf]").count() == 0
    assert blocked == []


@pytest.mark.parametrize("announce", [True, False], ids=["eip6963", "window.ethereum"])
def test_claim_switches_the_chain_sends_the_claim_call_and_shows_the_hash(
    asgi_server: str, audit_scene: Scene, claim_data: str, browser_page, announce: bool
) -> None:
    page = browser_page
    page.add_init_script(fake_wallet(chain=1, announce=announce))
    page.goto(f"{page_url(asgi_server)}?address={AUDITED}")
    claim_button(page).click()
    shown = claim_status(page).locator("[data-tx-hash]")
    shown.wait_for()
    assert shown.inner_text() == TX_HASH
    assert claim_status(page).inner_text().startswith("Sent: ")
    calls = page.evaluate("window.__walletCalls")
    methods = [c["method"] for c in calls]
    assert methods == [
        "eth_requestAccounts",
        "eth_chainId",
        "wallet_switchEthereumChain",
        "eth_chainId",
        "eth_sendTransaction",
    ]
    assert calls[2]["params"] == [{"chainId": hex(CHAIN)}]
    assert calls[-1]["params"] == [{"from": SENDER, "to": ADDRESS, "data": claim_data}]
    assert claim_button(page).is_disabled()  # sent once: a second click would only revert


def test_the_hash_links_to_the_explorer_when_one_is_configured(
    asgi_server: str, audit_scene: Scene, browser_page, settings
) -> None:
    settings.CHAIN_EXPLORER_URLS = {str(CHAIN): "https://explorer.example"}
    page = browser_page
    page.add_init_script(fake_wallet())
    page.goto(f"{page_url(asgi_server)}?address={AUDITED}")
    claim_button(page).click()
    link = claim_status(page).locator("a[data-tx-hash]")
    link.wait_for()
    assert link.get_attribute("href") == f"https://explorer.example/tx/{TX_HASH}"


def test_a_rejected_claim_says_so_plainly(asgi_server: str, audit_scene: Scene, browser_page) -> None:
    page = browser_page
    page.add_init_script(fake_wallet(send="reject"))
    page.goto(f"{page_url(asgi_server)}?address={AUDITED}")
    claim_button(page).click()
    expect(claim_status(page)).to_contain_text("Rejected")
    assert claim_status(page).inner_text() == "Rejected: you declined the request in your wallet. Nothing was sent."
    assert claim_button(page).is_enabled()  # may try again


def test_an_unknown_chain_and_no_wallet_are_plain_messages(asgi_server: str, audit_scene: Scene, browser_page) -> None:
    page = browser_page
    page.goto(f"{page_url(asgi_server)}?address={AUDITED}")
    claim_button(page).click()
    expect(claim_status(page)).to_contain_text("No wallet")
    assert "No wallet found" in claim_status(page).inner_text()

    page.add_init_script(fake_wallet(chain=1, send="unknown_chain"))
    page.reload()
    claim_button(page).click()
    expect(claim_status(page)).to_contain_text("Wrong chain")
    assert f"does not know chain {CHAIN}" in claim_status(page).inner_text()
    assert "eth_sendTransaction" not in [c["method"] for c in page.evaluate("window.__walletCalls")]


def test_use_my_wallets_address_fills_the_form(asgi_server: str, audit_scene: Scene, browser_page) -> None:
    page = browser_page
    page.add_init_script(fake_wallet(account=AUDITED))
    page.goto(page_url(asgi_server))
    page.click("button[data-connect]")
    page.wait_for_url(f"**/audit?address={AUDITED}")
    assert page.locator("#id_address").input_value() == AUDITED
    assert claim_button(page).is_visible()
