"""The "depth is real" page in a real browser: each executor's quote verified again in the visitor's browser with
dcap-qvl's JavaScript port, its verdict equal to the server's — for a dev-root executor that passed the real gate
and for the real Intel TDX quote fixture — the evidence downloaded from the page verified by the offline verifier
(and refused after one changed byte), the campaign's attested share shown; axe-core clean, fit for a phone."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from attestation import gate
from attestation.models import AttestationRecord, CollateralDocument, ExecutorRecord
from devnet.tdx.authority import DevQuoteAuthority
from payouts.models import EpochPreview
from tests.attestation.test_gate import FakeExecutor, trust_dev_authority
from tests.attestation.test_quote import AT, FIXTURES
from tests.browser.page_checks import check_page
from tests.payouts.test_campaign_page import DOWN, campaign_with
from tests.plugins.require import require

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
INTEL_MRTD = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"
INTEL_RTMRS = [
    "44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0",
    "0084452c01668329d4bc06acdf58a7205c26743304509973949e5619bf81a6a7aea8c323c173019b3093d54e579e9378",
    "d833feef2cd945148aa38ead2c53e9b7f138190aaaebfc551dccd829fc207aa3ba80b70870d7330733642e01d48c3132",
    "00" * 48,
]


@pytest.fixture
def world(asgi_server: str, settings: Any, tmp_path: Path) -> dict[str, Any]:
    """Rows made before the browser starts: a dev-root executor through the real gate, an executor holding the real
    Intel quote fixture as its accepted evidence, and a running campaign whose preview attributes depth to both."""
    require("the real TDX quote fixture", (FIXTURES / "tdx_quote").exists(), f"looked in {FIXTURES}")
    settings.CHAIN_RPC_URL = DOWN
    authority = DevQuoteAuthority.ephemeral()
    trust_dev_authority(settings, tmp_path, authority)
    fake = FakeExecutor(authority)
    gate.attested_identity(fake)
    dev = ExecutorRecord.objects.get(url=fake.base_url)
    quote = (FIXTURES / "tdx_quote").read_bytes()
    intel = ExecutorRecord.objects.create(
        url="https://tdx.example",
        state="verified",
        signing_key="a1" * 32,
        sealing_key="b2" * 32,
        mrtd=INTEL_MRTD,
        rtmrs=INTEL_RTMRS,
        tcb_status="UpToDate",
        hardware_attested=True,
        build_version="1.0.0",
        last_verified_at=timezone.now(),
    )
    AttestationRecord.objects.create(
        executor=intel,
        nonce="00" * 32,
        signing_key=intel.signing_key,
        sealing_key=intel.sealing_key,
        quote_sha256=hashlib.sha256(quote).hexdigest(),
        quote_b64=base64.b64encode(quote).decode(),
        collateral=CollateralDocument.objects.create(
            sha256="ff" * 32, text=(FIXTURES / "tdx_quote_collateral.json").read_text()
        ),
        verified_at_unix=AT,
        runtime_config=dev.attestations.get(ok=True).runtime_config,
        ok=True,
        tcb_status="UpToDate",
        mrtd=INTEL_MRTD,
        rtmrs=INTEL_RTMRS,
        hardware_attested=True,
    )
    campaign = campaign_with()
    figures = {"orders_checked": 9, "orders_not_visible": 0, "fills_checked": 0, "fills_unconfirmed": 0}
    EpochPreview.objects.create(
        campaign=campaign,
        epoch=2,
        as_of_ms=int(timezone.now().timestamp() * 1000),
        bundle={},
        attested_depth={
            "samples": 9,
            "book_quote": "2000",
            "by_identity": {
                dev.signing_key: {**figures, "depth_quote": "500"},
                intel.signing_key: {**figures, "depth_quote": "300"},
            },
        },
    )
    return {"dev": dev, "intel": intel, "campaign": campaign, "root": tmp_path / "dev-root.der"}


def test_the_browser_verifies_each_quote_and_agrees_with_the_server(
    asgi_server: str, world: dict[str, Any], browser_page: Any, tmp_path: Path
) -> None:
    page = browser_page
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{asgi_server}/proof/")
    dev, intel = world["dev"], world["intel"]
    for executor, tcb in ((dev, "UpToDate"), (intel, "UpToDate")):
        verdict = page.locator(f'[data-executor="{executor.pk}"] [data-browser-verdict]')
        verdict.locator("xpath=self::*[@data-agrees]").wait_for(timeout=60_000)
        assert verdict.get_attribute("data-ok") == "true", verdict.inner_text()
        assert verdict.get_attribute("data-agrees") == "true", verdict.inner_text()
        assert verdict.get_attribute("data-tcb-status") == tcb
    # The dev executor's REPORTDATA binds its keys and our nonce; the Intel sample binds someone else's.
    dev_verdict = page.locator(f'[data-executor="{dev.pk}"] [data-browser-verdict]')
    assert dev_verdict.get_attribute("data-report-data-bound") == "true"
    assert page.locator(f'[data-executor="{dev.pk}"] .badge.dev').inner_text() == "not hardware-attested (dev root)"
    assert page.locator(f'[data-executor="{intel.pk}"] .badge.hw').inner_text() == "hardware-attested"
    # The campaign's share: 500 + 300 of 2000, of which 500 under the dev root.
    row = page.locator(f'[data-campaign="{world["campaign"].address}"]')
    assert row.locator("[data-attested-share]").inner_text() == "40 %"
    assert row.locator("[data-dev-share]").inner_text() == "25 %"
    assert not errors, errors
    check_page(page, "proof")

    # The evidence downloaded from the page verifies offline, and fails once a byte is changed.
    with page.expect_download() as caught:
        page.locator(f'[data-executor="{dev.pk}"] [data-evidence-download]').click()
    evidence = tmp_path / "evidence.json"
    caught.value.save_as(str(evidence))
    command = [sys.executable, "-m", "attestation.offline", "verify", str(evidence), "--root-ca", str(world["root"])]
    ok = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bent = bytearray(evidence.read_bytes())
    bent[bent.index(b'"quote_b64":"') + 700] ^= 0x01
    evidence.write_bytes(bytes(bent))
    refused = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert refused.returncode in (1, 2), refused.stdout
    assert "verified:" not in refused.stdout


def test_the_campaign_proof_page_lists_the_executors_behind_its_depth(
    asgi_server: str, world: dict[str, Any], browser_page: Any
) -> None:
    page = browser_page
    campaign = world["campaign"]
    page.goto(f"{asgi_server}/proof/campaigns/{campaign.chain_id}/{campaign.address}")
    assert "40 %" in page.locator("p[data-attested-share]").inner_text()
    for executor in (world["dev"], world["intel"]):
        verdict = page.locator(f'[data-executor="{executor.pk}"] [data-browser-verdict]')
        verdict.locator("xpath=self::*[@data-agrees]").wait_for(timeout=60_000)
        assert verdict.get_attribute("data-agrees") == "true", verdict.inner_text()
    check_page(page, "campaign-proof")
