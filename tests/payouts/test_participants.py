"""Participants: joining a campaign by Sign-In with Ethereum, linking MM orders and read-only keys, the status,
and the rate limits per identity. Every refusal is typed and stores nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import close_old_connections, connection
from eth_account import Account
from eth_account.messages import encode_defunct
from rest_framework.test import APIClient
from siwe import SiweMessage

from campaigns.models import CampaignMetadata
from devnet.exchange.fixtures import RunningExchange, run_exchange
from devnet.exchange.keys import Permission
from execution import accounts
from execution.errors import KeyPermissionsMismatch
from execution.models import ExchangeAccount, ExecutionReport, MMOrder
from mrmarket import siwe
from mrmarket.errors import NotFound
from mrmarket.exchanges.credentials import ExchangeCredentials
from mrmarket.models import SiweNonce
from mrmarket.roles import Role
from payouts import services
from payouts.errors import CampaignUnknown, MMOrderNotForParticipant, ParticipantOwnedByAnother
from payouts.models import EpochPreview, Participant, ParticipantAccount, ParticipantOrder
from tests.campaigns.test_api import CampaignFactory
from tests.factories import user_with
from tests.plugins.require import require_postgresql

pytestmark = pytest.mark.django_db
CHAIN = 31337


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningExchange]:
    with run_exchange() as running:
        yield running


@pytest.fixture(autouse=True)
def _site(settings) -> Iterator[None]:
    settings.SIWE_DOMAIN = "localhost"
    cache.clear()  # the throttles' counters (this run's own Redis database)
    yield
    cache.clear()


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def signed(account, campaign, *, nonce: str | None = None, chain_id: int = CHAIN, **overrides) -> tuple[str, str]:
    now = datetime.now(UTC)
    fields = {
        "domain": "localhost",
        "address": account.address,
        "statement": "Join the campaign as a market maker.",
        "uri": "http://localhost/participants",
        "version": "1",
        "chain_id": chain_id,
        "nonce": nonce or services.participant_nonce_issue().value,
        "issued_at": iso(now),
        "expiration_time": iso(now + timedelta(minutes=5)),
        "resources": [siwe.campaign_resource(campaign.chain_id, campaign.address)],
        **overrides,
    }
    message = SiweMessage(**fields).prepare_message()
    return message, "0x" + account.sign_message(encode_defunct(text=message)).signature.hex()


def order_for(owner, campaign, reward: str, *, account: ExchangeAccount) -> MMOrder:
    return MMOrder.objects.create(
        owner=owner,
        exchange_account=account,
        symbol="MMT/USDT",
        funding_asset="USDT",
        funding_amount=10,
        job_id=f"job-{reward[-6:]}",
        campaign_chain_id=campaign.chain_id,
        campaign_address=campaign.address,
        reward_address=reward.lower(),
    )


@pytest.fixture
def trading(settings, sim: RunningExchange):
    settings.EXCHANGE_API_URLS = {"binance": sim.base_url}
    owner = user_with(Role.OPERATOR)
    key = sim.sim.create_account(permissions=frozenset({Permission.TRADE}))
    account = accounts.exchange_account_enrol(
        owner_id=owner.pk,
        exchange="binance",
        label="mm",
        role="trading",
        credentials=ExchangeCredentials(key.key, key.secret),
    )
    return owner, account


def join(owner, campaign, message, signature, mm_order_ids=()) -> Participant:
    return services.participant_join(
        chain_id=campaign.chain_id,
        campaign_address=campaign.address,
        message=message,
        signature=signature,
        mm_order_ids=mm_order_ids,
        owner_id=owner.pk,
    )


def test_join_links_orders_and_joining_again_adds_links(trading) -> None:
    owner, account = trading
    campaign = CampaignFactory.create()
    wallet = Account.create()
    first, second = (order_for(owner, campaign, wallet.address, account=account) for _ in range(2))
    participant = join(owner, campaign, *signed(wallet, campaign), mm_order_ids=[first.pk])
    assert participant.reward_address == wallet.address.lower()
    again = join(owner, campaign, *signed(wallet, campaign), mm_order_ids=[first.pk, second.pk])
    assert again.pk == participant.pk
    assert set(ParticipantOrder.objects.values_list("mm_order_id", flat=True)) == {first.pk, second.pk}
    assert Participant.objects.count() == 1
    assert "Resources:\n- urn:mrmarket:campaign:31337:" in Participant.objects.get().siwe_message


def _nothing_stored(nonce: str) -> None:
    assert not Participant.objects.exists()
    assert not ParticipantOrder.objects.exists()
    assert SiweNonce.objects.get(value=nonce).used_at is None


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("bad_signature", "siwe_bad_signature"),
        ("expired", "siwe_expired"),
        ("another_campaign", "siwe_wrong_campaign"),
        ("another_chain", "siwe_wrong_chain"),
        ("wrong_domain", "siwe_wrong_domain"),
    ],
)
def test_a_bad_join_is_typed_and_stores_nothing(trading, case: str, code: str) -> None:
    owner, _ = trading
    campaign, other = CampaignFactory.create(), CampaignFactory.create()
    wallet = Account.create()
    nonce = services.participant_nonce_issue().value
    past = datetime.now(UTC) - timedelta(minutes=10)
    message, signature = {
        "bad_signature": lambda: (signed(wallet, campaign, nonce=nonce)[0], signed(Account.create(), campaign)[1]),
        "expired": lambda: signed(
            wallet, campaign, nonce=nonce, issued_at=iso(past), expiration_time=iso(past + timedelta(minutes=1))
        ),
        "another_campaign": lambda: signed(wallet, other, nonce=nonce),
        "another_chain": lambda: signed(wallet, campaign, nonce=nonce, chain_id=8453),
        "wrong_domain": lambda: signed(
            wallet, campaign, nonce=nonce, domain="evil.example", uri="https://evil.example/"
        ),
    }[case]()
    with pytest.raises(siwe.SiweError) as caught:
        join(owner, campaign, message, signature)
    assert caught.value.code == code
    _nothing_stored(nonce)


def test_a_reused_nonce_is_refused_and_stores_nothing_more(trading) -> None:
    owner, _ = trading
    campaign, other = CampaignFactory.create(), CampaignFactory.create()
    wallet = Account.create()
    nonce = services.participant_nonce_issue().value
    join(owner, campaign, *signed(wallet, campaign, nonce=nonce))
    with pytest.raises(siwe.SiweNonceUsed):
        join(owner, other, *signed(wallet, other, nonce=nonce))
    assert list(Participant.objects.values_list("campaign_id", flat=True)) == [campaign.pk]


def test_an_unknown_campaign_is_refused(trading) -> None:
    owner, _ = trading
    campaign = CampaignFactory.build(address="0x" + "ee" * 20)
    wallet = Account.create()
    nonce = services.participant_nonce_issue().value
    with pytest.raises(CampaignUnknown):
        join(owner, campaign, *signed(wallet, campaign, nonce=nonce))
    _nothing_stored(nonce)


@pytest.mark.parametrize("mismatch", ["owner", "campaign", "reward", "chain", "missing"])
def test_an_order_that_is_not_for_the_participant_is_refused_and_nothing_is_stored(trading, mismatch: str) -> None:
    owner, account = trading
    campaign, other = CampaignFactory.create(), CampaignFactory.create()
    wallet = Account.create()
    order = order_for(owner, campaign, wallet.address, account=account)
    if mismatch == "owner":
        order.owner = user_with(Role.OPERATOR)
    elif mismatch == "campaign":
        order.campaign_address = other.address
    elif mismatch == "reward":
        order.reward_address = Account.create().address.lower()
    elif mismatch == "chain":
        order.campaign_chain_id = 8453
    order.save()
    order_id = order.pk + 1000 if mismatch == "missing" else order.pk
    nonce = services.participant_nonce_issue().value
    with pytest.raises(MMOrderNotForParticipant) as caught:
        join(owner, campaign, *signed(wallet, campaign, nonce=nonce), mm_order_ids=[order_id])
    assert caught.value.code == "mm_order_not_for_participant"
    _nothing_stored(nonce)


def test_another_user_cannot_take_over_a_participant(trading) -> None:
    owner, _ = trading
    campaign = CampaignFactory.create()
    wallet = Account.create()
    join(owner, campaign, *signed(wallet, campaign))
    nonce = services.participant_nonce_issue().value
    with pytest.raises(ParticipantOwnedByAnother):
        join(user_with(Role.OPERATOR), campaign, *signed(wallet, campaign, nonce=nonce))
    assert SiweNonce.objects.get(value=nonce).used_at is None
    assert Participant.objects.get().owner_id == owner.pk


@pytest.mark.django_db(transaction=True)
def test_two_joins_racing_on_one_nonce_one_wins(settings, sim: RunningExchange) -> None:
    require_postgresql("SQLite serializes writers itself; the race needs PostgreSQL's row locks")
    owner = user_with(Role.OPERATOR)
    campaign, other = CampaignFactory.create(), CampaignFactory.create()
    wallet = Account.create()
    nonce = services.participant_nonce_issue().value
    attempts = [signed(wallet, campaign, nonce=nonce), signed(wallet, other, nonce=nonce)]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt(target, message: str, signature: str) -> None:
        try:
            barrier.wait()
            join(owner, target, message, signature)
            outcomes.append("joined")
        except siwe.SiweNonceUsed:
            outcomes.append("used")
        finally:
            close_old_connections()
            connection.close()

    threads = [
        threading.Thread(target=attempt, args=(target, *pair))
        for target, pair in zip((campaign, other), attempts, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["joined", "used"]
    assert Participant.objects.count() == 1


def test_a_read_only_key_is_enrolled_and_shown_without_the_key(trading, sim: RunningExchange) -> None:
    owner, account = trading
    digest = "0x" + "5e" * 32
    campaign = CampaignFactory.create(metadata_hash=digest)
    token = {"address": campaign.token, "symbol": "MMT", "decimals": 18}
    CampaignMetadata.objects.create(hash=digest, document={"reward_token": token})
    wallet = Account.create()
    order = order_for(owner, campaign, wallet.address, account=account)
    participant = join(owner, campaign, *signed(wallet, campaign), mm_order_ids=[order.pk])
    for seq in range(3):
        ExecutionReport.objects.create(
            order=order,
            job_id=order.job_id,
            sequence=seq,
            digest=f"{seq:02d}" * 32,
            signing_key="aa" * 32,
            window_start_ms=seq * 10_000,
            window_end_ms=(seq + 1) * 10_000,
            envelope="{}",
        )
    key = sim.sim.create_account(permissions=frozenset())
    client = APIClient()
    client.force_authenticate(owner)
    body = {"exchange": "binance", "label": "watch", "api_key": key.key, "secret": key.secret}
    response = client.post(f"/api/v1/participants/{participant.pk}/accounts", body, format="json")
    assert response.status_code == 201, response.json()
    assert key.key not in response.content.decode()
    assert key.secret not in response.content.decode()
    assert ExchangeAccount.objects.get(label="watch").role == "read_only"
    status = client.get(f"/api/v1/participants/{CHAIN}/{campaign.address}/{wallet.address}")
    assert status.status_code == 200, status.json()
    got = status.json()
    assert got["reward_address"] == wallet.address.lower()
    assert [(a["exchange"], a["label"], a["api_key_hint"]) for a in got["accounts"]] == [
        ("binance", "watch", key.key[-4:])
    ]
    assert key.key not in status.content.decode()
    assert got["orders"] == [
        {"mm_order_id": order.pk, "job_id": order.job_id, "state": "created", "verified_reports": 3}
    ]
    assert got["estimate"] is None
    # Once the oracle has scored the open epoch so far, the status shows the participant's figures from it.
    EpochPreview.objects.create(
        campaign=campaign,
        epoch=3,
        as_of_ms=1_700_000_000_000,
        bundle={
            "participants": [
                {
                    "address": wallet.address.lower(),
                    "depth": "7",
                    "volume": "1234",
                    "share": "1/2",
                    "amount": str(10**20),
                    "flags": {"not_visible": 2},
                    "exclusions": [{"trade_id": "t1", "side": "buy", "reason": "self_trade"}],
                }
            ]
        },
    )
    estimate = client.get(f"/api/v1/participants/{CHAIN}/{campaign.address}/{wallet.address}").json()["estimate"]
    assert estimate == {
        "epoch": 3,
        "as_of_ms": 1_700_000_000_000,
        "depth_points": 7,
        "volume_cents": 1234,
        "share": "1/2",
        "estimated_reward": str(10**20),
        "estimated_reward_display": "100 MMT",  # 10**20 base units of an 18-decimal token
        "flags": {"not_visible": 2},
        "exclusions": [{"trade_id": "t1", "side": "buy", "reason": "self_trade"}],
    }


@pytest.mark.parametrize(
    ("permissions", "permission"), [({Permission.TRADE}, "trade"), ({Permission.WITHDRAW}, "withdraw")]
)
def test_a_key_that_can_trade_or_withdraw_is_refused_and_nothing_is_stored(
    trading, sim: RunningExchange, permissions, permission: str
) -> None:
    owner, _ = trading
    campaign = CampaignFactory.create()
    participant = join(owner, campaign, *signed(Account.create(), campaign))
    key = sim.sim.create_account(permissions=frozenset(permissions))
    before = ExchangeAccount.objects.count()
    with pytest.raises(KeyPermissionsMismatch) as caught:
        services.participant_account_enrol(
            participant_id=participant.pk,
            owner_id=owner.pk,
            exchange="binance",
            label="watch",
            api_key=key.key,
            secret=key.secret,
        )
    assert f"the key has the {permission} permission" in caught.value.message
    assert ExchangeAccount.objects.count() == before
    assert not ParticipantAccount.objects.exists()


def test_only_the_owner_enrols_keys_or_sees_the_status(trading, sim: RunningExchange) -> None:
    owner, _ = trading
    campaign = CampaignFactory.create()
    wallet = Account.create()
    participant = join(owner, campaign, *signed(wallet, campaign))
    stranger = user_with(Role.OPERATOR)
    key = sim.sim.create_account(permissions=frozenset())
    with pytest.raises(NotFound):
        services.participant_account_enrol(
            participant_id=participant.pk,
            owner_id=stranger.pk,
            exchange="binance",
            label="watch",
            api_key=key.key,
            secret=key.secret,
        )
    assert not ExchangeAccount.objects.filter(owner=stranger).exists()
    client = APIClient()
    client.force_authenticate(stranger)
    url = f"/api/v1/participants/{CHAIN}/{campaign.address}/{wallet.address}"
    assert client.get(url).status_code == 404
    auditor = APIClient()
    auditor.force_authenticate(user_with(Role.AUDITOR))
    assert auditor.get(url).status_code == 200


def test_the_api_issues_a_nonce_and_joins() -> None:
    owner = user_with(Role.OPERATOR)
    campaign = CampaignFactory.create()
    wallet = Account.create()
    assert APIClient().post("/api/v1/participants/nonce").status_code in (401, 403)  # a nonce is for a user
    client = APIClient()
    client.force_authenticate(owner)
    issued = client.post("/api/v1/participants/nonce")
    assert issued.status_code == 201
    message, signature = signed(wallet, campaign, nonce=issued.json()["nonce"])
    body = {"chain_id": CHAIN, "campaign_address": campaign.address, "message": message, "signature": signature}
    # The signed message leaks before it is used: another user cannot play it, its nonce was issued to the owner.
    thief = APIClient()
    thief.force_authenticate(user_with(Role.OPERATOR))
    stolen = thief.post("/api/v1/participants/join", body, format="json")
    assert stolen.status_code == 400
    assert stolen.json()["code"] == "siwe_nonce_unknown"
    assert not Participant.objects.exists()
    joined = client.post("/api/v1/participants/join", body, format="json")
    assert joined.status_code == 200, joined.json()
    assert joined.json()["reward_address"] == wallet.address.lower()
    replay = client.post("/api/v1/participants/join", body, format="json")
    assert replay.status_code == 409
    assert replay.json()["code"] == "siwe_nonce_used"


def _limit(scope: str) -> int:
    return int(django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][scope].split("/")[0])


def test_the_join_after_the_limit_for_one_address_is_429_and_other_addresses_still_pass() -> None:
    owner = user_with(Role.OPERATOR)
    campaign = CampaignFactory.create()
    wallet = Account.create()
    client = APIClient()
    client.force_authenticate(owner)
    bad = signed(Account.create(), campaign)[1]  # every attempt is refused, so none joins or uses its nonce
    for _ in range(_limit("participant_join")):
        message = signed(wallet, campaign)[0]
        body = {"chain_id": CHAIN, "campaign_address": campaign.address, "message": message, "signature": bad}
        assert client.post("/api/v1/participants/join", body, format="json").status_code == 400
    message, signature = signed(wallet, campaign)
    body = {"chain_id": CHAIN, "campaign_address": campaign.address, "message": message, "signature": signature}
    refused = client.post("/api/v1/participants/join", body, format="json")
    assert refused.status_code == 429
    assert not Participant.objects.exists()
    other = Account.create()
    message, signature = signed(other, campaign)
    body = {"chain_id": CHAIN, "campaign_address": campaign.address, "message": message, "signature": signature}
    assert client.post("/api/v1/participants/join", body, format="json").status_code == 200


def test_another_users_refused_joins_do_not_use_up_this_users_allowance_for_an_address() -> None:
    campaign = CampaignFactory.create()
    wallet = Account.create()
    attacker = APIClient()
    attacker.force_authenticate(user_with(Role.OPERATOR))
    bad = signed(Account.create(), campaign)[1]
    for _ in range(_limit("participant_join") + 1):
        message = signed(wallet, campaign)[0]
        body = {"chain_id": CHAIN, "campaign_address": campaign.address, "message": message, "signature": bad}
        attacker.post("/api/v1/participants/join", body, format="json")
    owner = APIClient()
    owner.force_authenticate(user_with(Role.OPERATOR))
    message, signature = signed(wallet, campaign)
    body = {"chain_id": CHAIN, "campaign_address": campaign.address, "message": message, "signature": signature}
    assert owner.post("/api/v1/participants/join", body, format="json").status_code == 200
    assert Participant.objects.get().reward_address == wallet.address.lower()


def test_nonces_are_limited_per_user() -> None:
    operator = user_with(Role.OPERATOR)
    client = APIClient()
    client.force_authenticate(operator)
    for _ in range(_limit("participant_nonce")):
        assert client.post("/api/v1/participants/nonce").status_code == 201
    before = SiweNonce.objects.count()
    assert client.post("/api/v1/participants/nonce").status_code == 429
    assert SiweNonce.objects.count() == before
    assert set(SiweNonce.objects.values_list("issued_to_id", flat=True)) == {operator.pk}
    other = APIClient()
    other.force_authenticate(user_with(Role.OPERATOR))
    assert other.post("/api/v1/participants/nonce").status_code == 201


def test_the_status_of_an_address_that_did_not_join_is_404() -> None:
    campaign = CampaignFactory.create()
    client = APIClient()
    client.force_authenticate(user_with(Role.AUDITOR))
    response = client.get(f"/api/v1/participants/{CHAIN}/{campaign.address}/{Account.create().address}")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_key_enrolments_are_limited_per_user() -> None:
    client = APIClient()
    client.force_authenticate(user_with(Role.OPERATOR))
    for _ in range(_limit("participant_enrol")):
        assert client.post("/api/v1/participants/1/accounts", {}, format="json").status_code == 400
    assert client.post("/api/v1/participants/1/accounts", {}, format="json").status_code == 429
    other = APIClient()
    other.force_authenticate(user_with(Role.OPERATOR))
    assert other.post("/api/v1/participants/1/accounts", {}, format="json").status_code == 400
