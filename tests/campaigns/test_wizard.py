"""The creator wizard at /campaigns/new with the Django test client, on Anvil and the devnet exchange: each step's
happy path, the draft kept in the session and resumed, every bad input answered with its field's error and nothing
kept, the review's hash equal to the shown JSON's, the signed transactions creating that campaign, the status."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime

import pytest
from django.core.cache import cache
from django.test import Client
from web3 import Web3

from campaigns import chain_reads
from campaigns.domain.metadata import metadata_hash
from campaigns.indexer import chain_index
from campaigns.models import CampaignMetadata
from campaigns.wizard import SESSION_DRAFT
from devnet.chain import deploy_dev_token, dev_accounts, mint, send, token
from devnet.ports import free_port
from devnet.protocol import campaign, deploy_factory, now
from mrmarket import siwe_views
from tests.campaigns.test_api import CampaignFactory

pytestmark = [pytest.mark.chain, pytest.mark.django_db]
CREATOR, ORACLE, POOR = dev_accounts()[5], dev_accounts()[6], dev_accounts()[7]


@pytest.fixture(scope="module")
def exchange_sim():
    from devnet.exchange.fixtures import run_exchange

    with run_exchange() as running:
        yield running


@pytest.fixture
def deployed(settings, anvil, w3: Web3, exchange_sim) -> dict:
    deployer = dev_accounts()[0]
    tok = deploy_dev_token(w3, sender=deployer)
    mint(w3, tok, CREATOR.address, 10**13, sender=deployer)  # 10,000,000 USDT (6 decimals)
    settings.CHAIN_RPC_URL = anvil.url
    settings.EXCHANGE_API_URLS = {"binance": exchange_sim.base_url}
    settings.RECORDING_ORACLE_PRIVATE_KEY = ""
    settings.REPUTATION_ORACLE_PRIVATE_KEY = ""
    settings.RECORDING_ORACLE_ADDRESS = ORACLE.address
    settings.REPUTATION_ORACLE_ADDRESS = ORACLE.address
    cache.delete("exchange-symbols:binance")
    settings.CAMPAIGN_FACTORY_ADDRESS = deploy_factory(w3, sender=deployer)
    return {"token": tok}


def signed_in(address: str = CREATOR.address) -> Client:
    client = Client()
    session = client.session
    session[siwe_views.SESSION_ADDRESS] = address.lower()
    session.save()
    return client


def start_text(w3: Web3, *, ahead: int = 3_600) -> str:
    return datetime.fromtimestamp(now(w3) + ahead, UTC).strftime("%Y-%m-%d %H:%M")


def budget_form(deployed: dict, w3: Web3, **overrides: str) -> dict:
    data = {
        "token": deployed["token"],
        "budget": "7000",
        "start": start_text(w3),
        "duration_days": "7",
        "epoch_seconds": "86400",
    }
    data.update(overrides)
    return data


def walk(client: Client, deployed: dict, w3: Web3, *, upto: str = "review") -> None:
    """Submit each step in order up to (not including) `upto`."""
    steps = [
        ("template", {"template": "stable_depth"}),
        ("market", {"exchange": "binance", "pair": "mmt/usdt", "title": "MMT depth, week one"}),
        ("budget", budget_form(deployed, w3)),
        ("scoring", {"max_spread_bps": "40", "min_rest_seconds": "60", "single_side_divisor": "3"}),
    ]
    for step, data in steps:
        if step == upto:
            return
        response = client.post(f"/campaigns/new/{step}", data)
        assert response.status_code == 302, (step, field_errors(response))


def field_errors(response) -> dict[str, list[str]]:
    """The errors the page shows, per field (`data-field-errors="name"`), as a person reads them."""
    text = response.content.decode()
    found: dict[str, list[str]] = {}
    for name, body in re.findall(r'data-field-errors="([^"]+)"[^>]*>(.*?)</(?:ul|div)>', text, re.S):
        items = [html.unescape(i) for i in re.findall(r"<li>(.*?)</li>", body, re.S)]
        if items:
            found[name] = items
    return found


def found(pattern: str, text: str) -> str:
    match = re.search(pattern, text, re.S)
    assert match is not None, pattern
    return match.group(1)


def stored_steps(client: Client) -> dict:
    return dict((client.session.get(SESSION_DRAFT) or {}).get("steps") or {})


def test_not_signed_in_every_step_asks_for_sign_in_and_keeps_nothing(deployed: dict) -> None:
    client = Client()
    page = client.get("/campaigns/new")
    assert page.status_code == 200
    assert b"data-sign-in-required" in page.content
    assert b"data-siwe-sign-in" in page.content
    refused = client.post("/campaigns/new/template", {"template": "stable_depth"})
    assert refused.status_code == 403
    assert b"data-sign-in-required" in refused.content
    check = client.post("/campaigns/new/market/check", {"exchange": "binance", "pair": "MMT/USDT"})
    assert check.status_code == 403
    assert check.json()["code"] == "sign_in_required"
    assert client.get("/campaigns/new/review").status_code == 200
    assert SESSION_DRAFT not in client.session


def test_the_template_step_says_what_a_budget_buys(deployed: dict) -> None:
    page = signed_in().get("/campaigns/new/template?budget=7000&days=7&depth=50000")
    assert page.status_code == 200
    text = page.content.decode()
    for template_id in ("stable_depth", "high_volatility", "market_cap_defense", "low_cost_maintenance"):
        assert f'data-buys="{template_id}"' in text
    # stable depth: 1,000 a day, 80 % for depth (no fee), 1,000 per side of 50,000: 800 × 1,000 / 50,000 = 16.
    buys = re.search(r'data-buys="stable_depth">(.*?)</p>', text, re.S)
    assert buys is not None
    assert "<strong>16 tokens a day</strong>" in buys.group(1)
    # A band thinner than the example's own 1,000 would promise more than the whole budget: refused.
    thin = signed_in().get("/campaigns/new/template?budget=7000&days=7&depth=10").content.decode()
    assert "at least 1,000 quote units" in thin


def test_the_steps_lead_to_a_review_whose_hash_is_the_shown_json_and_whose_transactions_create_it(
    settings, deployed: dict, w3: Web3
) -> None:
    client = signed_in()
    assert client.get("/campaigns/new")["Location"] == "/campaigns/new/template"
    walk(client, deployed, w3)
    assert client.get("/campaigns/new")["Location"] == "/campaigns/new/review"
    page = client.get("/campaigns/new/review")
    assert page.status_code == 200, page.content.decode()[:2000]
    text = page.content.decode()
    shown = json.loads(html.unescape(found(r"<pre[^>]*data-metadata-json>(.*?)</pre>", text)))
    shown_hash = found(r"data-metadata-hash>(0x[0-9a-f]{64})<", text)
    assert "0x" + metadata_hash(shown).hex() == shown_hash
    assert shown["scoring"]["max_spread_bps"] == 40
    assert shown["budget"] == "7000000000"
    assert shown["reward_token"] == {"address": deployed["token"], "symbol": "USDT", "decimals": 6}
    assert shown["pair"] == "MMT/USDT"
    assert shown["chain_id"] == 31337
    assert shown["title"] == "MMT depth, week one"
    prepared = json.loads(found(r'<script id="campaign-prepared" type="application/json">(.*?)</script>', text))
    assert prepared["metadata_hash"] == shown_hash
    assert prepared["creator"] == CREATOR.address
    assert prepared["token"] == {"address": deployed["token"], "symbol": "USDT", "decimals": 6}
    assert prepared["budget"] == "7000000000"
    assert [t["kind"] for t in prepared["transactions"]] == ["approve", "create"]
    assert {e["type"] for e in prepared["errors_abi"]} == {"error"}
    assert {"InvalidParams", "OverBudget", "ERC20InsufficientAllowance"} <= {e["name"] for e in prepared["errors_abi"]}
    address = prepared["predicted_address"]
    assert prepared["status_url"] == f"/campaigns/new/status?address={address}"
    assert prepared["campaign_url"] == f"/campaigns/31337/{address.lower()}/"
    assert 'id="campaign-sign-button"' in text
    assert "dist/campaign_sign.js" in text
    assert "7,000 USDT" in found(r"data-total-cost>(.*?)</td>", text)
    gas = {k: v.replace(",", "") for k, v in re.findall(r'data-gas="(approve|create)">([0-9,]+) gas', text)}
    assert set(gas) == {"approve", "create"}, text
    assert "the allowance overridden" in text
    total_gas = int(gas["approve"]) + int(gas["create"])
    cost = html.unescape(found(r"data-gas-cost>(.*?)</td>", text))
    assert re.match(rf"about 0\.[0-9]+ of the chain's coin \({total_gas:,} gas at [0-9.]+ gwei\)", cost), cost
    # Reloading prepares the same campaign: the salt is the draft's.
    again = client.get("/campaigns/new/review").content.decode()
    assert f"data-predicted-address>{address}<" in again
    assert CampaignMetadata.objects.filter(hash=shown_hash).count() == 1

    status = client.get(prepared["status_url"]).json()
    assert status == {"mirrored": False, "campaign_url": prepared["campaign_url"]}
    used = {}
    for tx in prepared["transactions"]:
        receipt = send(w3, {"to": tx["to"], "data": tx["data"], "value": int(tx["value"])}, CREATOR)
        used[tx["kind"]] = receipt["gasUsed"]
    assert token(w3, deployed["token"]).functions.balanceOf(address).call() == 7_000_000_000
    assert "0x" + campaign(w3, address).functions.params().call()[11].hex() == shown_hash
    # The estimates were the node's for these very transactions (an estimate includes a margin of refunds).
    assert int(gas["approve"]) >= used["approve"]
    assert int(gas["create"]) >= used["create"]
    chain_index(w3=w3, factory=settings.CAMPAIGN_FACTORY_ADDRESS, confirmations=0)
    assert client.get(prepared["status_url"]).json() == {"mirrored": True, "campaign_url": prepared["campaign_url"]}
    # Coming back to the review after that says so, and links to its page.
    assert b"data-exists" in client.get("/campaigns/new/review").content


def test_the_draft_survives_a_new_request_and_resumes_at_the_furthest_step(deployed: dict, w3: Web3) -> None:
    client = signed_in()
    walk(client, deployed, w3, upto="budget")
    cookie = client.cookies["sessionid"].value
    later = Client()
    later.cookies["sessionid"] = cookie
    assert later.get("/campaigns/new")["Location"] == "/campaigns/new/budget"
    market = later.get("/campaigns/new/market").content.decode()
    assert 'value="MMT/USDT"' in market
    assert 'data-fact="market.symbol">MMT/USDT<' in market
    # A later step cannot be opened before the earlier ones.
    assert later.get("/campaigns/new/scoring")["Location"] == "/campaigns/new"
    assert later.get("/campaigns/new/review")["Location"] == "/campaigns/new"
    # Another address signing in on this browser does not inherit the draft.
    session = later.session
    session[siwe_views.SESSION_ADDRESS] = POOR.address.lower()
    session.save()
    assert later.get("/campaigns/new")["Location"] == "/campaigns/new/template"


def test_a_step_that_went_stale_is_where_the_wizard_resumes(deployed: dict, w3: Web3) -> None:
    client = signed_in()
    walk(client, deployed, w3, upto="scoring")
    session = client.session
    session[SESSION_DRAFT]["steps"]["budget"]["start"] = start_text(w3, ahead=-86_400)  # as if a day had passed
    session.save()
    assert client.get("/campaigns/new")["Location"] == "/campaigns/new/budget"
    page = client.get("/campaigns/new/budget")
    assert "the start is in the past" in field_errors(page)["start"][0]
    assert client.get("/campaigns/new/review")["Location"] == "/campaigns/new"


def test_start_over_drops_the_draft_and_its_salt(deployed: dict, w3: Web3) -> None:
    client = signed_in()
    walk(client, deployed, w3, upto="budget")
    salt = client.session[SESSION_DRAFT]["salt"]
    assert client.post("/campaigns/new/restart")["Location"] == "/campaigns/new"
    assert SESSION_DRAFT not in client.session
    walk(client, deployed, w3, upto="market")
    assert client.session[SESSION_DRAFT]["salt"] != salt


def test_choosing_another_template_drops_the_scoring_step(deployed: dict, w3: Web3) -> None:
    client = signed_in()
    walk(client, deployed, w3)
    assert "scoring" in stored_steps(client)
    client.post("/campaigns/new/template", {"template": "high_volatility"})
    assert "scoring" not in stored_steps(client)
    assert client.get("/campaigns/new")["Location"] == "/campaigns/new/scoring"
    page = client.get("/campaigns/new/scoring").content.decode()
    assert 'name="max_spread_bps" value="200"' in page


@pytest.mark.parametrize(
    ("step", "data", "field", "message"),
    [
        ("template", {"template": "moon"}, "template", "one of: stable_depth, high_volatility"),
        ("market", {"exchange": "binance", "pair": "DOGE/USDT"}, "pair", "binance does not list DOGE/USDT"),
        ("market", {"exchange": "binance", "pair": "MMTUSDT"}, "pair", "a pair as BASE/QUOTE"),
        ("market", {"exchange": "kraken", "pair": "MMT/USDT"}, "exchange", "one of the exchanges configured here"),
        ("market", {"exchange": "binance", "pair": "MMT/USDT", "title": "x" * 121}, "title", "at most 120 characters"),
        ("budget", {"budget": "20000000"}, "budget", "above your balance: at most 10,000,000 USDT"),
        ("budget", {"budget": "1.0000001"}, "budget", "at most 6 decimals: this token has 6"),
        ("budget", {"budget": "-5"}, "budget", "a plain decimal number of tokens"),
        ("budget", {"start": "PAST"}, "start", "the start is in the past"),
        ("budget", {"start": "tomorrow"}, "start", "YYYY-MM-DD HH:MM, in UTC"),
        ("budget", {"duration_days": "0"}, "duration_days", "the campaign must end after it starts"),
        ("budget", {"epoch_seconds": "30"}, "epoch_seconds", "from 60 to 2,592,000 seconds"),
        ("budget", {"epoch_seconds": "90"}, "epoch_seconds", "a multiple of Stable depth's sample interval (60 s)"),
        ("budget", {"epoch_seconds": "60", "duration_days": "30"}, "epoch_seconds", "at most 3660"),
        ("budget", {"token": "0x" + "ab" * 20}, "token", "no contract at"),
        ("budget", {"token": "FACTORY"}, "token", "does not answer symbol(), decimals() and balanceOf()"),
        ("budget", {"token": "0x1234"}, "token", "0x and 40 hexadecimal digits"),
        ("scoring", {"max_spread_bps": "900"}, "max_spread_bps", "a whole number from 10 to 100 for Stable depth"),
        ("scoring", {"min_rest_seconds": "5"}, "min_rest_seconds", "from 30 to 300 for Stable depth"),
    ],
)
def test_bad_input_gets_its_fields_error_and_nothing_is_kept_or_sent(
    settings, deployed: dict, w3: Web3, step: str, data: dict, field: str, message: str
) -> None:
    client = signed_in()
    walk(client, deployed, w3, upto=step)
    before = stored_steps(client)
    nonce = w3.eth.get_transaction_count(CREATOR.address)
    full = {
        "template": {},
        "market": {"exchange": "binance", "pair": "MMT/USDT"},
        "budget": budget_form(deployed, w3),
        "scoring": {"max_spread_bps": "40", "min_rest_seconds": "60", "single_side_divisor": "3"},
    }[step]
    full.update(data)
    if full.get("start") == "PAST":
        full["start"] = start_text(w3, ahead=-3_600)
    if full.get("token") == "FACTORY":
        full["token"] = settings.CAMPAIGN_FACTORY_ADDRESS
    response = client.post(f"/campaigns/new/{step}", full)
    assert response.status_code == 400
    errors = field_errors(response)
    assert message in " ".join(errors.get(field, [])), errors
    # The live check answers the same, and keeps nothing either.
    check = client.post(f"/campaigns/new/{step}/check", full).json()
    assert message in " ".join(check["errors"][field])
    assert stored_steps(client) == before
    assert not CampaignMetadata.objects.exists()
    assert w3.eth.get_transaction_count(CREATOR.address) == nonce
    assert client.get("/campaigns/new")["Location"] == f"/campaigns/new/{step}"


def test_the_live_checks_give_the_facts_beside_the_fields(deployed: dict, w3: Web3) -> None:
    client = signed_in()
    walk(client, deployed, w3, upto="market")
    market = client.post("/campaigns/new/market/check", {"exchange": "binance", "pair": "MMT/USDT"}).json()
    assert market["errors"] == {}
    assert market["facts"]["market"]["symbol"] == "MMT/USDT"
    assert market["facts"]["market"]["quote"] == "USDT"
    assert set(market["facts"]["market"]) >= {"min_amount", "min_cost", "amount_precision", "price_precision"}
    walk(client, deployed, w3, upto="budget")
    budget = client.post("/campaigns/new/budget/check", budget_form(deployed, w3)).json()
    assert budget["errors"] == {}
    assert budget["facts"]["token"] == {
        "address": deployed["token"],
        "symbol": "USDT",
        "decimals": 6,
        "balance": "10,000,000 USDT",
    }
    assert budget["facts"]["epochs"] == 7
    assert budget["facts"]["per_epoch"] == "1,000 USDT"
    assert budget["facts"]["max_fee_per_epoch"] == "0 USDT"
    walk(client, deployed, w3, upto="scoring")
    scoring = client.post(
        "/campaigns/new/scoring/check", {"max_spread_bps": "60", "min_rest_seconds": "60", "single_side_divisor": "3"}
    ).json()
    assert scoring["errors"] == {}
    # 1,000 USDT at 30 bps in a 60 bps band: closeness (3000/6000)² = 1/4 of 100,000 cents → 25,000 points.
    assert scoring["facts"]["examples"]["max_spread_bps"].startswith(
        "An order of 1,000 USDT at 0.3 % from the mid scores 25,000 points a sample (100,000 at the mid"
    )
    assert "on one side only, 8,333 (divided by 3)" in scoring["facts"]["examples"]["single_side_divisor"]
    # Nothing was kept by the checks: the draft is still at the scoring step.
    assert "scoring" not in stored_steps(client)


def test_the_status_endpoint_refuses_what_is_not_an_address(deployed: dict) -> None:
    response = Client().get("/campaigns/new/status?address=nope")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_address"


def test_without_the_oracles_addresses_the_review_says_so_and_prepares_nothing(
    settings, deployed: dict, w3: Web3
) -> None:
    client = signed_in()
    walk(client, deployed, w3)
    settings.RECORDING_ORACLE_ADDRESS = ""
    page = client.get("/campaigns/new/review")
    assert page.status_code == 503
    assert b'data-refused="oracle_address_not_configured"' in page.content
    assert b"campaign-prepared" not in page.content
    assert not CampaignMetadata.objects.exists()


def test_a_later_steps_check_refuses_before_the_earlier_steps(deployed: dict) -> None:
    response = signed_in().post("/campaigns/new/budget/check", {"budget": "1"})
    assert response.status_code == 409
    assert response.json()["code"] == "step_not_open"


def test_where_the_allowance_override_does_not_hold_the_gas_is_the_measured_figure_labelled(
    monkeypatch: pytest.MonkeyPatch, deployed: dict, w3: Web3
) -> None:
    monkeypatch.setattr(chain_reads, "OZ_ALLOWANCES_SLOT", 7)  # a token that keeps its allowances elsewhere
    client = signed_in()
    walk(client, deployed, w3)
    text = client.get("/campaigns/new/review").content.decode()
    assert re.search(r'data-gas="approve">[0-9,]+ gas <small>\(eth_estimateGas\)', text)
    create = found(r'data-gas="create">(.*?)</td>', text)
    assert create.startswith(f"{chain_reads.CREATE_AND_FUND_GAS_MEASURED:,} gas")
    assert "not estimated" in create
    assert "docs/gas.md" in create


def test_an_exchange_that_does_not_answer_is_the_exchange_fields_error(settings, deployed: dict, w3: Web3) -> None:
    client = signed_in()
    walk(client, deployed, w3, upto="market")
    settings.EXCHANGE_API_URLS = {"binance": f"http://127.0.0.1:{free_port()}"}
    cache.delete("exchange-symbols:binance")
    response = client.post("/campaigns/new/market", {"exchange": "binance", "pair": "MMT/USDT"})
    assert response.status_code == 400
    assert "binance did not answer its market list" in field_errors(response)["exchange"][0]
    assert "market" not in stored_steps(client)


def test_the_budget_step_suggests_the_reward_tokens_campaigns_here_already_use(deployed: dict, w3: Web3) -> None:
    digest = "0x" + "ab" * 32
    CampaignMetadata.objects.create(
        hash=digest, document={"reward_token": {"address": deployed["token"], "symbol": "USDT", "decimals": 6}}
    )
    CampaignFactory.create(chain_id=31337, token=deployed["token"].lower(), metadata_hash=digest)
    CampaignFactory.create(chain_id=8453, token="0x" + "77" * 20)  # another chain's token is not suggested
    client = signed_in()
    walk(client, deployed, w3, upto="budget")
    page = client.get("/campaigns/new/budget").content.decode()
    assert f'<option value="{Web3.to_checksum_address(deployed["token"])}">USDT</option>' in page
    assert 'list="known-tokens"' in page
    assert "0x" + "77" * 20 not in page.lower()


def test_a_chain_that_does_not_answer_is_a_typed_503_and_the_draft_is_kept(settings, deployed: dict, w3: Web3) -> None:
    client = signed_in()
    walk(client, deployed, w3, upto="budget")
    kept = stored_steps(client)
    settings.CHAIN_RPC_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    page = client.get("/campaigns/new/budget")
    assert page.status_code == 503
    assert 'data-refused="chain_unavailable"' in page.content.decode()
    assert "your draft is kept" in page.content.decode()
    check = client.post("/campaigns/new/budget/check", budget_form(deployed, w3))
    assert (check.status_code, check.json()["code"]) == (503, "chain_unavailable")
    assert stored_steps(client) == kept
