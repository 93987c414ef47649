"""The TDX quote parser's bounds and every refusal's exact reason and detail (docs/reliability.md, section 8).

test_quote.py shows that real quotes verify and that each kind of bad evidence gets its reason code; these pin what
a mutation run found unasserted there: the byte bounds of the v4 and v5 layouts (a field one byte short or long),
every field of the parsed TD report, and the whole verdict of each refusal — reason, detail, and that a refusal
keeps the parsed fields but carries no TCB status. Real quotes from ../shared/fixtures/tdx, edited byte by byte,
and quotes from the dev quote authority (signed under its own root) where a status or debug bit is needed. No
database.
"""

from __future__ import annotations

import dataclasses
import re
import struct
from pathlib import Path

import pytest
from django.conf import settings

from attestation.domain import quote
from attestation.domain.quote import (
    QuoteError,
    QuoteFields,
    QuoteVerdict,
    Reason,
    check_report_data,
    evaluate_policy,
    parse_quote_fields,
    verify_quote,
)
from devnet.tdx.authority import DevQuoteAuthority
from tests.plugins.require import require

FIXTURES = Path(settings.BASE_DIR).parent / "shared" / "fixtures" / "tdx"
AT = 1_751_000_000  # the real quote's collateral is valid then

MRTD = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"
REAL_FIELDS = QuoteFields(
    mrtd=MRTD,
    rtmrs=(
        "44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0",
        "0084452c01668329d4bc06acdf58a7205c26743304509973949e5619bf81a6a7aea8c323c173019b3093d54e579e9378",
        "d833feef2cd945148aa38ead2c53e9b7f138190aaaebfc551dccd829fc207aa3ba80b70870d7330733642e01d48c3132",
        "0" * 96,
    ),
    report_data=(
        "9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9"
        "eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20"
    ),
    td_attributes="0000001000000000",  # SEPT_VE_DISABLE only
    debug=False,
    mrseam="5b38e33a6487958b72c3c12a938eaa5e3fd4510c51aeeab58c7d5ecee41d7c436489d6c8e4f92f160b7cad34207b00c1",
)
# The second real quote is a v5 one (TDX 1.5): body type 3 (TD report 1.5) of 648 bytes, so its TD report is at 54.
V5_FIELDS = QuoteFields(
    mrtd="273828c46252fcbdd8ad2dd907130222b03466d52a2911d70c1a5950895d6bd1ae451d382d5a9b1b4c0ed0e5ae9a3dbd",
    rtmrs=("0" * 96,) * 4,
    report_data="d2142b643598eb5fae2bc8529dd79a558b29f868ccbb6531cb28dab9dce47728" + "0" * 64,
    td_attributes="0000001000000000",
    debug=False,
    mrseam="49b66faa451d19ebbdbe89371b8daf2b65aa3984ec90110343e9e2eec116af08850fa20e3b1aa9a874d77a65380ee7e6",
)
V4_END = 48 + 584  # header, TD report
V5_END = 48 + 6 + 584  # header, body type and size, TD report
TD_ATTRIBUTES_AT = 120  # inside the TD report


@pytest.fixture(scope="module")
def real() -> tuple[bytes, str]:
    require("the real TDX quote fixture", (FIXTURES / "tdx_quote").exists(), f"looked in {FIXTURES}")
    return (FIXTURES / "tdx_quote").read_bytes(), (FIXTURES / "tdx_quote_collateral.json").read_text()


@pytest.fixture(scope="module")
def v5() -> bytes:
    require("the real TDX quote fixture", (FIXTURES / "tdx_quote_outdated").exists(), f"looked in {FIXTURES}")
    return (FIXTURES / "tdx_quote_outdated").read_bytes()


@pytest.fixture(scope="module")
def authority() -> DevQuoteAuthority:
    return DevQuoteAuthority.ephemeral()


def refusal_of(raw: bytes) -> QuoteError:
    with pytest.raises(QuoteError) as caught:
        parse_quote_fields(raw)
    return caught.value


def with_v5_body(raw: bytes, body_type: int, body_size: int) -> bytes:
    return raw[:48] + struct.pack("<HI", body_type, body_size) + raw[54:]


def with_td_attribute_byte(raw: bytes, start: int, index: int, value: int) -> bytes:
    edited = bytearray(raw)
    edited[start + TD_ATTRIBUTES_AT + index] = value
    return bytes(edited)


# --- parsing: every field, and the byte bounds of both layouts ----------------------------------------------


def test_parse_reads_every_field_of_the_v4_quote(real) -> None:
    raw, _ = real
    assert parse_quote_fields(raw) == REAL_FIELDS


def test_parse_reads_every_field_of_the_v5_quote_after_its_body_header(v5) -> None:
    assert v5[48:54] == struct.pack("<HI", 3, 648)
    assert parse_quote_fields(v5) == V5_FIELDS


def test_a_quote_that_ends_with_its_td_report_parses(real, v5) -> None:
    # Nothing after the TD report (no signature): enough to read the fields, refused later by dcap-qvl.
    raw, _ = real
    assert parse_quote_fields(raw[:V4_END]) == REAL_FIELDS
    assert parse_quote_fields(v5[:V5_END]) == V5_FIELDS


def test_a_quote_one_byte_short_of_its_td_report_is_refused(real, v5) -> None:
    raw, _ = real
    short = refusal_of(raw[: V4_END - 1])
    assert (short.code, short.message, str(short)) == (
        "malformed",
        "quote too short: 631 bytes, the TD report ends at byte 632",
        "quote too short: 631 bytes, the TD report ends at byte 632",
    )
    assert refusal_of(v5[: V5_END - 1]).message == "quote too short: 637 bytes, the TD report ends at byte 638"


def test_the_header_bounds(real, v5) -> None:
    raw, _ = real
    expected = [
        (b"", "quote too short: 0 bytes"),
        (raw[:47], "quote too short: 47 bytes"),
        # A whole header is read; what is missing then is the TD report.
        (raw[:48], "quote too short: 48 bytes, the TD report ends at byte 632"),
        # A v5 header needs its 6 bytes of body type and size before anything else.
        (v5[:48], "quote too short: 48 bytes"),
        (v5[:53], "quote too short: 53 bytes"),
        (v5[:54], "quote too short: 54 bytes, the TD report ends at byte 638"),
    ]
    for raw_prefix, message in expected:
        refused = refusal_of(raw_prefix)
        assert (refused.code, refused.message) == ("malformed", message)


@pytest.mark.parametrize("body_type", [2, 3, 4])
def test_v5_td_report_body_types_are_read(v5, body_type: int) -> None:
    assert parse_quote_fields(with_v5_body(v5, body_type, 648)) == V5_FIELDS


@pytest.mark.parametrize("body_type", [0, 1, 5, 0xFFFF])
def test_v5_bodies_that_are_not_td_reports_are_refused(v5, body_type: int) -> None:
    refused = refusal_of(with_v5_body(v5, body_type, 648))
    assert (refused.code, refused.message) == ("malformed", f"v5 body type {body_type} of 648 bytes is not a TD report")


def test_a_v5_body_must_be_at_least_a_td_report_long(v5) -> None:
    assert parse_quote_fields(with_v5_body(v5, 2, 584)) == V5_FIELDS
    # The size is unsigned: the largest one is long enough (only the TD report is read).
    assert parse_quote_fields(with_v5_body(v5, 2, 0xFFFFFFFF)) == V5_FIELDS
    refused = refusal_of(with_v5_body(v5, 2, 583))
    assert (refused.code, refused.message) == ("malformed", "v5 body type 2 of 583 bytes is not a TD report")


@pytest.mark.parametrize("version", [0, 3, 6, 0xFFFF])  # read unsigned: 65535, not -1
def test_other_quote_versions_are_refused(real, version: int) -> None:
    raw, _ = real
    refused = refusal_of(struct.pack("<H", version) + raw[2:])
    assert (refused.code, refused.message) == ("malformed", f"unsupported quote version {version} (expected 4 or 5)")


@pytest.mark.parametrize(
    ("tee_type", "message"),
    [(0, "TEE type 0x0 is not TDX (0x81)"), (0x80000081, "TEE type 0x80000081 is not TDX (0x81)")],
)
def test_a_non_tdx_tee_type_is_refused(real, tee_type: int, message: str) -> None:
    raw, _ = real
    refused = refusal_of(raw[:4] + struct.pack("<I", tee_type) + raw[8:])
    assert (refused.code, refused.message) == ("malformed", message)


def test_the_debug_flag_is_bit_0_of_the_first_td_attribute_byte(real, v5) -> None:
    raw, _ = real
    debug = parse_quote_fields(with_td_attribute_byte(raw, 48, 0, 0x01))
    assert (debug.td_attributes, debug.debug) == ("0100001000000000", True)
    assert parse_quote_fields(with_td_attribute_byte(v5, 54, 0, 0x01)).debug is True
    # Other bits of that byte, and bit 0 of the next one, are not the debug flag.
    other_bits = parse_quote_fields(with_td_attribute_byte(raw, 48, 0, 0xFE))
    assert (other_bits.td_attributes, other_bits.debug) == ("fe00001000000000", False)
    next_byte = parse_quote_fields(with_td_attribute_byte(raw, 48, 1, 0x01))
    assert (next_byte.td_attributes, next_byte.debug) == ("0001001000000000", False)


# --- verify_quote: the whole verdict ------------------------------------------------------------------------


def refusal_verdict(reason: Reason, detail: str, fields: QuoteFields | None) -> QuoteVerdict:
    return QuoteVerdict(ok=False, reason=reason, detail=detail, tcb_status=None, advisory_ids=(), fields=fields)


def test_the_real_quote_verdict_whole(real) -> None:
    raw, collateral = real
    expected = QuoteVerdict(
        ok=True, reason=None, detail="verified", tcb_status="UpToDate", advisory_ids=(), fields=REAL_FIELDS
    )
    assert verify_quote(raw, collateral, now=AT) == expected


def test_an_unreadable_quote_is_refused_with_the_parser_s_message_and_no_fields(real) -> None:
    _, collateral = real
    assert verify_quote(b"\x04\x00", collateral, now=AT) == refusal_verdict(
        Reason.MALFORMED_QUOTE, "quote too short: 2 bytes", None
    )
    assert verify_quote(None, collateral, now=AT) == refusal_verdict(  # type: ignore[arg-type]
        Reason.MALFORMED_QUOTE, "cannot convert 'NoneType' object to bytes", None
    )


def test_unreadable_collateral_is_refused_with_the_parsed_fields(real) -> None:
    raw, _ = real
    assert verify_quote(raw, "not json", now=AT) == refusal_verdict(
        Reason.BAD_COLLATERAL,
        "collateral unreadable: Failed to parse JSON: expected ident at line 1 column 2",
        REAL_FIELDS,
    )
    assert verify_quote(raw, None, now=AT) == refusal_verdict(  # type: ignore[arg-type]
        Reason.BAD_COLLATERAL, "collateral unreadable: 'None' is not an instance of 'str'", REAL_FIELDS
    )


def test_dcap_qvl_s_refusal_is_one_line_without_its_prefix(real) -> None:
    # dcap-qvl says "Verification failed: Failed to decode quote\n\nCaused by:\n    Not enough data to fill buffer".
    raw, collateral = real
    assert verify_quote(raw[:1000], collateral, now=AT) == refusal_verdict(
        Reason.MALFORMED_QUOTE, "Failed to decode quote: Not enough data to fill buffer", REAL_FIELDS
    )
    assert verify_quote(raw, collateral, now=1_760_000_000) == refusal_verdict(
        Reason.COLLATERAL_EXPIRED, "TCBInfo expired", REAL_FIELDS
    )


def test_an_exception_other_than_dcap_qvl_s_is_a_refusal_too(real) -> None:
    raw, collateral = real
    assert verify_quote(raw, collateral, now=-1) == refusal_verdict(
        Reason.VERIFICATION_FAILED, "can't convert negative int to unsigned", REAL_FIELDS
    )


@pytest.mark.parametrize(
    ("raised", "detail"),
    [(OverflowError(), "OverflowError"), (ValueError("Verification failed: "), "ValueError")],
)
def test_a_refusal_without_a_message_is_named_by_its_exception(
    real, monkeypatch: pytest.MonkeyPatch, raised: Exception, detail: str
) -> None:
    def verify(*_args: object) -> None:
        raise raised

    monkeypatch.setattr(quote.dcap_qvl, "verify", verify)
    raw, collateral = real
    assert verify_quote(raw, collateral, now=AT) == refusal_verdict(Reason.VERIFICATION_FAILED, detail, REAL_FIELDS)


def test_a_dev_quote_under_its_root_keeps_status_and_advisories(authority) -> None:
    raw = authority.quote(b"bound key", mrtd=b"\x01" * 48, tcb="OutOfDate")
    verdict = verify_quote(raw, authority.collateral_json(now=AT), now=AT, root_ca_der=authority.root_ca_der)
    assert verdict == QuoteVerdict(
        ok=True,
        reason=None,
        detail="verified",
        tcb_status="OutOfDate",
        advisory_ids=("DEV-SA-00001",),
        fields=parse_quote_fields(raw),
    )
    assert verdict.fields is not None
    assert (verdict.fields.mrtd, verdict.fields.report_data) == ("01" * 48, b"bound key".ljust(64, b"\0").hex())


def test_a_debug_dev_quote_is_refused_by_dcap_qvl_with_its_debug_flag_read(authority) -> None:
    raw = authority.quote(b"", mrtd=b"\x02" * 48, debug=True)
    verdict = verify_quote(raw, authority.collateral_json(now=AT), now=AT, root_ca_der=authority.root_ca_der)
    assert verdict == refusal_verdict(Reason.DEBUG_TD, "Debug mode is enabled", parse_quote_fields(raw))
    assert verdict.fields is not None
    assert (verdict.fields.td_attributes, verdict.fields.debug) == ("0100001000000000", True)


# --- the policy: exact refusals, and their order ------------------------------------------------------------


@pytest.fixture(scope="module")
def good(real) -> QuoteVerdict:
    raw, collateral = real
    return verify_quote(raw, collateral, now=AT)


EXPECTED = bytes.fromhex(REAL_FIELDS.report_data)
UP_TO_DATE = frozenset({"UpToDate"})


def test_more_than_64_bytes_of_expected_report_data_is_a_programming_error(good) -> None:
    message = "expected_report_data must be at most 64 bytes"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        check_report_data(good, expected_report_data=EXPECTED + b"\0")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        evaluate_policy(good, expected_report_data=bytes(65), allowed_tcb=UP_TO_DATE)
    assert check_report_data(good, expected_report_data=EXPECTED) == good


def test_a_verified_verdict_without_a_td_report_is_refused(good) -> None:
    no_fields = dataclasses.replace(good, fields=None)
    expected = dataclasses.replace(no_fields, ok=False, reason=Reason.VERIFICATION_FAILED, detail="no TD report")
    assert check_report_data(no_fields, expected_report_data=EXPECTED) == expected
    assert evaluate_policy(no_fields, expected_report_data=EXPECTED, allowed_tcb=UP_TO_DATE) == expected


def test_a_report_data_mismatch_names_both_values(good) -> None:
    verdict = evaluate_policy(good, expected_report_data=b"abc", allowed_tcb=UP_TO_DATE)
    detail = f"REPORTDATA {REAL_FIELDS.report_data} is not the expected 616263{'00' * 61}"
    assert verdict == dataclasses.replace(good, ok=False, reason=Reason.REPORT_DATA_MISMATCH, detail=detail)
    # Checked first: a debug TD with another status is still refused for its REPORTDATA.
    worse = dataclasses.replace(good, tcb_status="OutOfDate", fields=dataclasses.replace(REAL_FIELDS, debug=True))
    assert evaluate_policy(worse, expected_report_data=b"abc", allowed_tcb=UP_TO_DATE).reason == (
        Reason.REPORT_DATA_MISMATCH
    )


def test_a_debug_td_refusal_says_why(good) -> None:
    debug = dataclasses.replace(good, tcb_status="OutOfDate", fields=dataclasses.replace(REAL_FIELDS, debug=True))
    detail = "the TD is debuggable: the host can read its memory"
    expected = dataclasses.replace(debug, ok=False, reason=Reason.DEBUG_TD, detail=detail)
    # Checked before the TCB status.
    assert evaluate_policy(debug, expected_report_data=EXPECTED, allowed_tcb=UP_TO_DATE) == expected
    allowed = evaluate_policy(debug, expected_report_data=EXPECTED, allowed_tcb=UP_TO_DATE, allow_debug=True)
    assert (allowed.reason, allowed.detail) == (
        Reason.TCB_STATUS_REFUSED,
        "TCB status OutOfDate is not allowed; allowed: UpToDate",
    )


def test_a_tcb_status_refusal_lists_the_allowed_statuses_sorted(good) -> None:
    verdict = evaluate_policy(
        good, expected_report_data=EXPECTED, allowed_tcb=frozenset({"SWHardeningNeeded", "OutOfDate"})
    )
    detail = "TCB status UpToDate is not allowed; allowed: OutOfDate, SWHardeningNeeded"
    assert verdict == dataclasses.replace(good, ok=False, reason=Reason.TCB_STATUS_REFUSED, detail=detail)


def test_a_tcb_status_refusal_lists_the_advisories(good) -> None:
    out_of_date = dataclasses.replace(good, tcb_status="OutOfDate", advisory_ids=("INTEL-SA-00837", "INTEL-SA-00615"))
    verdict = evaluate_policy(out_of_date, expected_report_data=EXPECTED, allowed_tcb=UP_TO_DATE)
    detail = "TCB status OutOfDate is not allowed (advisories: INTEL-SA-00837, INTEL-SA-00615); allowed: UpToDate"
    assert verdict == dataclasses.replace(out_of_date, ok=False, reason=Reason.TCB_STATUS_REFUSED, detail=detail)
