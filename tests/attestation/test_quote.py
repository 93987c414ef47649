"""Verifying real Intel TDX quotes offline, the failure reason codes, and the policy step. No database."""

from __future__ import annotations

import dataclasses
import json
import struct
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings

from attestation.domain.quote import (
    QuoteError,
    QuoteVerdict,
    Reason,
    classify_error,
    evaluate_policy,
    parse_quote_fields,
    verify_quote,
)
from tests.plugins.require import require, requires

FIXTURES = Path(settings.BASE_DIR).parent / "shared" / "fixtures" / "tdx"
needs_fixture = requires("the real TDX quote fixture", (FIXTURES / "tdx_quote").exists(), f"looked in {FIXTURES}")

AT = 1_751_000_000
MRTD = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"
RTMRS = (
    "44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0",
    "0084452c01668329d4bc06acdf58a7205c26743304509973949e5619bf81a6a7aea8c323c173019b3093d54e579e9378",
    "d833feef2cd945148aa38ead2c53e9b7f138190aaaebfc551dccd829fc207aa3ba80b70870d7330733642e01d48c3132",
    "0" * 96,
)
REPORT_DATA = (
    "9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9"
    "eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20"
)


@pytest.fixture(scope="module")
def real() -> tuple[bytes, str]:
    require("the real TDX quote fixture", (FIXTURES / "tdx_quote").exists(), f"looked in {FIXTURES}")
    return (FIXTURES / "tdx_quote").read_bytes(), (FIXTURES / "tdx_quote_collateral.json").read_text()


@pytest.fixture(scope="module")
def outdated() -> tuple[bytes, str]:
    require("the real TDX quote fixture", (FIXTURES / "tdx_quote_outdated").exists(), f"looked in {FIXTURES}")
    return (FIXTURES / "tdx_quote_outdated").read_bytes(), (FIXTURES / "tdx_quote_outdated_collateral.json").read_text()


# --- the real Intel quote ------------------------------------------------------------------------------------


def test_real_quote_verifies_up_to_date_with_its_known_measurements(real) -> None:
    raw, collateral = real
    verdict = verify_quote(raw, collateral, now=AT)
    assert verdict.ok, verdict.detail
    assert (verdict.reason, verdict.tcb_status, verdict.advisory_ids) == (None, "UpToDate", ())
    assert verdict.fields is not None
    assert verdict.fields.mrtd == MRTD
    assert verdict.fields.rtmrs == RTMRS
    assert verdict.fields.report_data == REPORT_DATA
    assert verdict.fields.debug is False


def test_intel_root_given_explicitly_gives_the_same_result(real) -> None:
    raw, collateral = real
    chain = x509.load_pem_x509_certificates(json.loads(collateral)["pck_crl_issuer_chain"].encode())
    intel_root = chain[-1].public_bytes(serialization.Encoding.DER)
    assert verify_quote(raw, collateral, now=AT, root_ca_der=intel_root) == verify_quote(raw, collateral, now=AT)


def test_real_quote_under_another_root_is_untrusted(real) -> None:
    from devnet.tdx.authority import DevQuoteAuthority

    raw, collateral = real
    verdict = verify_quote(raw, collateral, now=AT, root_ca_der=DevQuoteAuthority.ephemeral().root_ca_der)
    assert (verdict.ok, verdict.reason) == (False, Reason.UNTRUSTED_ROOT)


@pytest.mark.parametrize("offset", [600, 184, 10, 700, 800])
def test_flipping_a_signed_byte_fails(real, offset: int) -> None:
    raw, collateral = real
    tampered = bytearray(raw)
    tampered[offset] ^= 0x01
    verdict = verify_quote(bytes(tampered), collateral, now=AT)
    assert (verdict.ok, verdict.reason) == (False, Reason.SIGNATURE_INVALID), verdict.detail
    assert verdict.tcb_status is None


@pytest.mark.parametrize("now", [1_753_000_000, 1_760_000_000])  # nextUpdate 2025-07-19T10:16:03Z
def test_after_next_update_the_collateral_has_expired(real, now: int) -> None:
    raw, collateral = real
    verdict = verify_quote(raw, collateral, now=now)
    assert (verdict.ok, verdict.reason) == (False, Reason.COLLATERAL_EXPIRED)
    assert "expired" in verdict.detail.lower()


def test_before_the_issue_date_the_collateral_is_not_yet_valid(real) -> None:
    raw, collateral = real
    assert verify_quote(raw, collateral, now=1_700_000_000).reason == Reason.COLLATERAL_EXPIRED


def test_outdated_platform_matches_no_tcb_level(outdated) -> None:
    raw, collateral = outdated
    verdict = verify_quote(raw, collateral, now=1_772_000_000)
    assert (verdict.ok, verdict.reason) == (False, Reason.NO_MATCHING_TCB)
    assert verdict.detail == "No matching TCB level found"
    assert verdict.fields is not None  # a v5 quote (TDX 1.5): the TD report is still read
    assert verdict.fields.mrtd.startswith("273828c46252")
    assert verify_quote(raw, collateral, now=AT).reason == Reason.COLLATERAL_EXPIRED  # issued in the future


# --- malformed input -----------------------------------------------------------------------------------------


def test_parse_refuses_short_wrong_version_and_non_tdx_quotes(real) -> None:
    raw, _ = real
    wrong_version = struct.pack("<H", 3) + raw[2:]
    sgx = raw[:4] + struct.pack("<I", 0) + raw[8:]
    for bad in (b"", raw[:600], wrong_version, sgx):
        with pytest.raises(QuoteError) as caught:
            parse_quote_fields(bad)
        assert caught.value.code == "malformed"


def test_malformed_quote_and_bad_collateral_are_verdicts_not_exceptions(real) -> None:
    raw, collateral = real
    assert verify_quote(b"\x04\x00", collateral, now=AT).reason == Reason.MALFORMED_QUOTE
    truncated = verify_quote(raw[:1000], collateral, now=AT)
    assert truncated.fields is not None
    assert (truncated.reason, truncated.fields.mrtd) == (Reason.MALFORMED_QUOTE, MRTD)
    assert verify_quote(raw, "not json", now=AT).reason == Reason.BAD_COLLATERAL
    assert verify_quote(raw, "{}", now=AT).reason == Reason.BAD_COLLATERAL
    broken = json.loads(collateral)
    broken["tcb_info"] = "x"
    assert verify_quote(raw, json.dumps(broken), now=AT).reason == Reason.BAD_COLLATERAL
    resigned = json.loads(collateral)
    resigned["tcb_info_signature"] = "00" * 64
    assert verify_quote(raw, json.dumps(resigned), now=AT).reason == Reason.SIGNATURE_INVALID
    assert verify_quote(raw, collateral, now=-1).reason == Reason.VERIFICATION_FAILED


# dcap-qvl 0.7.0's messages, as observed by experiment, and the reason each maps to.
OBSERVED = [
    ("Verification failed: Failed to decode quote\n\nCaused by:\n    Unsupported body type", Reason.MALFORMED_QUOTE),
    ("Verification failed: Unsupported DCAP attestation key type", Reason.MALFORMED_QUOTE),
    ("Verification failed: Unknown QE vendor ID", Reason.MALFORMED_QUOTE),
    ("Verification failed: Failed to parse PCK certificate\n\nCaused by:\n    BadDer", Reason.MALFORMED_QUOTE),
    ("Verification failed: ISV enclave report signature is invalid", Reason.SIGNATURE_INVALID),
    ("Verification failed: QE report hash mismatch", Reason.SIGNATURE_INVALID),
    ("Verification failed: Signature is invalid for qe_report in quote", Reason.SIGNATURE_INVALID),
    ("Verification failed: Signature is invalid for tcb_info in quote_collateral", Reason.SIGNATURE_INVALID),
    ("Verification failed: Signature is invalid for qe_identity in quote_collateral", Reason.SIGNATURE_INVALID),
    ("Verification failed: TCBInfo expired", Reason.COLLATERAL_EXPIRED),
    ("Verification failed: TCBInfo issue date is in the future", Reason.COLLATERAL_EXPIRED),
    ("Verification failed: QE Identity expired", Reason.COLLATERAL_EXPIRED),
    ("Verification failed: QE Identity issue date is in the future", Reason.COLLATERAL_EXPIRED),
    (
        "Verification failed: CrlExpired { time: UnixTime(1753678400), next_update: UnixTime(1753592000) }",
        Reason.COLLATERAL_EXPIRED,
    ),
    (
        "Verification failed: Failed to verify certificate chain\n\nCaused by:\n    "
        "CertExpired { time: UnixTime(2556000000), not_after: UnixTime(2524608000) }",
        Reason.COLLATERAL_EXPIRED,
    ),
    (
        "Verification failed: Failed to verify certificate chain\n\nCaused by:\n    "
        "CertNotValidYet { time: UnixTime(1751000000), not_before: UnixTime(1769191781) }",
        Reason.COLLATERAL_EXPIRED,
    ),
    ("Verification failed: Failed to verify certificate chain\n\nCaused by:\n    CertRevoked", Reason.CERT_REVOKED),
    ("Verification failed: TCB status is invalid: Revoked", Reason.TCB_REVOKED),
    ("Verification failed: No matching TCB level found", Reason.NO_MATCHING_TCB),
    (
        "Verification failed: TDX module TCB level check\n\nCaused by:\n    "
        "No TDX module identity with id TDX_01 found in TCB Info",
        Reason.NO_MATCHING_TCB,
    ),
    (
        "Verification failed: TDX module TCB level check\n\nCaused by:\n    "
        "TDX module ISVSVN 3 is below minimum required from TDX module TCB levels",
        Reason.NO_MATCHING_TCB,
    ),
    ("Verification failed: QE ISVSVN 4 is below minimum required 9 from QE Identity", Reason.NO_MATCHING_TCB),
    (
        "Verification failed: Failed to parse root CA CRL\n\nCaused by:\n    InvalidCrlSignatureForPublicKey",
        Reason.UNTRUSTED_ROOT,
    ),
    ("Verification failed: Failed to verify certificate chain\n\nCaused by:\n    UnknownIssuer", Reason.UNTRUSTED_ROOT),
    (
        "Verification failed: Failed to verify certificate chain\n\nCaused by:\n    InvalidSignatureForPublicKey",
        Reason.UNTRUSTED_ROOT,
    ),
    ("Verification failed: Failed to decode TcbInfo\n\nCaused by:\n    expected value", Reason.BAD_COLLATERAL),
    ("Verification failed: Failed to parse PCK CRL\n\nCaused by:\n    BadDer", Reason.BAD_COLLATERAL),
    (
        "Verification failed: Failed to parse root CA CRL\n\nCaused by:\n    TrailingData(CertRevocationList)",
        Reason.BAD_COLLATERAL,
    ),
    ("Verification failed: Debug mode is enabled", Reason.DEBUG_TD),
    ("Verification failed: Fmspc mismatch", Reason.VERIFICATION_FAILED),
    ("Verification failed: QE ISVPRODID mismatch: expected 3, got 2", Reason.VERIFICATION_FAILED),
    (
        "Verification failed: Failed to load root ca\n\nCaused by:\n    TrailingData(SignedData)",
        Reason.VERIFICATION_FAILED,
    ),
    ("something new", Reason.VERIFICATION_FAILED),
]


@pytest.mark.parametrize(("message", "reason"), OBSERVED)
def test_dcap_messages_map_to_reason_codes(message: str, reason: Reason) -> None:
    assert classify_error(message) == reason


# --- policy --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good(real) -> QuoteVerdict:
    raw, collateral = real
    return verify_quote(raw, collateral, now=AT)


ALLOW_UP_TO_DATE = frozenset({"UpToDate"})


def test_policy_passes_the_expected_report_data_and_status(good) -> None:
    verdict = evaluate_policy(good, expected_report_data=bytes.fromhex(REPORT_DATA), allowed_tcb=ALLOW_UP_TO_DATE)
    assert verdict == good


def test_policy_refuses_other_report_data(good) -> None:
    verdict = evaluate_policy(good, expected_report_data=b"\x00" * 64, allowed_tcb=ALLOW_UP_TO_DATE)
    assert (verdict.ok, verdict.reason) == (False, Reason.REPORT_DATA_MISMATCH)
    assert verdict.tcb_status == "UpToDate"  # the facts stay, only the decision changes


def test_short_expected_report_data_is_zero_padded(good) -> None:
    padded = dataclasses.replace(good, fields=dataclasses.replace(good.fields, report_data=(b"abc" + bytes(61)).hex()))
    assert evaluate_policy(padded, expected_report_data=b"abc", allowed_tcb=ALLOW_UP_TO_DATE).ok


def test_policy_refuses_a_status_it_does_not_allow(good) -> None:
    expected = bytes.fromhex(REPORT_DATA)
    verdict = evaluate_policy(good, expected_report_data=expected, allowed_tcb=frozenset({"OutOfDate"}))
    assert (verdict.ok, verdict.reason) == (False, Reason.TCB_STATUS_REFUSED)
    assert "UpToDate" in verdict.detail
    out_of_date = dataclasses.replace(good, tcb_status="OutOfDate", advisory_ids=("INTEL-SA-00837",))
    refused = evaluate_policy(out_of_date, expected_report_data=expected, allowed_tcb=ALLOW_UP_TO_DATE)
    assert refused.reason == Reason.TCB_STATUS_REFUSED
    assert "INTEL-SA-00837" in refused.detail
    both = frozenset({"UpToDate", "OutOfDate"})
    assert evaluate_policy(out_of_date, expected_report_data=expected, allowed_tcb=both).ok


def test_policy_refuses_a_debug_td_unless_allowed(good) -> None:
    debug = dataclasses.replace(good, fields=dataclasses.replace(good.fields, debug=True))
    expected = bytes.fromhex(REPORT_DATA)
    assert evaluate_policy(debug, expected_report_data=expected, allowed_tcb=ALLOW_UP_TO_DATE).reason == Reason.DEBUG_TD
    assert evaluate_policy(debug, expected_report_data=expected, allowed_tcb=ALLOW_UP_TO_DATE, allow_debug=True).ok


def test_policy_leaves_a_failed_verdict_alone(real) -> None:
    raw, collateral = real
    failed = verify_quote(raw, collateral, now=1_760_000_000)
    assert evaluate_policy(failed, expected_report_data=b"", allowed_tcb=ALLOW_UP_TO_DATE) == failed
