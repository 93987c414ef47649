"""Sign-In with Ethereum: real EIP-4361 messages (siwe's own builder) signed with eth_account, verified by
mrmarket.siwe on our web3/eth-account versions; every refusal is typed and leaves the nonce unused."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import close_old_connections, connection
from eth_account import Account
from eth_account.messages import encode_defunct
from siwe import SiweMessage

from devnet.chain import deploy_contract, dev_accounts
from mrmarket import siwe
from mrmarket.models import SiweNonce
from tests.factories import user_with
from tests.plugins.require import require_postgresql

pytestmark = pytest.mark.django_db
CHAIN = 31337
CAMPAIGN = "0x" + "ab" * 20
RESOURCE = siwe.campaign_resource(CHAIN, CAMPAIGN)


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build(account, nonce: str, **overrides: object) -> str:
    now = datetime.now(UTC)
    fields: dict[str, object] = {
        "domain": "localhost",
        "address": account.address,
        "statement": "Join the campaign as a market maker.",
        "uri": "http://localhost/participants",
        "version": "1",
        "chain_id": CHAIN,
        "nonce": nonce,
        "issued_at": iso(now),
        "expiration_time": iso(now + timedelta(minutes=5)),
        "resources": [RESOURCE],
    }
    fields.update(overrides)
    return SiweMessage(**{k: v for k, v in fields.items() if v is not None}).prepare_message()


def sign(account, message: str) -> str:
    return "0x" + account.sign_message(encode_defunct(text=message)).signature.hex()


@pytest.fixture(autouse=True)
def _domain(settings) -> None:
    settings.SIWE_DOMAIN = "localhost"


def used(nonce: str) -> bool:
    return SiweNonce.objects.get(value=nonce).used_at is not None


def test_a_signed_message_verifies_once() -> None:
    account = Account.create()
    nonce = siwe.siwe_nonce_issue().value
    message = build(account, nonce)
    verified = siwe.siwe_verify(message=message, signature=sign(account, message), chain_id=CHAIN, resource=RESOURCE)
    assert verified.address == account.address.lower()
    assert verified.resources == (RESOURCE,)
    assert not verified.contract_wallet
    assert used(nonce)
    with pytest.raises(siwe.SiweNonceUsed):
        siwe.siwe_verify(message=message, signature=sign(account, message), chain_id=CHAIN, resource=RESOURCE)


def test_the_claimed_address_is_read_for_rate_limits() -> None:
    account = Account.create()
    assert siwe.siwe_claimed_address(build(account, "abcdefgh1234")) == account.address.lower()
    assert siwe.siwe_claimed_address("hello") is None


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"domain": "evil.example", "uri": "https://evil.example/"}, siwe.SiweWrongDomain),
        ({"uri": "http://evil.example/"}, siwe.SiweWrongDomain),
        ({"chain_id": 1}, siwe.SiweWrongChain),
        ({"resources": [siwe.campaign_resource(CHAIN, "0x" + "cd" * 20)]}, siwe.SiweWrongCampaign),
        ({"resources": [siwe.campaign_resource(1, CAMPAIGN)]}, siwe.SiweWrongCampaign),
        ({"expiration_time": None}, siwe.SiweMalformed),
        # Times as offsets from when the test runs, not from when it was collected (a long suite runs it later).
        ({"expiration_time": timedelta(seconds=-1)}, siwe.SiweExpired),
        ({"not_before": timedelta(minutes=1)}, siwe.SiweNotYetValid),
        ({"issued_at": timedelta(minutes=3)}, siwe.SiweNotYetValid),
    ],
)
def test_each_refusal_is_typed_and_leaves_the_nonce_unused(overrides, error) -> None:
    now = datetime.now(UTC)
    overrides = {k: iso(now + v) if isinstance(v, timedelta) else v for k, v in overrides.items()}
    account = Account.create()
    nonce = siwe.siwe_nonce_issue().value
    message = build(account, nonce, **overrides)
    with pytest.raises(error):
        siwe.siwe_verify(message=message, signature=sign(account, message), chain_id=CHAIN, resource=RESOURCE)
    assert not used(nonce)


def test_https_is_required_off_localhost(settings) -> None:
    settings.SIWE_DOMAIN = "mrmarket.example"
    account = Account.create()
    nonce = siwe.siwe_nonce_issue().value
    message = build(account, nonce, domain="mrmarket.example", uri="http://mrmarket.example/")
    with pytest.raises(siwe.SiweWrongDomain):
        siwe.siwe_verify(message=message, signature=sign(account, message), chain_id=CHAIN, resource=RESOURCE)
    good = build(account, nonce, domain="mrmarket.example", uri="https://mrmarket.example/")
    assert siwe.siwe_verify(message=good, signature=sign(account, good), chain_id=CHAIN, resource=RESOURCE)


def test_a_signature_by_another_key_or_of_another_text_is_refused() -> None:
    account, other = Account.create(), Account.create()
    nonce = siwe.siwe_nonce_issue().value
    message = build(account, nonce)
    for signature in (sign(other, message), sign(account, message + " "), "0x" + "11" * 65, "0xzz"):
        with pytest.raises(siwe.SiweBadSignature):
            siwe.siwe_verify(message=message, signature=signature, chain_id=CHAIN, resource=RESOURCE)
    assert not used(nonce)


def test_garbage_is_malformed() -> None:
    with pytest.raises(siwe.SiweMalformed):
        siwe.siwe_verify(message="sign me", signature="0x00", chain_id=CHAIN)


def test_an_address_without_its_checksum_is_malformed() -> None:
    # EIP-4361 wants the EIP-55 form; a lower-case address is refused before anything else, the nonce untouched.
    account = Account.create()
    nonce = siwe.siwe_nonce_issue().value
    message = build(account, nonce).replace(account.address, account.address.lower())
    with pytest.raises(siwe.SiweMalformed):
        siwe.siwe_verify(message=message, signature=sign(account, message), chain_id=CHAIN, resource=RESOURCE)
    assert not used(nonce)


def test_a_nonce_we_did_not_issue_or_that_expired_is_refused() -> None:
    account = Account.create()
    message = build(account, "notissued1234")
    with pytest.raises(siwe.SiweNonceUnknown):
        siwe.siwe_verify(message=message, signature=sign(account, message), chain_id=CHAIN, resource=RESOURCE)
    nonce = siwe.siwe_nonce_issue(now=datetime.now(UTC) - timedelta(hours=1)).value
    message = build(account, nonce)
    with pytest.raises(siwe.SiweExpired):
        siwe.siwe_verify(message=message, signature=sign(account, message), chain_id=CHAIN, resource=RESOURCE)
    assert not used(nonce)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_uses_of_one_nonce_one_wins() -> None:
    require_postgresql("SQLite serializes writers itself; the race needs PostgreSQL's row locks")
    account = Account.create()
    nonce = siwe.siwe_nonce_issue().value
    message = build(account, nonce)
    signature = sign(account, message)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt() -> None:
        try:
            barrier.wait()
            siwe.siwe_verify(message=message, signature=signature, chain_id=CHAIN, resource=RESOURCE)
            outcomes.append("ok")
        except siwe.SiweNonceUsed:
            outcomes.append("used")
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["ok", "used"]


@pytest.mark.chain
def test_a_contract_wallet_signature_is_checked_on_chain(settings, anvil, w3) -> None:
    settings.CHAIN_RPC_URL = anvil.url
    owner, stranger = Account.create(), Account.create()
    wallet = deploy_contract(w3, "TestERC1271Wallet", owner.address, sender=dev_accounts()[0])
    chain_id = w3.eth.chain_id
    resource = siwe.campaign_resource(chain_id, CAMPAIGN)
    nonce = siwe.siwe_nonce_issue().value
    message = build(owner, nonce, address=wallet, chain_id=chain_id, resources=[resource])
    with pytest.raises(siwe.SiweBadSignature):
        siwe.siwe_verify(message=message, signature=sign(stranger, message), chain_id=chain_id, resource=resource)
    assert not used(nonce)
    verified = siwe.siwe_verify(message=message, signature=sign(owner, message), chain_id=chain_id, resource=resource)
    assert verified.contract_wallet
    assert verified.address == wallet.lower()
    assert used(nonce)


@pytest.mark.chain
def test_a_contract_wallet_is_not_checked_against_another_chain(settings, anvil, w3) -> None:
    settings.CHAIN_RPC_URL = anvil.url
    owner = Account.create()
    wallet = deploy_contract(w3, "TestERC1271Wallet", owner.address, sender=dev_accounts()[0])
    nonce = siwe.siwe_nonce_issue().value
    message = build(owner, nonce, address=wallet, chain_id=CHAIN + 1, resources=[RESOURCE])
    with pytest.raises(siwe.SiweChainUnavailable):
        siwe.siwe_verify(message=message, signature=sign(owner, message), chain_id=CHAIN + 1)
    assert not used(nonce)


def test_a_nonce_issued_to_a_user_serves_only_that_users_sign_in() -> None:
    owner, other = user_with(), user_with()
    account = Account.create()
    nonce = siwe.siwe_nonce_issue(user_id=owner.pk).value
    message = build(account, nonce)
    signature = sign(account, message)
    for store in (siwe.DatabaseNonceStore(user_id=other.pk), siwe.DatabaseNonceStore()):
        with pytest.raises(siwe.SiweNonceUnknown):
            siwe.siwe_verify(message=message, signature=signature, chain_id=CHAIN, resource=RESOURCE, nonces=store)
    assert not used(nonce)
    mine = siwe.DatabaseNonceStore(user_id=owner.pk)
    siwe.siwe_verify(message=message, signature=signature, chain_id=CHAIN, resource=RESOURCE, nonces=mine)
    assert used(nonce)
