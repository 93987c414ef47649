"""The no-admin proof on Anvil (campaigns/no_admin.py): the demo's campaign passes every check; a clone of another
implementation, a clone of other code, and a record that differs from the chain each fail the check that catches
them, with the values read; an unreachable chain is said to be so. The permission table is the protocol doc's."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from django.test import Client
from web3 import Web3

from campaigns.indexer import chain_index
from campaigns.models import Campaign, CampaignMetadata
from campaigns.no_admin import PERMISSIONS, NoAdminProof, no_admin_proof
from devnet.chain import ANVIL, Anvil, dev_accounts, send
from devnet.protocol import CampaignParams, create_campaign, deploy_factory, ensure_demo_protocol
from devnet.protocol import factory as factory_contract
from tests.fixtures.chain import connect, running_anvil
from tests.payouts.page_tree import parse
from tests.plugins.require import requires

pytestmark = [
    pytest.mark.chain,
    pytest.mark.django_db,
    requires("Anvil (node_modules/.bin/anvil)", ANVIL.exists(), "npm ci"),
]
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Demo:
    anvil: Anvil
    w3: Web3
    state: dict[str, str]
    metadata: dict[str, object]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    for anvil in running_anvil():
        w3 = connect(anvil)
        state_file = tmp_path_factory.mktemp("demo") / "state.json"
        state = ensure_demo_protocol(w3, state_file)
        metadata = json.loads((state_file.parent / f"metadata-{state['metadata_hash'][2:]}.json").read_text())
        yield Demo(anvil, w3, state, metadata)


@pytest.fixture
def mirrored(demo: Demo, settings) -> Campaign:
    """The demo campaign as the indexer mirrors it, with its metadata document held; the site trusts its factory."""
    settings.CAMPAIGN_FACTORY_ADDRESS = demo.state["factory"]
    CampaignMetadata.objects.get_or_create(hash=demo.state["metadata_hash"], defaults={"document": demo.metadata})
    chain_index(w3=demo.w3, factory=demo.state["factory"], confirmations=0)
    return Campaign.objects.get(address=demo.state["campaign"].lower())


def by_key(proof: NoAdminProof) -> dict[str, object]:
    return {check.key: check for check in proof.checks}


def values(check: object) -> dict[str, str]:
    return dict(check.values)  # type: ignore[attr-defined]


def test_the_demo_campaign_passes_every_check(demo: Demo, mirrored: Campaign) -> None:
    proof = no_admin_proof(campaign=mirrored, w3=demo.w3)
    assert proof.unreachable == ""
    assert [c.key for c in proof.checks] == ["clone", "implementation", "bytecode", "params", "permissions", "oracles"]
    assert proof.passed, [(c.key, c.detail) for c in proof.checks if not c.passed]
    checks = by_key(proof)
    implementation = factory_contract(demo.w3, demo.state["factory"]).functions.implementation().call().lower()
    assert values(checks["clone"])["implementation"] == implementation
    assert "45-byte proxy and 182 bytes of parameters" in values(checks["clone"])["code length"]
    bytecode = values(checks["bytecode"])
    assert bytecode["keccak256 on chain"] == bytecode["keccak256 of the artifact"]
    assert values(checks["params"])["metadata_hash"] == demo.state["metadata_hash"]
    assert values(checks["params"])["budget"] == str(7_000 * 10**6)
    assert values(checks["permissions"])["owner, upgrade, pause or setter functions"] == "none"


def shown_checks(client: Client, campaign: Campaign) -> dict[str, str]:
    """The campaign page's checks as a visitor sees them: key → passed ("true"/"false")."""
    response = client.get(f"/campaigns/{campaign.chain_id}/{campaign.address}/")
    assert response.status_code == 200
    page = parse(response.content.decode())
    return {li["data-check"]: li["data-passed"] for li in page.find_all("li", data_check=True)}


def test_the_demo_campaigns_page_shows_every_check_passed_and_its_budget(
    demo: Demo, mirrored: Campaign, client: Client, settings
) -> None:
    settings.CHAIN_RPC_URL = demo.anvil.url
    assert shown_checks(client, mirrored) == dict.fromkeys(
        ("clone", "implementation", "bytecode", "params", "permissions", "oracles"), "true"
    )
    html = client.get(f"/campaigns/{mirrored.chain_id}/{mirrored.address}/").content.decode()
    assert "7,000 USDT</strong>" in html  # funded, nothing paid yet: the whole budget is in the escrow


def test_a_clone_of_another_implementation_fails_the_implementation_check(
    demo: Demo, mirrored: Campaign, client: Client, settings
) -> None:
    # A second factory deploys its own Campaign implementation (the same code, at another address): its clone is
    # not a clone of the implementation of the factory this site trusts.
    accounts = dev_accounts()
    other_factory = deploy_factory(demo.w3, sender=accounts[0])
    p = params_of(mirrored)
    address, _ = create_campaign(demo.w3, other_factory, p, creator=accounts[1], salt=b"\x07" * 32)
    chain_index(w3=demo.w3, factory=other_factory, confirmations=0)
    other = Campaign.objects.get(address=address.lower())

    proof = no_admin_proof(campaign=other, w3=demo.w3)

    checks = by_key(proof)
    assert not proof.passed
    assert checks["clone"].passed  # type: ignore[attr-defined]
    assert not checks["implementation"].passed  # type: ignore[attr-defined]
    shown = values(checks["implementation"])
    other_implementation = factory_contract(demo.w3, other_factory).functions.implementation().call().lower()
    assert shown["clone's implementation"] == other_implementation
    assert shown[f"factory {demo.state['factory'].lower()} implementation()"] != other_implementation
    assert "another contract" in checks["implementation"].detail  # type: ignore[attr-defined]
    settings.CHAIN_RPC_URL = demo.anvil.url
    assert shown_checks(client, other) == {
        "clone": "true",
        "implementation": "false",
        "bytecode": "true",  # the same code, deployed again: only where it lives differs
        "params": "true",
        "permissions": "true",
        "oracles": "true",
    }


def test_a_campaign_naming_oracles_that_are_not_this_sites_fails_the_oracles_check(
    demo: Demo, mirrored: Campaign, client: Client, settings
) -> None:
    # The factory takes any oracles: a creator who names himself records and pays each epoch as he likes.
    accounts = dev_accounts()
    p = replace(params_of(mirrored), recording_oracle=accounts[1].address, reputation_oracle=accounts[1].address)
    address, _ = create_campaign(demo.w3, demo.state["factory"], p, creator=accounts[1], salt=b"\x09" * 32)
    chain_index(w3=demo.w3, factory=demo.state["factory"], confirmations=0)
    selfish = Campaign.objects.get(address=address.lower())

    check = by_key(no_admin_proof(campaign=selfish, w3=demo.w3))["oracles"]

    assert not check.passed  # type: ignore[attr-defined]
    assert "recording and reputation oracle named at creation is not this site's" in check.detail  # type: ignore[attr-defined]
    assert values(check)["recording oracle named"] == accounts[1].address.lower()
    assert values(check)["this site's recording oracle"] == accounts[2].address.lower()
    settings.CHAIN_RPC_URL = demo.anvil.url
    shown = shown_checks(client, selfish)
    assert shown["oracles"] == "false"
    assert {k: v for k, v in shown.items() if k != "oracles"} == dict.fromkeys(
        ("clone", "implementation", "bytecode", "params", "permissions"), "true"
    )


def test_a_site_that_does_not_know_its_oracles_says_so(demo: Demo, mirrored: Campaign, settings) -> None:
    settings.RECORDING_ORACLE_PRIVATE_KEY = settings.REPUTATION_ORACLE_PRIVATE_KEY = ""
    settings.RECORDING_ORACLE_ADDRESS = settings.REPUTATION_ORACLE_ADDRESS = ""
    check = by_key(no_admin_proof(campaign=mirrored, w3=demo.w3))["oracles"]
    assert not check.passed  # type: ignore[attr-defined]
    assert "cannot say who its oracles are" in check.detail  # type: ignore[attr-defined]


def params_of(campaign: Campaign) -> CampaignParams:
    return CampaignParams(
        Web3.to_checksum_address(campaign.token),
        Web3.to_checksum_address(campaign.recording_oracle),
        Web3.to_checksum_address(campaign.reputation_oracle),
        Web3.to_checksum_address(campaign.fee_recipient),
        int(campaign.start.timestamp()),
        int(campaign.end.timestamp()),
        campaign.epoch_seconds,
        campaign.dispute_window_seconds,
        int(campaign.budget),
        campaign.fee_bps,
        bytes.fromhex(campaign.metadata_hash[2:]),
    )


def deploy_raw_clone(w3: Web3, implementation: str, args: bytes) -> str:
    """A clone as OpenZeppelin's `Clones.cloneDeterministicWithImmutableArgs` writes it, deployed by hand."""
    runtime = (
        bytes.fromhex("363d3d373d3d3d363d73")
        + bytes.fromhex(implementation[2:])
        + bytes.fromhex("5af43d82803e903d91602b57fd5bf3")
        + args
    )
    creation = b"\x61" + len(runtime).to_bytes(2, "big") + bytes.fromhex("3d81600a3d39f3") + runtime
    receipt = send(w3, {"data": "0x" + creation.hex()}, dev_accounts()[0])
    return str(receipt["contractAddress"]).lower()


def test_a_clone_of_other_code_fails_the_bytecode_and_params_checks(demo: Demo, mirrored: Campaign) -> None:
    code = bytes(demo.w3.eth.get_code(Web3.to_checksum_address(mirrored.address)))
    args = code[45:]
    forged = deploy_raw_clone(demo.w3, demo.state["token"].lower(), args)  # delegates to the ERC-20, not an escrow
    row = Campaign.objects.get(pk=mirrored.pk)
    row.pk, row.address = None, forged
    row.save()

    checks = by_key(no_admin_proof(campaign=row, w3=demo.w3))

    assert checks["clone"].passed  # type: ignore[attr-defined]
    assert values(checks["clone"])["implementation"] == demo.state["token"].lower()
    assert not checks["implementation"].passed  # type: ignore[attr-defined]
    assert not checks["bytecode"].passed  # type: ignore[attr-defined]
    bytecode = values(checks["bytecode"])
    assert bytecode["keccak256 on chain"] != bytecode["keccak256 of the artifact"]
    assert not checks["params"].passed  # type: ignore[attr-defined]
    assert "params() could not be read" in checks["params"].detail  # type: ignore[attr-defined]


def test_code_that_is_no_clone_fails_the_clone_check(demo: Demo, mirrored: Campaign) -> None:
    row = Campaign.objects.get(pk=mirrored.pk)
    row.pk, row.address = None, demo.state["token"].lower()  # an ERC-20's own code, not a proxy
    row.save()
    checks = by_key(no_admin_proof(campaign=row, w3=demo.w3))
    assert not checks["clone"].passed  # type: ignore[attr-defined]
    assert "EIP-1167" in checks["clone"].detail  # type: ignore[attr-defined]
    assert not checks["bytecode"].passed  # type: ignore[attr-defined]


def test_a_record_that_differs_from_the_chain_fails_the_params_check(demo: Demo, mirrored: Campaign) -> None:
    Campaign.objects.filter(pk=mirrored.pk).update(budget=1, metadata_hash="0x" + "22" * 32)
    mirrored.refresh_from_db()
    check = by_key(no_admin_proof(campaign=mirrored, w3=demo.w3))["params"]
    assert not check.passed  # type: ignore[attr-defined]
    assert f"budget ({7_000 * 10**6} on chain, 1 here)" in check.detail  # type: ignore[attr-defined]
    assert "metadata_hash" in check.detail  # type: ignore[attr-defined]


def test_a_held_document_that_is_not_the_hashed_one_fails_the_params_check(demo: Demo, mirrored: Campaign) -> None:
    check = by_key(no_admin_proof(campaign=mirrored, w3=demo.w3))["params"]
    assert values(check)["metadata document"] == "held; its canonical SHA-256 is this hash"
    CampaignMetadata.objects.filter(hash=demo.state["metadata_hash"]).update(
        document={**demo.metadata, "title": "Something else"}
    )
    check = by_key(no_admin_proof(campaign=mirrored, w3=demo.w3))["params"]
    assert not check.passed  # type: ignore[attr-defined]
    assert values(check)["metadata document"].startswith("held, but its SHA-256 is 0x")
    CampaignMetadata.objects.filter(hash=demo.state["metadata_hash"]).delete()
    check = by_key(no_admin_proof(campaign=mirrored, w3=demo.w3))["params"]
    assert check.passed  # type: ignore[attr-defined]
    assert values(check)["metadata document"].startswith("not held here")


def test_an_unreachable_chain_is_said_to_be_so(demo: Demo, mirrored: Campaign, settings) -> None:
    settings.CHAIN_RPC_URL = "http://127.0.0.1:9"  # discard port: nothing answers
    proof = no_admin_proof(campaign=mirrored)
    assert proof.unreachable.startswith("chain unreachable")
    assert proof.checks == ()
    assert not proof.passed
    Campaign.objects.filter(pk=mirrored.pk).update(chain_id=8453)
    mirrored.refresh_from_db()
    other = no_admin_proof(campaign=mirrored, w3=demo.w3)
    assert other.unreachable == "the configured RPC serves chain 31337, not 8453"


def test_the_permission_table_is_the_protocol_docs() -> None:
    text = (ROOT / "docs" / "protocol.md").read_text()
    rows = re.findall(r"^\| Campaign \| `(\w+)` \| ([^|]+) \| ([^|]+) \|$", text, flags=re.MULTILINE)
    assert [(name, who.strip(), what.strip()) for name, who, what in rows] == list(PERMISSIONS)
