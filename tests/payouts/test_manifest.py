"""The payout manifest built from a results bundle: the bundle's paid participants as leaves sorted by account, their
total equal to the budget, the root OpenZeppelin's library computes, the bundle's digest, and a valid document; a
bundle the payout cannot rely on is refused naming the path."""

from __future__ import annotations

import copy
import hashlib
import json
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from payouts.audit.schemas import SchemaViolation, validate_manifest
from payouts.domain.bundle import Software, bundle_bytes, results_bundle
from payouts.domain.manifest import ManifestError, manifest_bytes, manifest_digest, payout_manifest
from payouts.domain.merkle import PayoutLeaf, PayoutTree
from tests.payouts.bundle_fixtures import envelope, paying_document, rich_document
from tests.payouts.scoring_fixtures import A, C, D, document, participant
from tests.plugins.require import requires
from wire.canonical import canonical_bytes
from wire.errors import CanonicalFormError

ROOT = Path(__file__).resolve().parents[2]
NODE_LIB = ROOT / "node_modules" / "@openzeppelin" / "merkle-tree"
SOFTWARE = Software(version="0.1.0", commit="ab" * 20)


def bundle_of(doc: dict[str, Any]) -> dict[str, Any]:
    # Through the published bytes, as a reader holds it.
    parsed: dict[str, Any] = json.loads(bundle_bytes(results_bundle(doc, software=SOFTWARE)))
    return parsed


def synthetic_bundle(n: int, seed: int) -> dict[str, Any]:
    """A bundle of n participants in random order, about a third paid 0, amounts summing to the budget."""
    rng = random.Random(seed)
    bundle = bundle_of(paying_document())
    template = bundle["participants"][0]
    accounts = ["0x" + rng.randbytes(20).hex() for _ in range(n)]
    weights = [0 if rng.random() < 0.3 else rng.randrange(1, 10**6) for _ in range(n)]
    weights[0] = max(weights[0], 1)
    budget = 10**24 + rng.randrange(10**6)
    paid = [budget * w // sum(weights) for w in weights]
    paid[weights.index(max(weights))] += budget - sum(paid)
    bundle["participants"] = [
        {**copy.deepcopy(template), "address": a, "amount": str(x)} for a, x in zip(accounts, paid, strict=True)
    ]
    bundle["parameters"]["epoch_budget"] = str(budget)
    return bundle


def test_the_manifest_holds_the_paid_participants_sorted_with_the_bundles_identity() -> None:
    bundle = bundle_of(paying_document())
    manifest = payout_manifest(bundle)
    paid = {p["address"]: p["amount"] for p in bundle["participants"] if p["amount"] != "0"}
    assert len(paid) == 3 < len(bundle["participants"])  # the participant who scored nothing is left out
    assert manifest["schema"] == "mrmarket.payout-manifest/v1"
    assert manifest["campaign"] == bundle["campaign"]
    assert (
        manifest["epoch"]
        == bundle["epoch"]
        == {"index": 0, "start_ms": bundle["epoch"]["start_ms"], "end_ms": bundle["epoch"]["end_ms"]}
    )
    assert manifest["software"] == bundle["software"] == SOFTWARE.as_json()
    assert manifest["results_digest"] == hashlib.sha256(bundle_bytes(bundle)).hexdigest()
    assert manifest["epoch_budget"] == bundle["parameters"]["epoch_budget"] == "1000000000000000000007"
    assert manifest["leaves"] == [
        {"index": i, "account": account, "amount": paid[account]} for i, account in enumerate(sorted(paid))
    ]
    assert manifest["total"] == "1000000000000000000007" == str(sum(int(x) for x in paid.values()))
    leaves = [PayoutLeaf(i, a, int(paid[a])) for i, a in enumerate(sorted(paid))]
    assert manifest["merkle_root"] == "0x" + PayoutTree(leaves).root.hex()
    validate_manifest(manifest)


def test_bytes_and_digest_are_the_canonical_form_and_the_same_for_the_same_bundle() -> None:
    manifest = payout_manifest(bundle_of(paying_document()))
    again = payout_manifest(bundle_of(paying_document()))
    assert manifest_bytes(manifest) == manifest_bytes(again) == canonical_bytes(manifest)
    assert manifest_digest(manifest) == hashlib.sha256(manifest_bytes(manifest)).hexdigest()
    # Another bundle (here: another software) is another results digest, so another manifest digest.
    other = json.loads(bundle_bytes(results_bundle(paying_document(), software=Software("0.1.1", "unknown"))))
    assert payout_manifest(other)["results_digest"] != manifest["results_digest"]
    assert manifest_digest(payout_manifest(other)) != manifest_digest(manifest)


def test_nobody_scored_gives_a_manifest_without_leaves_a_zero_total_and_no_root() -> None:
    bundle = bundle_of(envelope(document([participant(A), participant(C)], epoch_budget="5000")))
    assert [p["amount"] for p in bundle["participants"]] == ["0", "0"]
    manifest = payout_manifest(bundle)
    assert manifest["leaves"] == []
    assert manifest["total"] == "0"
    assert manifest["merkle_root"] is None
    assert manifest["epoch_budget"] == "5000"
    validate_manifest(manifest)


def test_the_rich_bundle_and_large_synthetic_ones_give_valid_manifests() -> None:
    for bundle in (bundle_of(rich_document()), synthetic_bundle(300, 1)):
        manifest = payout_manifest(bundle)
        validate_manifest(manifest)
        assert manifest["total"] == bundle["parameters"]["epoch_budget"]
        accounts = [leaf["account"] for leaf in manifest["leaves"]]
        assert accounts == sorted(accounts)
        assert [leaf["index"] for leaf in manifest["leaves"]] == list(range(len(accounts)))


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda m: m.update(merkle_root=None), "manifest.merkle_root"),
        (lambda m: m["leaves"][0].update(amount="0"), "manifest.leaves[0].amount"),
        (lambda m: m["leaves"][1].update(account=m["leaves"][1]["account"].upper()), "manifest.leaves[1].account"),
        (lambda m: m.update(total=7), "manifest.total"),
        (lambda m: m.pop("software"), "manifest.software"),
        (lambda m: m.update(extra=1), "manifest.extra"),
        (lambda m: m.update(leaves=[], total="0", merkle_root="0x" + "11" * 32), "manifest.merkle_root"),
        (lambda m: m.update(leaves=[], merkle_root=None), "manifest.total"),
    ],
    ids=[
        "root-null-with-leaves",
        "zero-leaf",
        "upper-case",
        "total-int",
        "no-software",
        "unknown-key",
        "root-no-leaves",
        "total-no-leaves",
    ],
)
def test_the_schema_refuses_a_malformed_manifest(change, path: str) -> None:
    manifest = payout_manifest(bundle_of(paying_document()))
    change(manifest)
    with pytest.raises(SchemaViolation) as caught:
        validate_manifest(manifest)
    assert caught.value.path == path


def _set(path: list[str | int], value: Any):
    def change(bundle: dict[str, Any]) -> None:
        target: Any = bundle
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    return change


@pytest.mark.parametrize(
    ("change", "path", "problem"),
    [
        (
            _set(["participants", 1, "amount"], "421300087408566039476"),
            "bundle.participants",
            "the amounts sum to 1000000000000000000008, not the epoch budget 1000000000000000000007",
        ),
        (
            _set(["participants", 0, "amount"], "0"),
            "bundle.participants",
            "the amounts sum to 819147076413488521881, not the epoch budget 1000000000000000000007",
        ),
        (
            _set(["participants", 1, "address"], C.upper().replace("0X", "0x")),
            "bundle.participants[1].address",
            "'0xCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC' is not a lower-case 0x address",
        ),
        (_set(["participants", 2, "address"], A), "bundle.participants[2].address", f"{A} is listed twice"),
        (
            _set(["participants", 0, "amount"], 5),
            "bundle.participants[0].amount",
            "5 is not a decimal string of base units",
        ),
        (
            _set(["participants", 0, "amount"], "-5"),
            "bundle.participants[0].amount",
            "'-5' is not a decimal string of base units",
        ),
        (
            _set(["parameters", "epoch_budget"], str(2**256)),
            "bundle.parameters.epoch_budget",
            "does not fit in a uint256",
        ),
        (_set(["participants"], {}), "bundle.participants", "is not an array"),
        (_set(["participants", 0], "x"), "bundle.participants[0]", "is not an object"),
        (_set(["software"], None), "bundle.software", "is not an object"),
        (_set(["campaign"], []), "bundle.campaign", "is not an object"),
        (_set(["epoch"], 3), "bundle.epoch", "is not an object"),
        (_set(["parameters"], "x"), "bundle.parameters", "is not an object"),
        (_set(["schema"], "mrmarket.results-bundle/v2"), "bundle.schema", "is not 'mrmarket.results-bundle/v1'"),
    ],
    ids=[
        "sum-over",
        "sum-under",
        "upper-case",
        "repeated",
        "int",
        "negative",
        "budget",
        "list",
        "entry",
        "software",
        "campaign",
        "epoch",
        "parameters",
        "schema",
    ],
)
def test_a_bundle_the_payout_cannot_rely_on_is_refused_naming_the_path(change, path: str, problem: str) -> None:
    bundle = bundle_of(paying_document())
    assert [p["address"] for p in bundle["participants"][:3]] == [A, C, D]
    change(bundle)
    with pytest.raises(ManifestError) as caught:
        payout_manifest(bundle)
    assert caught.value.path == path
    assert caught.value.problem == problem
    assert str(caught.value) == f"{path}: {problem}"
    assert caught.value.code == "manifest_refused"


@pytest.mark.parametrize("bundle", [None, [], "bundle", 7])
def test_a_bundle_that_is_not_an_object_is_refused_as_such(bundle: Any) -> None:
    with pytest.raises(ManifestError) as caught:
        payout_manifest(bundle)
    assert (caught.value.path, caught.value.problem) == ("bundle", "is not an object")


def test_a_bundle_with_a_float_is_not_canonical_and_refused() -> None:
    bundle = bundle_of(paying_document())
    bundle["volatility_median_ppm"] = 1.5
    with pytest.raises(CanonicalFormError):
        payout_manifest(bundle)


@requires("node and @openzeppelin/merkle-tree", shutil.which("node") and NODE_LIB.exists(), "npm ci")
def test_the_root_is_the_one_openzeppelins_library_computes_from_the_leaves() -> None:
    manifests = [
        payout_manifest(b) for b in (bundle_of(paying_document()), bundle_of(rich_document()), synthetic_bundle(257, 2))
    ]
    cases = [
        {"leaves": [[str(x["index"]), x["account"], x["amount"]] for x in m["leaves"]], "proofOf": 0, "multi": [0]}
        for m in manifests
    ]
    done = subprocess.run(
        ["node", str(Path(__file__).with_name("oz_merkle.cjs"))],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        timeout=60,
    )
    assert [r["root"] for r in json.loads(done.stdout)] == [m["merkle_root"] for m in manifests]
