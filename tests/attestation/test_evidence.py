"""Published evidence and the offline verifier: an accepted attestation keeps the collateral it was verified with;
`/proof/executors/<id>/evidence.json` serves it in canonical form; `python -m attestation.offline verify` accepts
it (with the published allowlist), refuses it after any one byte is changed, refuses it under another root, and
imports no framework code. Also the registration rate limit per executor."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from attestation import gate
from attestation.domain.evidence import EvidenceFormatError, evidence_bytes, verify_evidence
from attestation.models import AttestationRecord, CollateralDocument, ExecutorRecord
from devnet.tdx.authority import DevQuoteAuthority
from executor.identity import Identity
from tests.attestation.runtime import ours
from tests.attestation.test_gate import FakeExecutor, trust_dev_authority
from tests.attestation.test_quote import AT, FIXTURES
from tests.plugins.require import require

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def authority() -> DevQuoteAuthority:
    return DevQuoteAuthority.ephemeral()


@pytest.fixture
def verified(settings: Any, tmp_path: Path, authority: DevQuoteAuthority) -> tuple[ExecutorRecord, DevQuoteAuthority]:
    trust_dev_authority(settings, tmp_path, authority)
    gate.attested_identity(FakeExecutor(authority))
    return ExecutorRecord.objects.get(url="http://executor.test"), authority


def download(executor_id: int) -> bytes:
    response = Client().get(f"/proof/executors/{executor_id}/evidence.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert f'filename="executor-{executor_id}-evidence.json"' in response["Content-Disposition"]
    return response.content


def allowlist() -> dict[str, Any]:
    doc: dict[str, Any] = Client().get("/api/v1/attestation/allowlist").json()
    return doc


def test_an_accepted_attestation_keeps_its_collateral_and_time(verified: Any, settings: Any) -> None:
    executor, _ = verified
    record = AttestationRecord.objects.get(executor=executor, ok=True)
    assert record.collateral is not None
    assert record.collateral.text == Path(settings.ATTESTATION_COLLATERAL_FILE).read_text()
    # Re-attested under the same collateral: one stored document, not one per check.
    gate.attested_identity(FakeExecutor(verified[1]))
    assert CollateralDocument.objects.count() == 1
    assert AttestationRecord.objects.filter(ok=True).count() == 2
    assert record.verified_at_unix is not None
    assert abs(record.verified_at_unix - time.time()) < 60


def test_the_download_verifies_offline_with_the_allowlist(verified: Any) -> None:
    executor, authority = verified
    data = download(executor.pk)
    doc = json.loads(data)
    assert data == evidence_bytes(doc["body"])  # canonical: every byte matters
    body = doc["body"]
    assert body["root"]["kind"] == "dev"
    assert base64.b64decode(body["root"]["ca_der_b64"]) == authority.root_ca_der
    assert "url" not in body["executor"]  # where an executor runs is not published
    assert body["server_verdict"]["mrtd"] == executor.mrtd
    result = verify_evidence(data, allowlist=allowlist(), root_ca_der=authority.root_ca_der)
    assert result.ok, result.as_json()
    assert [c.name for c in result.checks] == [
        "digest",
        "quote",
        "report_data",
        "measurement",
        "server_verdict",
        "allowlisted",
    ]
    assert not result.hardware  # the dev root
    assert result.mrtd == executor.mrtd


def test_one_changed_byte_anywhere_fails_it(verified: Any) -> None:
    executor, authority = verified
    data = download(executor.pk)
    quote_at = data.index(b'"quote_b64":"') + 20
    digest_at = data.index(b'"digest":"') + 15
    positions = sorted({*range(0, len(data), max(1, len(data) // 150)), quote_at, digest_at, len(data) - 2})
    for at in positions:
        bent = bytearray(data)
        bent[at] ^= 0x01
        try:
            result = verify_evidence(bytes(bent), root_ca_der=authority.root_ca_der)
        except EvidenceFormatError:
            continue  # unreadable: refused too
        assert not result.ok, f"byte {at} changed and the evidence still verified"


def test_a_dev_root_brought_by_the_file_itself_is_not_trusted_unless_asked(verified: Any) -> None:
    executor, _ = verified
    data = download(executor.pk)
    refused = verify_evidence(data)  # anyone can make a root and sign a quote under it
    assert [c.name for c in refused.checks if not c.ok] == ["root"]
    well_formed = verify_evidence(data, trust_embedded_dev_root=True)
    assert well_formed.ok
    assert not well_formed.hardware


def test_a_published_verdict_that_is_not_the_quotes_is_refused(verified: Any) -> None:
    executor, authority = verified
    doc = json.loads(download(executor.pk))
    doc["body"]["server_verdict"]["tcb_status"] = "OutOfDate"
    result = verify_evidence(evidence_bytes(doc["body"]), root_ca_der=authority.root_ca_der)
    assert [c.name for c in result.checks if not c.ok] == ["server_verdict"]
    doc["body"]["server_verdict"]["tcb_status"] = "UpToDate"
    doc["body"]["server_verdict"]["hardware_attested"] = True  # a dev-root quote sold as hardware
    result = verify_evidence(evidence_bytes(doc["body"]), root_ca_der=authority.root_ca_der)
    assert [c.name for c in result.checks if not c.ok] == ["server_verdict"]


def test_another_root_refuses_the_quote(verified: Any) -> None:
    executor, _ = verified
    result = verify_evidence(download(executor.pk), root_ca_der=DevQuoteAuthority.ephemeral().root_ca_der)
    assert not result.ok
    quote = next(c for c in result.checks if c.name == "quote")
    assert not quote.ok


def test_a_measurement_not_on_the_allowlist_then_is_refused(verified: Any) -> None:
    executor, authority = verified
    published = allowlist()
    for entry in published["entries"]:
        entry["mrtd"] = "ee" * 48
    result = verify_evidence(download(executor.pk), allowlist=published, root_ca_der=authority.root_ca_der)
    assert [c.name for c in result.checks if not c.ok] == ["allowlisted"]


def test_the_real_intel_quote_verifies_but_binds_someone_elses_nonce() -> None:
    require("the real TDX quote fixture", (FIXTURES / "tdx_quote").exists(), f"looked in {FIXTURES}")
    keys = Identity.generate().public()
    intel_mrtd = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"
    body: dict[str, Any] = {
        "executor": {"id": 1, **keys, "build_version": "x"},
        "attestation": {
            "record": 1,
            "verified_at": "2025-06-27T00:00:00+00:00",
            "verified_at_unix": AT,
            "nonce": "00" * 32,
            "runtime_config": ours(),
        },
        "quote_b64": base64.b64encode((FIXTURES / "tdx_quote").read_bytes()).decode(),
        "collateral": (FIXTURES / "tdx_quote_collateral.json").read_text(),
        "ita_token": "",
        "root": {"kind": "intel", "ca_der_b64": ""},
        "server_verdict": {"ok": True, "mrtd": intel_mrtd},
    }
    result = verify_evidence(evidence_bytes(body))
    by_name = {c.name: c for c in result.checks}
    assert by_name["quote"].ok
    assert result.tcb_status == "UpToDate"
    assert result.mrtd == intel_mrtd
    assert not by_name["report_data"].ok  # Intel signed it, but not for our nonce and these keys
    assert not result.ok


def test_unknown_executor_or_post_is_refused(verified: Any) -> None:
    executor, _ = verified
    assert Client().get(f"/proof/executors/{executor.pk + 99}/evidence.json").status_code == 404
    assert Client().post(f"/proof/executors/{executor.pk}/evidence.json").status_code == 405


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO")}
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.mark.slow
def test_the_command_line_verifies_refuses_and_imports_no_framework(verified: Any, tmp_path: Path) -> None:
    executor, authority = verified
    evidence = tmp_path / "evidence.json"
    evidence.write_bytes(download(executor.pk))
    (tmp_path / "allowlist.json").write_text(json.dumps(allowlist()))
    (tmp_path / "root.der").write_bytes(authority.root_ca_der)
    probe = (
        "import runpy, sys; sys.argv = ['x'] + sys.argv[1:]; "
        "from attestation.offline import cli; code = cli.main(sys.argv[1:]); "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework', 'celery', 'mrmarket', "
        "'execution', 'campaigns', 'payouts') or (m.startswith('attestation.') and not "
        "m.startswith(('attestation.domain', 'attestation.offline')))); "
        "print('FRAMEWORK', bad) if bad else None; sys.exit(3 if bad else code)"
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", probe, *args], cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=120
        )

    ok = run(
        "verify",
        str(evidence),
        "--allowlist",
        str(tmp_path / "allowlist.json"),
        "--root-ca",
        str(tmp_path / "root.der"),
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "verified: NOT hardware-attested" in ok.stdout
    bent = bytearray(evidence.read_bytes())
    bent[bent.index(b'"quote_b64":"') + 400] ^= 0x01
    (tmp_path / "bent.json").write_bytes(bytes(bent))
    refused = run("verify", str(tmp_path / "bent.json"), "--json")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert json.loads(refused.stdout)["ok"] is False
    (tmp_path / "junk.json").write_bytes(b"{not json")
    assert run("verify", str(tmp_path / "junk.json")).returncode == 2
    assert run("verify", str(tmp_path / "missing.json")).returncode == 2


def test_new_identities_are_rate_limited_per_executor(
    settings: Any, tmp_path: Path, authority: DevQuoteAuthority
) -> None:
    trust_dev_authority(settings, tmp_path, authority)
    settings.ATTESTATION_REGISTRATIONS_PER_HOUR = 2
    executor = FakeExecutor(authority)
    gate.attested_identity(executor)
    second = executor.identity = Identity.generate()  # restarted: a second identity
    gate.attested_identity(executor)
    executor.identity = Identity.generate()  # a third within the hour
    with pytest.raises(gate.AttestationFailed) as caught:
        gate.attested_identity(executor)
    assert caught.value.code == "registration_rate_limited"
    record = ExecutorRecord.objects.get(url=executor.base_url)
    assert record.state == "unreachable"  # out of selection, nothing revoked
    assert record.verification_failures == 0  # and not held against it as a failed verification
    accepted = AttestationRecord.objects.filter(executor=record, ok=True)
    assert accepted.count() == 2
    assert not accepted.filter(signing_key=executor.identity.signing.public_hex).exists()
    # A key it registered already is never limited: re-attestation of a running executor goes through.
    executor.identity = second
    assert gate.attested_identity(executor).signing_key == second.signing.public_hex
    assert ExecutorRecord.objects.get(pk=record.pk).state == "verified"
