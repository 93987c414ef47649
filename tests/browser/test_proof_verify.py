"""Each executor's TDX quote verified in a real browser by static/dist/proof_verify.js (dcap-qvl's JavaScript port
plus the checks it lacks), compared case by case with the Python binding's verdict on the same evidence.

A tiny page served from a local http.server thread, under the project's Content-Security-Policy, holds one
`[data-evidence-url]` element per case; the bundle fetches each evidence document, verifies it and writes its
verdict. The same bodies are also given to the module's `verifyEvidence` directly, to compare every field.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from attestation.domain.quote import verify_quote
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.evidence import binding, evidence_body, evidence_document
from tests.browser.page_checks import check_page
from tests.plugins.require import require, requires

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "static" / "dist"
BUNDLE = DIST / "proof_verify.js"
PORT_SCRIPT = Path(__file__).with_name("dcap_qvl_port.cjs")
FIXTURES = Path(settings.BASE_DIR).parent / "shared" / "fixtures" / "tdx"
HAVE_FIXTURES = (FIXTURES / "tdx_quote").exists() and (FIXTURES / "tdx_quote_outdated").exists()

INTEL_AT = 1_751_000_000  # the fixture's collateral is current from 1750400000 to 1752000000
OUTDATED_AT = 1_772_000_000
DEV_AT = 1_770_000_000
DAY = 86_400
INTEL_MRTD = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"
DEV_MRTD = bytes(range(48))
DEV_RTMRS = tuple(bytes([i + 1]) * 48 for i in range(4))

# Evidence dcap-qvl 0.7.0 refuses and @phala/dcap-qvl 0.3.9 by itself accepts; proof_verify.js makes the check.
PORT_GAPS = (
    "gap_foreign_root_crl",
    "gap_foreign_pck_crl",
    "gap_stale_root_crl",
    "gap_stale_pck_crl",
    "gap_no_crl_for_pck_leaf",
    "gap_expired_certificates",
    "gap_unknown_tdx_module",
    "gap_qe_vendor_id",
)
INTEL_CASES = ("intel", "intel_flipped_600", "intel_outdated", "intel_expired", "intel_under_dev_root")


def _intel(name: str) -> tuple[bytes, str]:
    return (FIXTURES / name).read_bytes(), (FIXTURES / f"{name}_collateral.json").read_text()


def _bodies() -> dict[str, dict[str, Any]]:
    """Every case's evidence body, keyed by name; the Intel ones only where the fixture folder is present."""
    from devnet.tdx import authority as dev

    authority, other = dev.DevQuoteAuthority.ephemeral(), dev.DevQuoteAuthority.ephemeral()
    bound = binding("dev")
    root = authority.root_ca_der

    def quote(**kw: Any) -> bytes:
        return authority.quote(bound["report_data"], mrtd=DEV_MRTD, rtmrs=DEV_RTMRS, **kw)

    def body(raw: bytes, collateral: str, at: int, root_ca_der: bytes | None, record: int) -> dict[str, Any]:
        return evidence_body(
            quote=raw, collateral=collateral, at=at, root_ca_der=root_ca_der, bound=bound, record=record
        )

    def patched(**fields: str) -> str:
        return json.dumps({**json.loads(authority.collateral_json(now=DEV_AT)), **fields})

    current = json.loads(authority.collateral_json(now=DEV_AT))
    stale = json.loads(authority.collateral_json(now=DEV_AT - 40 * DAY))  # CRLs' next update 10 days ago
    foreign = json.loads(other.collateral_json(now=DEV_AT))
    late = 2_600_000_000  # 2052: the dev certificates end in 2050, the collateral is made current for then

    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(dev.TEE_TCB_SVNS, "TDX_02", bytes([3, 2, 2] + [0] * 13))  # module version 2: not in the TCB info
        unknown_module = quote(tcb="TDX_02")
        mp.setattr(dev, "QE_VENDOR_ID", bytes(16))
        foreign_vendor = quote()

    cases = {
        "dev": body(quote(), authority.collateral_json(now=DEV_AT), DEV_AT, root, 10),
        "dev_out_of_date": body(quote(tcb="OutOfDate"), authority.collateral_json(now=DEV_AT), DEV_AT, root, 11),
        "dev_under_intel_root": body(quote(), authority.collateral_json(now=DEV_AT), DEV_AT, None, 12),
        "dev_bad_collateral": body(quote(), "not json", DEV_AT, root, 13),
        "dev_garbage_quote": body(b"\x04\x00", authority.collateral_json(now=DEV_AT), DEV_AT, root, 14),
        "gap_foreign_root_crl": body(quote(), patched(root_ca_crl=foreign["root_ca_crl"]), DEV_AT, root, 20),
        "gap_foreign_pck_crl": body(quote(), patched(pck_crl=foreign["pck_crl"]), DEV_AT, root, 21),
        "gap_stale_root_crl": body(quote(), patched(root_ca_crl=stale["root_ca_crl"]), DEV_AT, root, 22),
        "gap_stale_pck_crl": body(quote(), patched(pck_crl=stale["pck_crl"]), DEV_AT, root, 23),
        "gap_no_crl_for_pck_leaf": body(quote(), patched(pck_crl=current["root_ca_crl"]), DEV_AT, root, 24),
        "gap_expired_certificates": body(quote(), authority.collateral_json(now=late), late, root, 25),
        "gap_unknown_tdx_module": body(unknown_module, authority.collateral_json(now=DEV_AT), DEV_AT, root, 26),
        "gap_qe_vendor_id": body(foreign_vendor, authority.collateral_json(now=DEV_AT), DEV_AT, root, 27),
    }
    if HAVE_FIXTURES:
        raw, collateral = _intel("tdx_quote")
        flipped = bytearray(raw)
        flipped[600] ^= 0x01
        outdated, outdated_collateral = _intel("tdx_quote_outdated")
        cases |= {
            "intel": body(raw, collateral, INTEL_AT, None, 1),
            "intel_flipped_600": body(bytes(flipped), collateral, INTEL_AT, None, 2),
            "intel_outdated": body(outdated, outdated_collateral, OUTDATED_AT, None, 3),
            "intel_expired": body(raw, collateral, 1_753_000_000, None, 4),
            "intel_under_dev_root": body(raw, collateral, INTEL_AT, root, 5),
        }
    return cases


def _documents(bodies: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The evidence documents the page fetches: one per body, and a few that are wrong as documents."""
    docs = {name: evidence_document(body) for name, body in bodies.items()}
    dev = bodies["dev"]
    tampered = evidence_document(dev)
    tampered["body"] = {**dev, "attestation": {**dev["attestation"], "verified_at_unix": DEV_AT + 1}}
    docs["doc_digest_mismatch"] = tampered
    docs["doc_wrong_schema"] = {**evidence_document(dev), "schema": "mrmarket.something-else/v1"}
    disagreeing = {**dev, "server_verdict": {**dev["server_verdict"], "tcb_status": "OutOfDate"}}
    docs["doc_server_disagrees"] = evidence_document(disagreeing)
    return docs


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Executors verified in your browser</title>
<script type="module" src="/static/dist/proof_verify.js"></script></head>
<body><main><h1>Executors verified in your browser</h1>{sections}</main></body></html>
"""
SECTION = """<section id="case-{name}" data-evidence-url="/evidence/{name}.json"><h2>{name}</h2>
<p data-browser-verdict aria-live="polite"></p></section>"""


def _csp() -> str:
    directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


class _Handler(SimpleHTTPRequestHandler):
    """The page and evidence from the test's folder, /static/dist/ from the built bundles, under our CSP."""

    def translate_path(self, path: str) -> str:
        if path.startswith("/static/dist/"):
            return str(DIST / path.removeprefix("/static/dist/").split("?")[0])
        return super().translate_path(path)

    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", _csp())
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, dict[str, Any]]]]:
    require("the browser bundle", BUNDLE.exists(), "make static/dist/.built")
    bodies = _bodies()
    folder = tmp_path_factory.mktemp("proof_verify")
    (folder / "evidence").mkdir()
    names = [*_documents(bodies), "doc_missing"]
    for name, doc in _documents(bodies).items():
        (folder / "evidence" / f"{name}.json").write_text(json.dumps(doc))
    sections = "".join(SECTION.format(name=html.escape(name)) for name in names)
    (folder / "index.html").write_text(PAGE.format(sections=sections))
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", bodies
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


VERDICT_ATTRS = ("ok", "tcbStatus", "agrees", "reportDataBound", "reason")


@pytest.fixture(scope="module")
def browser(served) -> Iterator[dict[str, Any]]:
    """One visit of the page: every element's verdict as shown, every body's `verifyEvidence` result, and any
    uncaught error or CSP violation the page produced."""
    if CHROMIUM is None:
        require("Chromium", CHROMIUM, "apt-get install chromium; .ci/run installs it")
    from playwright.sync_api import expect, sync_playwright

    url, bodies = served
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = chromium.new_page()
            page.set_default_timeout(120_000)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
            page.goto(url + "/")
            sections = page.locator("[data-evidence-url]")
            expect(page.locator("[data-browser-verdict][data-ok]")).to_have_count(sections.count(), timeout=120_000)
            shown = {}
            for i in range(sections.count()):
                section = sections.nth(i)
                target = section.locator("[data-browser-verdict]")
                name = str(section.get_attribute("id")).removeprefix("case-")
                shown[name] = {attr: target.evaluate(f"e => e.dataset.{attr}") for attr in VERDICT_ATTRS}
                shown[name]["verdict_line"] = target.locator("[data-verdict-line]").inner_text()
                shown[name]["agreement_line"] = target.locator("[data-agreement-line]").inner_text()
            results = {
                name: page.evaluate(
                    "async (body) => (await import('/static/dist/proof_verify.js')).verifyEvidence(body)", body
                )
                for name, body in bodies.items()
            }
            check_page(page, "proof-browser-verify")
            yield {"shown": shown, "results": results, "errors": errors, "bodies": bodies}
        finally:
            chromium.close()


def _python(body: dict[str, Any]):
    root = body["root"]
    return verify_quote(
        base64.b64decode(body["quote_b64"]),
        body["collateral"],
        now=body["attestation"]["verified_at_unix"],
        root_ca_der=base64.b64decode(root["ca_der_b64"]) if root["kind"] == "dev" else None,
    )


def _needs(name: str) -> None:
    if name.startswith("intel"):
        require("the real TDX quote fixture", HAVE_FIXTURES, f"looked in {FIXTURES}")


# --- the four cases of the brief -----------------------------------------------------------------------------


def test_the_real_intel_quote_verifies_in_the_browser_as_on_the_server(browser) -> None:
    _needs("intel")
    result, shown = browser["results"]["intel"], browser["shown"]["intel"]
    python = _python(browser["bodies"]["intel"])
    assert python.ok
    assert python.fields is not None
    assert (result["ok"], result["tcb_status"], result["advisory_ids"]) == (True, "UpToDate", [])
    assert result["mrtd"] == python.fields.mrtd == INTEL_MRTD
    assert result["rtmrs"] == list(python.fields.rtmrs)
    assert result["report_data"] == python.fields.report_data
    # Intel's sample quote binds someone else's keys, not the ones this evidence names.
    assert result["report_data_bound"] is False
    assert shown | {"verdict_line": ""} == {
        "ok": "true",
        "tcbStatus": "UpToDate",
        "agrees": "true",
        "reportDataBound": "false",
        "reason": "",
        "verdict_line": "",
        "agreement_line": "The server's verdict agrees with your browser's.",
    }
    assert shown["verdict_line"].startswith("Verified in your browser: UpToDate · MRTD 91eb2b44… · ")
    assert "REPORTDATA does not bind this executor's keys" in shown["verdict_line"]
    assert "dev root" not in shown["verdict_line"]


def test_a_dev_quote_verifies_under_the_dev_root_and_binds_its_keys(browser) -> None:
    body = browser["bodies"]["dev"]
    result, shown = browser["results"]["dev"], browser["shown"]["dev"]
    python = _python(body)
    assert python.ok
    assert python.fields is not None
    assert (result["ok"], result["tcb_status"], result["report_data_bound"]) == (True, "UpToDate", True)
    assert result["mrtd"] == python.fields.mrtd == DEV_MRTD.hex()
    assert result["rtmrs"] == [r.hex() for r in DEV_RTMRS]
    assert result["report_data"] == binding("dev")["report_data"].hex() == python.fields.report_data
    assert (shown["ok"], shown["agrees"], shown["reportDataBound"]) == ("true", "true", "true")
    assert shown["verdict_line"] == (
        f"Verified in your browser: UpToDate · MRTD {DEV_MRTD.hex()[:8]}… · REPORTDATA binds this executor's keys"
        " and runtime configuration · signed under the dev root, not by Intel hardware"
    )


def test_a_flipped_byte_at_offset_600_is_refused_as_on_the_server(browser) -> None:
    _needs("intel")
    result, shown = browser["results"]["intel_flipped_600"], browser["shown"]["intel_flipped_600"]
    python = _python(browser["bodies"]["intel_flipped_600"])
    assert (python.ok, python.reason) == (False, "signature_invalid")
    assert (result["ok"], result["reason"], result["tcb_status"]) == (False, "signature_invalid", None)
    assert result["report_data_bound"] is False
    assert python.fields is not None
    assert result["mrtd"] == python.fields.mrtd
    assert (shown["ok"], shown["tcbStatus"], shown["agrees"]) == ("false", "", "true")
    assert shown["verdict_line"] == (
        "Refused in your browser: signature_invalid (ISV enclave report signature is invalid)"
    )


def test_the_outdated_platform_is_refused_as_on_the_server(browser) -> None:
    _needs("intel")
    result, shown = browser["results"]["intel_outdated"], browser["shown"]["intel_outdated"]
    python = _python(browser["bodies"]["intel_outdated"])
    assert (python.ok, python.reason, python.detail) == (False, "no_matching_tcb", "No matching TCB level found")
    assert (result["ok"], result["reason"], result["detail"]) == (
        False,
        "no_matching_tcb",
        "No matching TCB level found",
    )
    assert python.fields is not None
    assert result["mrtd"] == python.fields.mrtd
    assert result["mrtd"].startswith("273828c46252")  # a v5 quote: the TD report is still read
    assert (shown["ok"], shown["agrees"]) == ("false", "true")


# --- every case, field by field ----------------------------------------------------------------------------


ALL_BODIES = (
    "dev",
    "dev_out_of_date",
    "dev_under_intel_root",
    "dev_bad_collateral",
    "dev_garbage_quote",
    *PORT_GAPS,
    *INTEL_CASES,
)


@pytest.mark.parametrize("name", ALL_BODIES)
def test_the_browser_verdict_equals_the_python_verdict(browser, name: str) -> None:
    _needs(name)
    result = browser["results"][name]
    python = _python(browser["bodies"][name])
    fields = python.fields
    assert {
        "ok": result["ok"],
        "tcb_status": result["tcb_status"],
        "advisory_ids": result["advisory_ids"],
        "reason": result["reason"],
        "mrtd": result["mrtd"],
        "rtmrs": result["rtmrs"],
        "report_data": result["report_data"],
    } == {
        "ok": python.ok,
        "tcb_status": python.tcb_status,
        "advisory_ids": list(python.advisory_ids),
        "reason": python.reason,
        "mrtd": fields.mrtd if fields else None,
        "rtmrs": list(fields.rtmrs) if fields else [None] * 4,
        "report_data": fields.report_data if fields else None,
    }, (result["detail"], python.detail)
    shown = browser["shown"][name]
    assert (shown["ok"], shown["tcbStatus"], shown["agrees"]) == (
        str(python.ok).lower(),
        python.tcb_status or "",
        "true",
    )
    assert shown["agreement_line"] == "The server's verdict agrees with your browser's."
    prefix = "Verified in your browser: " if python.ok else f"Refused in your browser: {python.reason}"
    assert shown["verdict_line"].startswith(prefix)


def test_an_out_of_date_dev_platform_keeps_its_status_and_advisories(browser) -> None:
    from devnet.tdx.authority import OUT_OF_DATE_ADVISORIES

    result = browser["results"]["dev_out_of_date"]
    assert (result["ok"], result["tcb_status"], result["report_data_bound"]) == (True, "OutOfDate", True)
    assert result["advisory_ids"] == list(OUT_OF_DATE_ADVISORIES)


@requires("node", shutil.which("node") is not None, "Node.js 20 (make deps needs it too)")
def test_the_port_alone_accepts_what_the_binding_refuses(browser) -> None:
    """Pins why proof_verify.js makes its own checks: @phala/dcap-qvl 0.3.9, on its browser code path, accepts each
    of these; dcap-qvl 0.7.0 refuses each. Should this fail after an upgrade, the port has closed the gap and
    docs/proof-browser-verify.md should say so."""
    bodies = browser["bodies"]
    cases = [
        {
            "quote_b64": bodies[name]["quote_b64"],
            "collateral": bodies[name]["collateral"],
            "now": bodies[name]["attestation"]["verified_at_unix"],
            "root_der_b64": bodies[name]["root"]["ca_der_b64"],
        }
        for name in PORT_GAPS
    ]
    run = subprocess.run(
        ["node", str(PORT_SCRIPT)], input=json.dumps(cases), capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert run.returncode == 0, run.stderr
    port = dict(zip(PORT_GAPS, json.loads(run.stdout), strict=True))
    for name in PORT_GAPS:
        python = _python(bodies[name])
        assert not python.ok, name
        assert port[name]["ok"], (name, port[name])
        assert browser["results"][name]["reason"] == python.reason, (name, browser["results"][name]["detail"])


# --- the page ----------------------------------------------------------------------------------------------


def test_a_document_that_fails_to_load_or_check_is_shown_as_not_verified(browser) -> None:
    shown = browser["shown"]
    missing = shown["doc_missing"]
    assert (missing["ok"], missing["agrees"], missing["reason"]) == ("false", "false", "fetch_failed")
    assert missing["verdict_line"] == (
        "Could not verify in your browser: the evidence could not be loaded (the server answered 404)."
    )
    assert missing["agreement_line"] == "Nothing to compare with the server's verdict."
    tampered = shown["doc_digest_mismatch"]
    assert (tampered["ok"], tampered["agrees"], tampered["reason"]) == ("false", "false", "bad_evidence")
    assert tampered["verdict_line"] == (
        "Refused in your browser: bad_evidence (the evidence's digest does not match its body)"
    )
    # Refused before its quote was read: the browser has no measurements to set beside the server's.
    assert tampered["agreement_line"] == (
        "The server's verdict differs from your browser's: ok, TCB status, MRTD, RTMR0, RTMR1, RTMR2, RTMR3."
    )
    schema = shown["doc_wrong_schema"]
    assert (schema["ok"], schema["reason"]) == ("false", "bad_evidence")
    assert "not a mrmarket.executor-evidence/v1 document" in schema["verdict_line"]


def test_a_server_verdict_that_differs_is_said_so(browser) -> None:
    shown = browser["shown"]["doc_server_disagrees"]
    assert (shown["ok"], shown["tcbStatus"], shown["agrees"]) == ("true", "UpToDate", "false")
    assert shown["agreement_line"] == "The server's verdict differs from your browser's: TCB status."


def test_the_page_raised_nothing_and_broke_no_content_security_rule(browser) -> None:
    assert browser["errors"] == []


def test_the_browser_names_failures_with_the_servers_rules() -> None:
    """proof_verify.js classifies failure messages with attestation/domain/quote.py's rules (and a few of its own
    for the port's wording): every needle of the Python rules is in the JavaScript, under the same reason."""
    from attestation.domain.quote import _RULES

    source = (ROOT / "static" / "src" / "proof_verify.js").read_text()
    rules = source[source.index("const RULES = [") : source.index("export function classifyError")]
    starts = list(re.finditer(r'^  \[\s*"([a-z_]+)"', rules, flags=re.MULTILINE))  # a reason at two spaces' indent
    ends = [m.start() for m in starts[1:]] + [len(rules)]
    js = {m.group(1): rules[m.start() : end] for m, end in zip(starts, ends, strict=True)}
    assert list(js) == [str(reason) for reason, _ in _RULES]
    for reason, needles in _RULES:
        for needle in needles:
            assert json.dumps(needle) in js[str(reason)], (reason, needle)
