"""Sign-In with Ethereum in a real browser: on /me/, "Sign in with your wallet" asks the wallet (a fake EIP-1193
provider injected before the page loads, whose personal_sign signs with a dev key in the test process) for its
account, has it sign the site's message, and the page then shows the signed-in address; sign-out ends it; a
wallet that declines leaves the visitor signed out with a plain message."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from playwright.sync_api import expect

from devnet.chain import dev_accounts
from mrmarket import siwe_views

pytestmark = pytest.mark.slow
WALLET = dev_accounts()[5]


@pytest.fixture
def site(asgi_server: str, settings, monkeypatch: pytest.MonkeyPatch) -> str:
    settings.SIWE_DOMAIN = asgi_server.removeprefix("http://")
    monkeypatch.setattr(siwe_views, "served_chain_id", lambda: 31337)
    return asgi_server


def provider_script(*, decline: bool = False) -> str:
    sign = (
        "throw Object.assign(new Error('User rejected the request.'), {code: 4001});"
        if decline
        else "return await window.pySign(params[0]);"
    )
    return f"""(() => {{
      window.ethereum = {{
        request: async ({{method, params}}) => {{
          if (method === "eth_requestAccounts") return [{WALLET.address.lower()!r}];
          if (method === "personal_sign") {{ {sign} }}
          throw Object.assign(new Error("unsupported " + method), {{code: 4200}});
        }},
      }};
    }})();"""


def personal_sign(message_hex: str) -> str:
    data = bytes.fromhex(message_hex.removeprefix("0x"))
    signed = Account.from_key(WALLET.private_key).sign_message(encode_defunct(primitive=data))
    return "0x" + signed.signature.hex().removeprefix("0x")


def test_a_visitor_signs_in_with_a_wallet_and_out_again(site: str, browser_page) -> None:
    page = browser_page
    page.expose_function("pySign", personal_sign)
    page.add_init_script(provider_script())
    page.goto(site + "/me/")
    page.click("button[data-siwe-sign-in]")
    page.locator(f'[data-signed-in="{WALLET.address.lower()}"]').wait_for()
    page.click("button[data-siwe-sign-out]")
    page.locator("button[data-siwe-sign-in]").wait_for()
    assert page.locator("[data-signed-in]").count() == 0


def test_a_wallet_that_declines_leaves_the_visitor_signed_out(site: str, browser_page) -> None:
    page = browser_page
    page.add_init_script(provider_script(decline=True))
    page.goto(site + "/me/")
    page.click("button[data-siwe-sign-in]")
    expect(page.locator("[data-siwe-status]")).to_contain_text("Rejected: you declined the request")
    assert page.locator("[data-signed-in]").count() == 0
