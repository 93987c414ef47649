"""`python -m payouts.audit verify` against a real escrow on Anvil: a synthetic but complete epoch (signed report
envelopes, the job's proof of execution, the inputs naming the reports, the bundle and manifest built with the
project's functions), `recordResults` and `publishPayout` mined, one leaf claimed and two distributed, every
document served by a loopback HTTP server with the oracle's URL layout. The untouched epoch passes; each tampering
fails with its reason named."""

from __future__ import annotations

import copy
import hashlib
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from web3 import Web3

from devnet.chain import Anvil, deploy_dev_token, dev_accounts, mint
from devnet.chain import token as token_contract
from devnet.protocol import CampaignParams, call, create_campaign, deploy_factory
from devnet.protocol import campaign as campaign_contract
from devnet.protocol import factory as factory_contract
from devnet.protocol import now as chain_now
from payouts.audit import cli, verify
from payouts.domain.bundle import bundle_bytes, results_bundle
from payouts.domain.manifest import manifest_bytes, payout_manifest
from payouts.domain.merkle import PayoutLeaf, PayoutTree
from tests.fixtures.chain import connect, running_anvil
from tests.payouts.bundle_fixtures import envelope
from tests.payouts.scoring_fixtures import BOOK, A, C, D, E, fill, order, params, participant
from tests.payouts.test_audit_cli import ROOT, clean_env, run_cli
from tests.wire.builders import KEY, OTHER_KEY, SPEC_DIGEST
from tests.wire.builders import report as report_document
from wire.canonical import canonical_bytes, digest, parse
from wire.reports import SignedReport, report_bytes, sign_report

pytestmark = [pytest.mark.chain, pytest.mark.timeout(300)]
DEPLOYER, CREATOR, RECORDER, REPUTATION, FEES, PAYER = dev_accounts()[:6]
EPOCH_SECONDS = 180
EPOCH_BUDGET = 1_000_000  # what the escrow gives each epoch (the budget split evenly)
FEE_BPS = 100
PAYABLE = 990_099  # the largest T with T + floor(T × 1 %) ≤ 1 000 000: the inputs' epoch budget
JOB = "job-verify"
PAID, WRONG_ROOT, UNPUBLISHED = 0, 1, 2  # the three epochs closed on chain


@dataclass
class Epoch:
    """One closed epoch: its documents as served and what went on chain."""

    index: int
    inputs: bytes
    bundle: bytes
    manifest: bytes
    leaves: list[PayoutLeaf]


@dataclass
class World:
    w3: Web3
    rpc: str
    campaign: str  # lower-case
    base: str
    routes: dict[str, tuple[int, bytes]]  # what the server answers now (reset for each test)
    baseline: dict[str, tuple[int, bytes]]
    epochs: dict[int, Epoch]
    reports: list[SignedReport]  # the job's whole chain; the inputs name the last two

    def path(self, epoch: int, kind: str) -> str:
        return f"/api/v1/payouts/31337/{self.campaign}/{epoch}/{kind}.json"

    def args(self, epoch: int, *extra: str) -> list[str]:
        return ["verify", "--rpc", self.rpc, "--campaign", self.campaign, "--epoch", str(epoch), *extra]


# ---------------------------------------------------------------------------------------------- documents


def signed_chain() -> list[SignedReport]:
    out: list[SignedReport] = []
    for sequence in range(3):
        previous = out[-1].digest if out else None
        out.append(sign_report(report_document(sequence, prev_digest=previous, job_id=JOB), KEY))
    return out


def proof_document(reports: list[SignedReport], *, signing_key: str = KEY.public_hex) -> bytes:
    """A proof of execution as `attestation/proof.py` builds it, bound by a dev-quote-authority attestation."""
    proof = {
        "schema": verify.PROOF_SCHEMA,
        "job_id": JOB,
        "job_spec_digest": SPEC_DIGEST,
        "window": {"start_ms": reports[0].report["window_start_ms"], "end_ms": reports[-1].report["window_end_ms"]},
        "reports": [
            {
                "sequence": r.sequence,
                "digest": r.digest,
                "window_start_ms": r.report["window_start_ms"],
                "window_end_ms": r.report["window_end_ms"],
            }
            for r in reports
        ],
        "executor": {
            "signing_key": signing_key,
            "sealing_key": "cd" * 32,
            "measurement": {"mrtd": "00" * 48, "rtmr0": "", "rtmr1": "", "rtmr2": "", "rtmr3": ""},
            "build_version": "0.1.0",
        },
        "attestation": {
            "record": 7,
            "nonce": "ee" * 32,
            "runtime_config": {"schema": "mrmarket.executor.runtime/v1", "controller_key": None,
                               "exchange_api_urls": {}, "quote_provider": "dev", "dev": True},
            "quote_sha256": "ab" * 32,
            "ita_token_sha256": "",
            "verified_at": "2026-12-01T00:00:00+00:00",
            "tcb_status": "UpToDate",
            "advisory_ids": [],
            "hardware_attested": False,
            "allowlist_entry": None,
        },
    }  # fmt: skip
    return canonical_bytes({"proof": proof, "digest": digest(proof)})


def inputs_document(campaign: dict[str, Any], epoch: int, start_ms: int, sources: list[str]) -> dict[str, Any]:
    """Four participants paid (depth, volume, one side only), over the epoch the escrow defines."""
    step = 60_000

    def resting(oid: str, side: str, price: str, amount: str) -> dict[str, Any]:
        # placed two minutes before the epoch: rested long enough at every sample
        return order(oid, side, price, amount, [(start_ms - 120_000, None, amount)])

    orders_a = [resting("a1", "buy", "99.80", "2"), resting("a2", "sell", "100.3", "1")]
    orders_a[0]["report_digest"] = sources[0]
    bare = {
        "params": params(
            epoch_index=epoch,
            epoch_start_ms=start_ms,
            epoch_end_ms=start_ms + 3 * step,
            epoch_seconds=EPOCH_SECONDS,
            epoch_budget=PAYABLE,
        ),
        "snapshots": [{"t_ms": start_ms + k * step, "book": BOOK} for k in range(3)],
        "participants": [
            participant(A, orders_a),
            participant(
                C,
                [resting("c1", "buy", "99.95", "3")],
                [fill("tc", "buy", "99.95", "1", maker=True, ts=start_ms + 1000)],
            ),
            participant(D, [resting("d1", "sell", "100.1", "4")]),
            participant(E, [resting("e1", "sell", "100.05", "1")]),
        ],
    }
    document = envelope(bare, source_reports=sources)
    document["campaign"] = campaign
    return document


def close_epoch(epoch: int, *, campaign: dict[str, Any], start_ms: int, sources: list[str]) -> Epoch:
    inputs = inputs_document(campaign, epoch, start_ms, sources)
    bundle = bundle_bytes(results_bundle(inputs, software=cli.software_version()))
    manifest = payout_manifest(parse(bundle))
    leaves = [PayoutLeaf(x["index"], x["account"], int(x["amount"])) for x in manifest["leaves"]]
    return Epoch(epoch, canonical_bytes(inputs), bundle, manifest_bytes(manifest), leaves)


# ---------------------------------------------------------------------------------------------- the server


def serve(routes: dict[str, tuple[int, bytes]]) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = routes.get(self.path, (404, b'{"message": "not found"}'))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


# ---------------------------------------------------------------------------------------------- the chain


@pytest.fixture(scope="module")
def anvil() -> Iterator[Anvil]:
    yield from running_anvil()


@pytest.fixture(scope="module")
def world(anvil: Anvil) -> Iterator[World]:
    w3 = connect(anvil)
    usdt = deploy_dev_token(w3, sender=DEPLOYER)
    factory = deploy_factory(w3, sender=DEPLOYER)
    # Started three epochs and a bit ago: epochs 0, 1 and 2 have ended, so their results can be recorded at once.
    start = chain_now(w3) - 3 * EPOCH_SECONDS - 60
    end = start + 20 * EPOCH_SECONDS
    budget = 20 * EPOCH_BUDGET
    metadata = hashlib.sha256(b"verify test metadata").digest()
    terms = CampaignParams(
        usdt, RECORDER.address, REPUTATION.address, FEES.address, start, end, EPOCH_SECONDS, 3600, budget, FEE_BPS,
        metadata,
    )  # fmt: skip
    mint(w3, usdt, CREATOR.address, budget, sender=DEPLOYER)
    salt = b"\x00" * 31 + b"\x09"
    predicted = factory_contract(w3, factory).functions.predictCampaignAddress(terms.as_tuple(), CREATOR.address, salt)
    address = predicted.call()
    call(w3, token_contract(w3, usdt).functions.approve(address, budget), CREATOR)
    create_campaign(w3, factory, terms, creator=CREATOR, salt=salt, fund_now=True)
    campaign = address.lower()
    escrow = campaign_contract(w3, address)

    chain = signed_chain()
    sources = [r.digest for r in chain[1:]]  # the job ran before the epoch: its first report is not a source
    identity = {"chain_id": 31337, "address": campaign, "metadata_hash": "0x" + metadata.hex()}
    epochs = {
        i: close_epoch(i, campaign=identity, start_ms=(start + i * EPOCH_SECONDS) * 1000, sources=sources)
        for i in (PAID, WRONG_ROOT, UNPUBLISHED)
    }
    routes: dict[str, tuple[int, bytes]] = {}
    server, base = serve(routes)
    world = World(w3, anvil.url, campaign, base, routes, {}, epochs, chain)
    for i, epoch in epochs.items():
        for kind in ("inputs", "bundle", "manifest"):
            world.baseline[world.path(i, kind)] = (200, getattr(epoch, kind))
        uri = base + world.path(i, "bundle")
        call(w3, escrow.functions.recordResults(i, hashlib.sha256(epoch.bundle).digest(), uri), RECORDER)
    for signed in chain:
        world.baseline[f"/api/v1/payouts/reports/{signed.digest}.json"] = (200, report_bytes(signed))
    world.baseline[f"/api/v1/attestation/proofs/{JOB}"] = (200, proof_document(chain))

    for i, root in ((PAID, None), (WRONG_ROOT, b"\x44" * 32)):
        epoch = epochs[i]
        tree = PayoutTree(epoch.leaves)
        total = sum(leaf.amount for leaf in epoch.leaves)
        manifest_hash = hashlib.sha256(epoch.manifest).digest()
        call(w3, escrow.functions.publishPayout(i, root or tree.root, manifest_hash, total), REPUTATION)
    paid = epochs[PAID]
    tree = PayoutTree(paid.leaves)
    first = paid.leaves[0]
    account = Web3.to_checksum_address(first.account)
    call(w3, escrow.functions.claim(PAID, 0, account, first.amount, tree.proof(0)), PAYER)
    multiproof = tree.multiproof([1, 2])
    packed = [(int(x.account, 16) << 96) | x.amount for x in paid.leaves[1:3]]
    call(w3, escrow.functions.distribute(PAID, 1, packed, list(multiproof.proof), multiproof.flag_words()), PAYER)
    yield world
    server.shutdown()
    server.server_close()


@pytest.fixture
def served(world: World) -> World:
    """The world with the server answering the untouched documents (a test tampers with its own copy)."""
    world.routes.clear()
    world.routes.update(copy.deepcopy(world.baseline))
    return world


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def fails(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("FAIL ")]


def replace_json(raw: bytes, change: Any) -> bytes:
    document = parse(raw)
    change(document)
    return canonical_bytes(document)


# ---------------------------------------------------------------------------------------------- tests


def test_an_untouched_epoch_passes_as_a_stranger_runs_it(served: World) -> None:
    done = run_cli(*served.args(PAID))
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert fails(out) == []
    assert out.rstrip().endswith("all checks passed")
    paid = served.epochs[PAID]
    assert f"ok bundle: SHA-256 {hashlib.sha256(paid.bundle).hexdigest()} == the on-chain resultsHash" in out
    assert f"ok manifest: SHA-256 {hashlib.sha256(paid.manifest).hexdigest()} == the on-chain manifestHash" in out
    assert "ok recompute: bundle and manifest rebuilt from the inputs byte for byte" in out
    for signed in served.reports[1:]:
        assert f"ok report {signed.digest}: digest and Ed25519 signature (job {JOB}" in out
    assert f"ok job {JOB}: 2 reports listed in its proof of execution, each linked to the one before" in out
    assert "not hardware-attested (the dev quote authority)" in out
    total = sum(leaf.amount for leaf in paid.leaves)
    assert f"ok chain: fee {total * FEE_BPS // 10_000} == total × {FEE_BPS} bps" in out
    assert "ok payments: 1 claims and 1 distributions match their leaves, no leaf paid twice" in out
    unpaid = paid.leaves[3].amount  # leaf 0 claimed, 1 and 2 distributed
    assert f"note payments: paid {total - unpaid} of {total} (3 of 4 leaves); unpaid {unpaid} (leaves 3)" in out


def test_a_payout_not_published_yet_is_said_and_the_rest_passes(
    served: World, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run_main(served.args(UNPUBLISHED), capsys)
    assert code == 0, out
    assert f"note payout: not published yet for epoch {UNPUBLISHED}" in out
    assert "ok recompute:" in out


def test_tampered_inputs_are_named(served: World, capsys: pytest.CaptureFixture[str]) -> None:
    path = served.path(PAID, "inputs")

    def change(document: dict[str, Any]) -> None:
        document["snapshots"][0]["book"]["bids"][0][1] = "3"  # more size at the touch than the oracle saw

    served.routes[path] = (200, replace_json(served.baseline[path][1], change))
    code, out = run_main(served.args(PAID), capsys)
    assert code == 1
    found = hashlib.sha256(served.routes[path][1]).hexdigest()
    expected = parse(served.epochs[PAID].bundle)["inputs_digest"]
    assert f"FAIL inputs: SHA-256 is {found}, bundle.inputs_digest is {expected}" in out
    assert any(line.startswith("FAIL recompute: differs: bundle.") for line in fails(out))
    assert "ok bundle: SHA-256" in out  # the rest is still checked, and passes


def test_a_tampered_bundle_is_named(served: World, capsys: pytest.CaptureFixture[str]) -> None:
    path = served.path(PAID, "bundle")

    def change(document: dict[str, Any]) -> None:
        document["participants"][0]["depth"] = "1"

    served.routes[path] = (200, replace_json(served.baseline[path][1], change))
    code, out = run_main(served.args(PAID), capsys)
    assert code == 1
    found = hashlib.sha256(served.routes[path][1]).hexdigest()
    on_chain = hashlib.sha256(served.epochs[PAID].bundle).hexdigest()
    assert f"FAIL bundle: SHA-256 is {found}, the on-chain resultsHash is {on_chain}" in out
    assert f"FAIL manifest.results_digest is {on_chain}, SHA-256 of the bundle is {found}" in out
    assert "FAIL recompute: differs: bundle.participants[0].depth" in out


def test_one_amount_changed_in_the_manifest_is_named_by_the_cli(served: World) -> None:
    path = served.path(PAID, "manifest")

    def change(document: dict[str, Any]) -> None:
        document["leaves"][1]["amount"] = str(int(document["leaves"][1]["amount"]) + 1)

    served.routes[path] = (200, replace_json(served.baseline[path][1], change))
    done = run_cli(*served.args(PAID))
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    found = hashlib.sha256(served.routes[path][1]).hexdigest()
    on_chain = hashlib.sha256(served.epochs[PAID].manifest).hexdigest()
    assert f"FAIL manifest: SHA-256 is {found}, the on-chain manifestHash is {on_chain}" in out
    assert "FAIL manifest: the 4 leaves rebuild root" in out
    assert "FAIL recompute: differs: manifest.leaves[1].amount" in out
    leaf = served.epochs[PAID].leaves[1]
    assert "FAIL distribute of leaves 1..2 (tx 0x" in out
    assert f"paid {leaf.amount + served.epochs[PAID].leaves[2].amount}, the leaves sum to" in out
    assert out.rstrip().endswith("checks failed")


def test_a_report_with_a_broken_signature_is_named(served: World, capsys: pytest.CaptureFixture[str]) -> None:
    signed = served.reports[2]
    broken = SignedReport(
        signed.report, signed.digest, ("00" if signed.signature[:2] != "00" else "11") + signed.signature[2:]
    )
    served.routes[f"/api/v1/payouts/reports/{signed.digest}.json"] = (200, report_bytes(broken))
    code, out = run_main(served.args(PAID), capsys)
    assert code == 1
    key = KEY.public_hex
    assert fails(out) == [
        f"FAIL report {signed.digest}: the Ed25519 signature does not verify under its signing key {key}"
    ]


def test_a_report_whose_job_has_no_proof_links_to_no_attestation(
    served: World, capsys: pytest.CaptureFixture[str]
) -> None:
    del served.routes[f"/api/v1/attestation/proofs/{JOB}"]
    code, out = run_main(served.args(PAID), capsys)
    assert code == 1
    assert fails(out) == [
        f"FAIL proof of execution of job {JOB} is not served at {served.base}/api/v1/attestation/proofs/{JOB} "
        "(HTTP 404): its reports' key links to no accepted attestation"
    ]


def test_a_proof_naming_another_key_links_the_reports_to_no_attestation(
    served: World, capsys: pytest.CaptureFixture[str]
) -> None:
    served.routes[f"/api/v1/attestation/proofs/{JOB}"] = (
        200,
        proof_document(served.reports, signing_key=OTHER_KEY.public_hex),
    )
    code, out = run_main(served.args(PAID), capsys)
    assert code == 1
    for signed in served.reports[1:]:
        assert (
            f"FAIL report {signed.digest} (job {JOB}, sequence {signed.sequence}): signed by key {KEY.public_hex}, "
            f"the proof of execution names key {OTHER_KEY.public_hex}: the key links to no accepted attestation"
        ) in out


def test_a_report_missing_from_its_proof_is_named(served: World, capsys: pytest.CaptureFixture[str]) -> None:
    served.routes[f"/api/v1/attestation/proofs/{JOB}"] = (200, proof_document(served.reports[:2]))
    code, out = run_main(served.args(PAID), capsys)
    assert code == 1
    last = served.reports[2]
    assert fails(out) == [
        f"FAIL report {last.digest} (job {JOB}, sequence 2): the proof of execution lists nothing at sequence 2"
    ]


def test_require_hardware_refuses_the_dev_quote_authority(served: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_main(served.args(PAID, "--require-hardware"), capsys)
    assert code == 1
    assert fails(out) == [
        f"FAIL job {JOB}: key {KEY.public_hex[:16]}… bound by attestation record 7, not hardware-attested (the dev "
        "quote authority) and --require-hardware is set"
    ]


def test_a_root_on_chain_that_is_not_the_manifests_is_named(served: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_main(served.args(WRONG_ROOT), capsys)
    assert code == 1
    root = parse(served.epochs[WRONG_ROOT].manifest)["merkle_root"]
    assert fails(out) == [f"FAIL manifest.merkle_root is {root}, the on-chain merkleRoot is 0x{'44' * 32}"]


def test_an_explicit_artifacts_base_is_used(served: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_main(served.args(PAID, "--artifacts", served.base + "/"), capsys)
    assert code == 0, out


def test_an_unreachable_chain_or_server_and_a_bad_address_exit_2(
    served: World, capsys: pytest.CaptureFixture[str]
) -> None:
    unused = "http://127.0.0.1:9"  # the discard port: nothing listens on loopback
    code, out = run_main(["verify", "--rpc", unused, "--campaign", served.campaign, "--epoch", "0"], capsys)
    assert (code, out.startswith("unavailable: cannot reach the chain")) == (2, True), out
    code, out = run_main(served.args(PAID, "--artifacts", unused), capsys)
    assert (code, out.startswith("unavailable: cannot download")) == (2, True), out
    code, out = run_main(["verify", "--rpc", served.rpc, "--campaign", "0x1234", "--epoch", "0"], capsys)
    assert (code, out) == (2, "usage: --campaign '0x1234' is not a 0x address\n")


def test_the_verifier_checks_pure_evidence_without_io() -> None:
    """The checks are pure: the same chain facts and documents give the same lines, without a network."""
    chain = verify.ChainEpoch(
        chain_id=31337,
        campaign="0x" + "c0" * 20,
        epoch=0,
        terms=verify.CampaignTerms(start=0, end=600, epoch_length=180, fee_bps=0, metadata_hash="0x" + "11" * 32),
        results=(),
        payouts=(),
        claims=(),
        distributions=(),
    )
    absent = verify.Download(url="http://x/inputs.json", body=None, status=404)
    checks = verify.check_epoch(
        chain,
        verify.Evidence(inputs=absent, bundle=absent, manifest=absent),
        require_hardware=False,
        running=cli.software_version(),
    )
    lines = [c.line() for c in checks]
    assert "FAIL chain: no ResultsRecorded for epoch 0: the results are not recorded" in lines
    assert "FAIL inputs is not served at http://x/inputs.json (HTTP 404)" in lines
    assert "FAIL recompute: not possible without the inputs, the bundle and the manifest" in lines


def test_a_bundle_that_pays_out_less_than_the_epoch_may_is_named() -> None:
    """Inputs and bundle consistent with each other, digests on chain, yet half the epoch's budget held back (it would
    go back to the creator): the escrow's own arithmetic says what the epoch may pay."""
    terms = verify.CampaignTerms(
        start=0, end=720, epoch_length=180, fee_bps=100, metadata_hash="0x" + "11" * 32, budget=1_000_000
    )
    chain = verify.ChainEpoch(
        chain_id=31337, campaign="0x" + "c0" * 20, epoch=1, terms=terms, results=(), payouts=(), claims=(),
        distributions=(),
    )  # fmt: skip
    # Four epochs of 250,000 each; T + floor(T / 100) <= 250,000 gives T = 247,525.
    assert verify.check_budget(chain, {"parameters": {"epoch_budget": "247525"}}).line() == (
        "ok bundle.parameters.epoch_budget 247525 == what the escrow lets epoch 1 pay"
    )
    assert verify.check_budget(chain, {"parameters": {"epoch_budget": "123762"}}).line() == (
        "FAIL bundle.parameters.epoch_budget is '123762', the escrow lets epoch 1 pay 247525"
    )


def test_payments_the_escrow_would_refuse_are_still_named() -> None:
    """What a correct escrow never emits (a leaf paid twice, a claim of another amount, more than the total) is
    named all the same: the verifier does not trust the contract it checks."""
    leaves = [{"index": i, "account": "0x" + c * 40, "amount": "10"} for i, c in enumerate("abc")]
    manifest = canonical_bytes({"leaves": leaves, "total": "30"})
    payout = verify.PayoutRecord(merkle_root="0x" + "00" * 32, manifest_hash="00" * 32, total=30, fee=0)
    chain = verify.ChainEpoch(
        chain_id=31337,
        campaign="0x" + "c0" * 20,
        epoch=0,
        terms=verify.CampaignTerms(start=0, end=600, epoch_length=180, fee_bps=0, metadata_hash="0x" + "11" * 32),
        results=(),
        payouts=(payout,),
        claims=(verify.ClaimEvent(1, "0x" + "b" * 40, 11, "0xt1"), verify.ClaimEvent(5, "0x" + "b" * 40, 1, "0xt2")),
        distributions=(verify.DistributionEvent(0, 2, 20, "0xt3"),),
    )
    served = verify.Download(url="http://x/manifest.json", body=manifest, status=200)
    evidence = verify.Evidence(inputs=served, bundle=served, manifest=served)
    assert [c.line() for c in verify.check_payments(chain, evidence)] == [
        f"FAIL claim of leaf 1 (tx 0xt1): paid 11 to 0x{'b' * 40}, the leaf is 10 to 0x{'b' * 40}",
        "FAIL claim (tx 0xt2): index 5 is not a leaf of the manifest",
        "FAIL leaf 1 is paid twice (tx 0xt1 and tx 0xt3)",
        "FAIL payments: 32 paid, more than the published total 30",
        "note payments: paid 32 of 30 (2 of 3 leaves); unpaid 0 (leaves 2)",
    ]


def test_the_verifier_imports_no_django() -> None:
    probe = "import sys, payouts.audit.verify, payouts.audit.cli; sys.exit(1 if 'django' in sys.modules else 0)"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
