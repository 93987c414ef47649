"""Sign-In with Ethereum on the site's pages: the site builds the message for the wallet's address, a real
signature (eth_account) signs the session in, and every refusal is typed and leaves the session as it was — a
message from another browser's session, a replayed message, a bad signature, a bad address; sign-out ends it.
The signed-in address's own page lists the campaigns it created and joined, with its leaves."""

from __future__ import annotations

import itertools
import os
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client
from eth_account import Account
from eth_account.messages import encode_defunct

from devnet.chain import dev_accounts
from mrmarket import siwe_views
from payouts.models import Participant
from tests.campaigns.test_api import CampaignFactory

pytestmark = pytest.mark.django_db
CHAIN = 31337
WALLET = dev_accounts()[5]


_addresses = itertools.count(1)


def fresh_client() -> Client:
    """A browser of its own client address: the sign-in rate limit is per address, and it outlives a test."""
    n = next(_addresses) + os.getpid() % 200 * 1000
    return Client(REMOTE_ADDR=f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}")


@pytest.fixture(autouse=True)
def site(settings, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.SIWE_DOMAIN = "localhost"
    monkeypatch.setattr(siwe_views, "served_chain_id", lambda: CHAIN)


def message_for(client: Client, address: str) -> dict[str, Any]:
    response = client.post("/auth/siwe/message", {"address": address}, content_type="application/json")
    assert response.status_code == 200, response.content
    return dict(response.json())


def sign(message: str, key: str = WALLET.private_key) -> str:
    return "0x" + Account.from_key(key).sign_message(encode_defunct(text=message)).signature.hex().removeprefix("0x")


def sign_in(client: Client, message: str, signature: str) -> Any:
    return client.post(
        "/auth/siwe/sign-in", {"message": message, "signature": signature}, content_type="application/json"
    )


def test_a_wallet_signs_the_sites_message_and_the_session_is_signed_in() -> None:
    client = fresh_client()
    issued = message_for(client, WALLET.address.lower())
    message = issued["message"]
    assert message.startswith(f"localhost wants you to sign in with your Ethereum account:\n{WALLET.address}\n")
    assert "URI: http://localhost/" in message
    assert f"Chain ID: {CHAIN}" in message
    before = client.session.session_key

    response = sign_in(client, message, sign(message))

    assert response.status_code == 200
    assert response.json() == {"address": WALLET.address.lower()}
    assert client.session[siwe_views.SESSION_ADDRESS] == WALLET.address.lower()
    assert client.session.session_key != before  # cycled at sign-in
    page = client.get("/me/").content.decode()
    assert f'data-signed-in="{WALLET.address.lower()}"' in page

    # Replaying the same signed message: its nonce is used, nothing changes.
    again = sign_in(client, message, sign(message))
    assert again.status_code == 400
    assert again.json()["code"] == "siwe_nonce_unknown"

    assert client.post("/auth/siwe/sign-out").status_code == 200
    assert siwe_views.SESSION_ADDRESS not in client.session
    assert "data-signed-in" not in client.get("/me/").content.decode()


def test_a_message_issued_to_another_browser_signs_nobody_in() -> None:
    theirs, ours = fresh_client(), fresh_client()
    message = message_for(theirs, WALLET.address)["message"]
    message_for(ours, WALLET.address)  # this browser has a nonce of its own

    response = sign_in(ours, message, sign(message))  # a signed message that leaked from the other browser

    assert response.status_code == 400
    assert response.json()["code"] == "siwe_nonce_unknown"
    assert siwe_views.SESSION_ADDRESS not in ours.session
    assert sign_in(theirs, message, sign(message)).status_code == 200  # still good where it was issued


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"address": "0x1234"}, "siwe_malformed"),
        ({}, "siwe_malformed"),
    ],
)
def test_a_bad_address_is_refused_and_issues_no_nonce(body: dict[str, Any], code: str) -> None:
    client = fresh_client()
    response = client.post("/auth/siwe/message", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert siwe_views.SESSION_NONCE not in client.session


def test_a_signature_by_another_key_and_a_body_that_is_not_json_are_refused() -> None:
    client = fresh_client()
    message = message_for(client, WALLET.address)["message"]
    bad = sign_in(client, message, sign(message, key=dev_accounts()[6].private_key))
    assert bad.status_code == 400
    assert bad.json()["code"] == "siwe_bad_signature"
    assert siwe_views.SESSION_ADDRESS not in client.session
    broken = client.post("/auth/siwe/sign-in", "{not json", content_type="application/json")
    assert (broken.status_code, broken.json()["code"]) == (400, "siwe_malformed")
    # The nonce was not burnt by the refusals: the right signature still signs in.
    assert sign_in(client, message, sign(message)).status_code == 200


def test_the_own_page_lists_what_the_address_created_and_joined(django_user_model) -> None:
    created = CampaignFactory.create(creator=WALLET.address.lower(), pair="MMT/USDT")
    joined = CampaignFactory.create(pair="ETH/USDT")
    owner = django_user_model.objects.create_user("op")
    Participant.objects.create(
        campaign=joined,
        reward_address=WALLET.address.lower(),
        owner=owner,
        joined_at=joined.start,
        siwe_message="m",
        siwe_signature="s",
    )
    CampaignFactory.create(pair="BTC/USDT")  # someone else's
    client = fresh_client()
    message = message_for(client, WALLET.address)["message"]
    assert sign_in(client, message, sign(message)).status_code == 200

    page = client.get("/me/").content.decode()

    assert f'data-own="31337:{created.address}"' in page
    assert f'data-own="31337:{joined.address}"' in page
    assert page.count("data-own=") == 2
    assert f"/campaigns/31337/{joined.address}/audit?address={WALLET.address.lower()}" in page


def test_the_own_page_without_a_sign_in_says_how_to_sign_in() -> None:
    page = fresh_client().get("/me/").content.decode()
    assert "data-siwe-sign-in" in page
    assert "?address=0x" in page  # the way without JavaScript


def test_sign_in_requests_are_rate_limited_per_client_address(redis_clean: None) -> None:
    limit = int(django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["siwe_sign_in"].split("/")[0])
    client = fresh_client()
    body = {"address": WALLET.address}
    for _ in range(limit):
        assert client.post("/auth/siwe/message", body, content_type="application/json").status_code == 200
    limited = client.post("/auth/siwe/sign-in", {}, content_type="application/json")
    assert limited.status_code == 429
    assert limited.json()["code"] == "throttled"
    assert int(limited["Retry-After"]) > 0
    assert siwe_views.SESSION_ADDRESS not in client.session


@pytest.mark.parametrize("body", [b"[" * 100_000, b"\xff\xfe{}"])
def test_a_deeply_nested_or_undecodable_body_is_malformed_not_a_crash(body: bytes) -> None:
    """Found by tests/fuzz: `[` × 100 000 recursed json.loads past the C stack (py_ecc lifts the recursion limit),
    killing the process; bytes that are not UTF-8 are refused the same way."""
    response = fresh_client().post("/auth/siwe/message", body, content_type="application/json")
    assert (response.status_code, response.json()["code"]) == (400, "siwe_malformed")
