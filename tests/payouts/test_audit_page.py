"""The public audit page of a campaign: the campaign in token units with its dispute window; each epoch newest first
with its close and payout in plain words, digests, documents and source reports that download, transactions linked
to the chain's explorer when one is configured and plain hashes when not, batches and paid vs total, the commands
that recompute and verify it; an address's own leaves with the claim call of a claimable one; a bad address is an
error and nothing else; an unknown campaign a 404. And the token-units formatter the page relies on."""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st
from web3 import Web3

from execution.domain.units import for_people, from_units
from payouts.selectors import campaign_audit, duration_text, payout_leaf_proof
from tests.payouts.audit_fixtures import (
    ADDRESS,
    AUDITED,
    CHAIN,
    COMMIT,
    DECIMALS,
    REPORTS,
    SYMBOL,
    Scene,
    oracle_settings,
    scene,
)
from tests.payouts.page_tree import Node, parse

PAGE = f"/campaigns/{CHAIN}/{ADDRESS}/audit"


# ------------------------------------------------------------------------------------------ the token-units formatter


@pytest.mark.parametrize(
    ("units", "decimals", "text"),
    [
        (0, 18, "0 MMT"),
        (1, 18, "0.000000000000000001 MMT"),
        (5_000 * 10**18 + 5, 18, "5,000.000000000000000005 MMT"),
        (2_000_000_000, 6, "2,000 USDT"),
        (500_000, 6, "0.5 USDT"),
        (1_234_567, 0, "1,234,567 WEI"),
        (10**40 + 1, 18, "10,000,000,000,000,000,000,000.000000000000000001 MMT"),  # past a float's 15 digits
    ],
)
def test_amounts_for_people_are_exact_token_units(units: int, decimals: int, text: str) -> None:
    asset = text.rsplit(" ", 1)[1]
    assert for_people(units, decimals, asset) == text


@given(st.integers(min_value=0, max_value=10**40), st.integers(min_value=0, max_value=36))
def test_the_text_reads_back_as_the_same_base_units(units: int, decimals: int) -> None:
    number = for_people(units, decimals, "T").removesuffix(" T").replace(",", "")
    assert Decimal(number) == from_units(units, decimals)
    whole, _, fraction = number.partition(".")
    assert len(fraction) <= decimals
    assert int(whole + fraction.ljust(decimals, "0")) == units  # read back by digits: no Decimal context rounds


def test_durations_in_words() -> None:
    assert duration_text(172_800) == "2 days"
    assert duration_text(86_400) == "1 day"
    assert duration_text(5_430) == "1 hour 30 minutes 30 seconds"
    assert duration_text(0) == "0 seconds"


# -------------------------------------------------------------------------------------------------------- the page


@pytest.fixture
def audit_scene(settings, tmp_path: Path, db) -> Scene:
    oracle_settings(settings, tmp_path / "oracle")
    return scene()


def page(client: Client, query: str = "") -> tuple[int, Node]:
    response = client.get(PAGE + query)
    return response.status_code, parse(response.content)


def epoch(tree: Node, n: int) -> Node:
    return tree.one("article", data_epoch=str(n))


def test_the_campaign_is_shown_in_token_units_with_its_dispute_window(audit_scene: Scene, client: Client) -> None:
    status, tree = page(client)
    assert status == 200
    campaign = tree.one(id="campaign").text()
    assert "MMT/USDT on binance" in campaign
    assert f"5,000.000000000000000005 {SYMBOL}" in campaign
    assert "5000000000000000000005 base units" in campaign  # the base units only as a secondary detail
    assert f"({DECIMALS} decimals)" in campaign
    assert "0.5 % of each published payout" in campaign
    assert "10 epochs of 1 day" in campaign
    window = tree.one(id="dispute-window").text()
    assert "2 days after the campaign ends" in window
    assert "2026-11-13 00:00:00 UTC" in window  # the end (11-11) + 2 days
    assert "refund" in window
    assert "no published payout holds" in window


def test_epochs_newest_first_with_their_states_in_plain_words(audit_scene: Scene, client: Client) -> None:
    _, tree = page(client)
    articles = tree.find_all("article", class_="epoch")
    assert [(a["data-epoch"], a["data-close-state"], a["data-payout-state"]) for a in articles] == [
        ("4", "collecting", "none"),
        ("3", "recorded", "paid"),
        ("2", "recorded", "distributing"),
        ("1", "failed", "none"),
        ("0", "recorded", "empty"),
    ]
    assert "Recorded: the results bundle's digest is on chain." in epoch(tree, 3).text()
    assert "Paid: every leaf is paid." in epoch(tree, 3).text()
    assert "anyone may claim a leaf now" in epoch(tree, 2).text()
    failed = epoch(tree, 1).text()
    assert "Failed: the results could not be recorded" in failed
    assert "Reason: the escrow refused recordResults: EpochNotOver" in failed
    assert "inputs.json not stored yet" in failed
    assert "Not started: the payout starts once the results are recorded." in failed
    empty = epoch(tree, 0).text()
    assert "Nothing to pay: nobody scored" in empty
    assert "nothing to publish" in empty
    assert "Collecting" in epoch(tree, 4).text()


def test_amounts_batches_and_paid_versus_total(audit_scene: Scene, client: Client) -> None:
    _, tree = page(client)
    amounts = [int(leaf["amount"]) for leaf in audit_scene.paying.leaves]
    total = sum(amounts)
    assert total == 1_000_000_000_000_000_000_007
    assert epoch(tree, 3).one(data_amount="paid").text() == (
        "1,000.000000000000000007 MMT of 1,000.000000000000000007 MMT"
    )
    distributing = epoch(tree, 2)
    assert distributing.one(data_amount="paid").text() == (
        f"{for_people(amounts[0] + amounts[1], DECIMALS, SYMBOL)} of 1,000.000000000000000007 MMT"
    )
    rows = distributing.one("table", class_="batches").one("tbody").find_all("tr")
    assert [(r["data-batch"], r["data-status"]) for r in rows] == [("0", "paid"), ("2", "pending")]
    first, second = ([td.text() for td in r.find_all("td")] for r in rows)
    assert first[:3] == ["0 – 1", for_people(amounts[0] + amounts[1], DECIMALS, SYMBOL), "paid"]
    assert second[:3] == ["leaf 2", for_people(amounts[2], DECIMALS, SYMBOL), "sent, not yet mined"]
    assert audit_scene.txs["pending_batch"] in second[3]
    assert "3 leaves" in epoch(tree, 3).text()
    # No raw base units where a person reads an amount (they appear only with the audited leaf, as a detail).
    assert str(total) not in tree.one(id="epochs").text()


def test_digests_and_every_download_resolve_to_the_stored_bytes(audit_scene: Scene, client: Client) -> None:
    _, tree = page(client)
    article = epoch(tree, 3)
    close = audit_scene.closes[3]
    for kind in ("inputs", "bundle", "manifest"):
        item = article.one("li", data_document=kind)
        digest = getattr(close, f"{kind}_digest")
        assert digest in item.text()
        response = client.get(item.one("a")["href"])
        assert response.status_code == 200
        assert hashlib.sha256(response.content).hexdigest() == digest
    reports = article.one("td", class_="reports")
    assert reports.find("details") is not None  # five reports: collapsed
    links = [a["href"] for a in reports.find_all("a")]
    assert links == [f"/api/v1/payouts/reports/{d}.json" for d in REPORTS]
    for link, digest in zip(links, REPORTS, strict=True):  # the last one pushed from an executor elsewhere
        response = client.get(link)
        assert response.status_code == 200
        assert response.json() == {"digest": digest}
    few = epoch(tree, 2).one("td", class_="reports")
    assert few.find("details") is None  # two reports: listed as they are
    assert len(few.find_all("a")) == 2


def test_the_commands_name_this_campaign_and_the_bundles_commit(audit_scene: Scene, client: Client) -> None:
    _, tree = page(client)
    verify = epoch(tree, 3).one(data_verify=True)
    commands = verify.one("pre").raw_text().splitlines()
    base = "https://oracle.example.org"
    assert commands == [
        f"curl -fsSo inputs.json {base}/api/v1/payouts/{CHAIN}/{ADDRESS}/3/inputs.json",
        f"curl -fsSo bundle.json {base}/api/v1/payouts/{CHAIN}/{ADDRESS}/3/bundle.json",
        f"curl -fsSo manifest.json {base}/api/v1/payouts/{CHAIN}/{ADDRESS}/3/manifest.json",
        "python -m payouts.audit recompute --inputs inputs.json --bundle bundle.json --manifest manifest.json",
        f"python -m payouts.audit verify --rpc <RPC URL> --campaign {ADDRESS} --epoch 3 --artifacts {base}",
    ]
    assert f"git checkout {COMMIT}" in verify.text()
    assert "version 0.1.0" in verify.text()
    assert epoch(tree, 1).find(data_verify=True) is None  # nothing stored: nothing to verify


def test_transactions_are_plain_hashes_without_an_explorer(audit_scene: Scene, client: Client) -> None:
    _, tree = page(client)
    record = epoch(tree, 3).one("td", data_tx="record")
    assert record.find("a") is None
    assert record.one("code").text() == audit_scene.txs["record_3"]
    assert "block 110" in record.text()
    assert not [a for a in tree.find_all("a") if "/tx/" in a["href"] or "/address/" in a["href"]]


def test_transactions_link_to_the_configured_explorer(audit_scene: Scene, client: Client, settings) -> None:
    settings.CHAIN_EXPLORER_URLS = {str(CHAIN): "https://explorer.example/"}
    _, tree = page(client)
    article = epoch(tree, 3)
    record = article.one("td", data_tx="record").one("a")
    assert record["href"] == f"https://explorer.example/tx/{audit_scene.txs['record_3']}"
    publish = article.one("td", data_tx="publish").one("a")
    assert publish["href"] == f"https://explorer.example/tx/{audit_scene.txs['publish_3']}"
    batch = article.one("tr", data_batch="2").one("a")
    assert batch["href"] == f"https://explorer.example/tx/{audit_scene.txs['batch_3_2']}"
    escrow = [a for a in tree.one(id="campaign").find_all("a") if a.text() == ADDRESS]
    assert [a["href"] for a in escrow] == [f"https://explorer.example/address/{ADDRESS}"]


def test_an_address_sees_its_own_leaves_and_claims_the_claimable_one(audit_scene: Scene, client: Client) -> None:
    status, tree = page(client, "?address=0x" + AUDITED[2:].upper())  # all capitals: no checksum to check
    assert status == 200
    claimable = epoch(tree, 2).one(data_leaf=True)
    proof = payout_leaf_proof(close=audit_scene.closes[2], account=AUDITED)
    assert proof is not None
    assert proof.status == "claimable"
    assert f"Leaf {proof.index}:" in claimable.text()
    assert claimable.one(data_amount="leaf").text() == for_people(proof.amount, DECIMALS, SYMBOL)
    assert claimable.find(data_leaf_status="claimable") is not None
    assert [code.text() for code in claimable.one("ol", class_="proof").find_all("code")] == proof.proof
    button = claimable.one("button", data_claim=True)
    assert button.has_attr("hidden")  # shown by claim.js: without JavaScript it could do nothing
    assert button["data-chain-id"] == str(CHAIN)
    assert button["data-claim-to"] == ADDRESS == proof.claim_to
    assert button["data-claim-data"] == proof.claim_data
    assert proof.claim_data in claimable.one("pre", class_="calldata").text()
    paid = epoch(tree, 3).one(data_leaf=True)
    assert paid.find(data_leaf_status="distributed") is not None
    assert paid.find("button") is None
    assert "pays this address nothing" in epoch(tree, 0).one(data_leaf=True).text()
    assert "No payout manifest yet" in epoch(tree, 1).one(data_leaf=True).text()
    assert epoch(tree, 4).one(data_leaf=True).text() == "No payout manifest yet."
    assert tree.one("script", type="module")["src"].endswith("js/claim.js")


def test_a_checksummed_address_is_accepted(audit_scene: Scene, client: Client) -> None:
    status, tree = page(client, "?address=" + Web3.to_checksum_address(AUDITED))
    assert status == 200
    assert len(tree.find_all("button", data_claim=True)) == 1


def test_an_address_without_leaves_sees_none_and_no_button(audit_scene: Scene, client: Client) -> None:
    status, tree = page(client, "?address=0x" + "ee" * 20)
    assert status == 200
    assert tree.find("button", data_claim=True) is None
    assert "pays this address nothing" in epoch(tree, 3).one(data_leaf=True).text()


@pytest.mark.parametrize("bad", ["nonsense", "0x1234", "0x" + "zz" * 20, "0x" + "dD" * 20, "<b>0x</b>"])
def test_a_bad_address_is_an_error_and_nothing_else(audit_scene: Scene, client: Client, bad: str) -> None:
    _, plain = page(client)
    status, tree = page(client, "?" + urlencode({"address": bad}))
    assert status == 400
    assert re.search(r"Not an address|checksum", tree.one(id="address-error").text())
    assert tree.find(data_leaf=True) is None
    assert tree.find("b") is None  # what was typed is shown escaped, never as markup
    assert tree.one("input", name="address")["value"] == bad
    # Everything but the address section is the page without an address.
    assert tree.one("main").without(tree.one(id="address")) == plain.one("main").without(plain.one(id="address"))


def test_an_empty_address_is_the_plain_page(audit_scene: Scene, client: Client) -> None:
    status, tree = page(client, "?address=")
    assert status == 200
    assert tree.find(id="address-error") is None
    assert tree.find(data_leaf=True) is None


def test_an_unknown_campaign_is_a_404_page(audit_scene: Scene, client: Client) -> None:
    assert client.get(f"/campaigns/{CHAIN}/0x{'99' * 20}/audit").status_code == 404
    assert client.get(f"/campaigns/1/{ADDRESS}/audit").status_code == 404


def test_the_address_in_the_path_is_read_in_any_case(audit_scene: Scene, client: Client) -> None:
    assert client.get(f"/campaigns/{CHAIN}/0x{ADDRESS[2:].upper()}/audit").status_code == 200


def test_without_a_verified_token_amounts_are_in_base_units(audit_scene: Scene) -> None:
    audit_scene.campaign.metadata_hash = "0x" + "00" * 32
    audit_scene.campaign.save()
    audit = campaign_audit(chain_id=CHAIN, address=ADDRESS)
    assert audit.token_decimals is None
    assert audit.budget.text == "5,000,000,000,000,000,000,005 base units"


def test_the_page_only_reads(audit_scene: Scene, client: Client) -> None:
    assert client.post(PAGE).status_code == 405


def test_the_page_reads_in_a_fixed_number_of_queries(
    audit_scene: Scene, client: Client, django_assert_num_queries
) -> None:
    # The campaign, its metadata, the closes with their payouts and transactions, the batches: however many epochs.
    with django_assert_num_queries(4):
        assert client.get(PAGE).status_code == 200
