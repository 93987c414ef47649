"""Verifying an Intel TDX DCAP quote (version 4, or 5) and applying the caller's policy to the result. Pure.

Two steps, kept apart on purpose:

1. `verify_quote` asks dcap-qvl whether the evidence is genuine: the quote's signature by the attestation
   key, the QE report's signature by the PCK certificate, the PCK chain up to the root (Intel's, or a dev
   root), CRLs, the signed TCB info and QE identity, and their validity at `now`. The result is a
   `QuoteVerdict` with the platform's TCB status and advisory ids — never an exception for bad evidence.
2. `evaluate_policy` decides whether a genuine quote is acceptable here: REPORTDATA must equal what the
   verifier expects (the key binding, wire/attestation.py), the TCB status must be one the caller allows,
   and a debuggable TD is refused unless asked. The measurement allowlist is checked elsewhere
   (domain/allowlist.py).

Failure reasons are stable codes (`Reason`); `detail` carries dcap-qvl's own message for people. The mapping
from dcap-qvl 0.7.0's messages was established by experiment (tests/attestation/test_quote.py and
tests/devnet/tdx/test_authority.py pin it).

`QuoteVerdict.fields` holds the TD report parsed from the quote whenever it is well-formed, also on failure
(for logs): it is trustworthy only when `ok` is true.
"""

from __future__ import annotations

import dataclasses
import hmac
import struct
from dataclasses import dataclass
from enum import StrEnum

import dcap_qvl

QUOTE_VERSIONS = (4, 5)
TEE_TYPE_TDX = 0x81
HEADER_LEN = 48
TD_REPORT_LEN = 584  # the TD report 1.0 fields; 1.5 bodies (v5) append to it

# Offsets of the TD report fields inside the body. An Intel TDX DCAP quote of version 4 is a 48-byte header, then
# the 584-byte TD report body — TEE TCB SVN (16), MRSEAM, MRSIGNERSEAM (48 each), SEAM attributes, TD attributes,
# XFAM (8 each), MRTD, MRCONFIGID, MROWNER, MROWNERCONFIG, RTMR0..3 (48 each), REPORTDATA (64) — so MRTD is at
# 184..231 and REPORTDATA at 568..631 of the quote. A v5 quote puts a u16 body type and a u32 body size between
# header and body, shifting the body to byte 54.
MRSEAM = slice(16, 64)
TD_ATTRIBUTES = slice(120, 128)
MRTD = slice(136, 184)
RTMRS = tuple(slice(328 + 48 * i, 376 + 48 * i) for i in range(4))
REPORT_DATA = slice(520, 584)
V5_TDX_BODY_TYPES = (2, 3, 4)  # TD report 1.0, 1.5, 1.5ex
TD_ATTRIBUTE_DEBUG = 0x01  # byte 0, bit 0 of the TD attributes


class Reason(StrEnum):
    """Why a quote was refused: stable codes for APIs, logs and tests."""

    MALFORMED_QUOTE = "malformed_quote"
    BAD_COLLATERAL = "bad_collateral"  # collateral unreadable or internally inconsistent
    COLLATERAL_EXPIRED = "collateral_expired"  # TCB info / QE identity / CRL / certificate outside its validity
    SIGNATURE_INVALID = "signature_invalid"  # quote, QE report, or collateral signature does not verify
    UNTRUSTED_ROOT = "untrusted_root"  # the certificate chain or root CRL does not lead to the given root
    TCB_REVOKED = "tcb_revoked"
    NO_MATCHING_TCB = "no_matching_tcb"
    CERT_REVOKED = "cert_revoked"
    DEBUG_TD = "debug_td"
    VERIFICATION_FAILED = "verification_failed"  # anything else dcap-qvl refuses
    # policy (evaluate_policy)
    REPORT_DATA_MISMATCH = "report_data_mismatch"
    TCB_STATUS_REFUSED = "tcb_status_refused"


class QuoteError(ValueError):
    """A quote whose bytes cannot be read as a TDX v4 quote."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class QuoteFields:
    """The TD report of a quote, hex lowercase. Parsed, not verified: trust it only with an `ok` verdict."""

    mrtd: str
    rtmrs: tuple[str, str, str, str]
    report_data: str
    td_attributes: str
    debug: bool
    mrseam: str


@dataclass(frozen=True)
class QuoteVerdict:
    ok: bool
    reason: str | None  # a `Reason` value when not ok
    detail: str
    tcb_status: str | None  # "UpToDate", "SWHardeningNeeded", "OutOfDate", ... when dcap-qvl verified the quote
    advisory_ids: tuple[str, ...]
    fields: QuoteFields | None


def parse_quote_fields(raw: bytes) -> QuoteFields:
    """Read the TD report of a TDX quote (v4, or v5 as TDX 1.5 platforms make) without checking signatures."""
    raw = bytes(raw)
    if len(raw) < HEADER_LEN:
        raise QuoteError("malformed", f"quote too short: {len(raw)} bytes")
    version, _key_type, tee_type = struct.unpack_from("<HHI", raw, 0)
    if version not in QUOTE_VERSIONS:
        raise QuoteError("malformed", f"unsupported quote version {version} (expected 4 or 5)")
    if tee_type != TEE_TYPE_TDX:
        raise QuoteError("malformed", f"TEE type {tee_type:#x} is not TDX ({TEE_TYPE_TDX:#x})")
    start = HEADER_LEN
    if version == 5:
        if len(raw) < HEADER_LEN + 6:
            raise QuoteError("malformed", f"quote too short: {len(raw)} bytes")
        body_type, body_size = struct.unpack_from("<HI", raw, HEADER_LEN)
        if body_type not in V5_TDX_BODY_TYPES or body_size < TD_REPORT_LEN:
            raise QuoteError("malformed", f"v5 body type {body_type} of {body_size} bytes is not a TD report")
        start = HEADER_LEN + 6
    if len(raw) < start + TD_REPORT_LEN:
        raise QuoteError(
            "malformed", f"quote too short: {len(raw)} bytes, the TD report ends at byte {start + TD_REPORT_LEN}"
        )
    body = raw[start : start + TD_REPORT_LEN]
    td_attributes = body[TD_ATTRIBUTES]
    r0, r1, r2, r3 = (body[s].hex() for s in RTMRS)
    return QuoteFields(
        mrtd=body[MRTD].hex(),
        rtmrs=(r0, r1, r2, r3),
        report_data=body[REPORT_DATA].hex(),
        td_attributes=td_attributes.hex(),
        debug=bool(td_attributes[0] & TD_ATTRIBUTE_DEBUG),
        mrseam=body[MRSEAM].hex(),
    )


# dcap-qvl reports failures as ValueError("Verification failed: <message>[\n\nCaused by:\n    <cause>]").
# First matching rule wins; substrings are matched case-sensitively against the whole message.
_RULES: tuple[tuple[Reason, tuple[str, ...]], ...] = (
    (Reason.DEBUG_TD, ("Debug mode is enabled",)),
    (Reason.CERT_REVOKED, ("CertRevoked",)),
    (Reason.TCB_REVOKED, ("TCB status is invalid: Revoked",)),
    (
        Reason.COLLATERAL_EXPIRED,
        (
            "TCBInfo expired",
            "QE Identity expired",
            "Collateral expired",
            "issue date is in the future",
            "CrlExpired",
            "CertExpired",
            "CertNotValidYet",
            "certificate expired",
            "certificate revocation list expired",
            "certificate not valid yet",
        ),
    ),
    (
        Reason.NO_MATCHING_TCB,
        ("No matching TCB level", "No TDX module identity", "is below minimum required", "TCB level mismatch"),
    ),
    (
        Reason.SIGNATURE_INVALID,
        (
            "ISV enclave report signature is invalid",
            "Signature is invalid for",  # qe_report in quote, tcb_info / qe_identity in quote_collateral
            "QE report hash mismatch",
        ),
    ),
    (
        Reason.UNTRUSTED_ROOT,
        # The root CRL is checked against the given root first, then each chain is built up to it.
        ("InvalidCrlSignatureForPublicKey", "UnknownIssuer", "InvalidSignatureForPublicKey", "IssuerNotCrlSigner"),
    ),
    (
        Reason.MALFORMED_QUOTE,
        (
            "Failed to decode quote",
            "Unsupported DCAP quote version",
            "TEE quote must have version",
            "Unsupported DCAP attestation key type",
            "Unknown QE vendor ID",
            "Unsupported TEE type",
            "Unsupported cert type",
            "Unsupported certification data type",
            "Unsupported DCAP PCK cert format",
            "Failed to parse PCK certificate",
            "Failed to parse PCK extension",
            "Failed to extract PCK certificates from quote",
            "Certificate chain is too short in quote",
            "Empty PCK certificate chain",
            "Invalid QE auth data length",
            "Failed to decode QE report",
            "Intel extension not found",
            "Failed to get Intel extension",
            "Failed to find Fmspc",
            "Fmspc length mismatch",
            "Failed to find PceSvn",
            "PceSvn length mismatch",
            "Failed to get signed quote scope",
            "Failed to get TD10 report",
        ),
    ),
    (
        Reason.BAD_COLLATERAL,
        (
            "Failed to decode TcbInfo",
            "Failed to decode QeIdentity",
            "Failed to parse TCB Info",
            "Failed to parse QE Identity",
            "Failed to parse root CA CRL",
            "Failed to parse PCK CRL",
            "Failed to parse CRL",
            "Failed to decode hex-encoded",
            "Certificate chain is too short for",
            "Failed to extract PCK certificates from collateral",
            "TCB Info is missing",
            "with non-TDX TCB info",
            "with non-SGX TCB info",
            "Unsupported QE Identity",
            "No TCB levels found",
            "Failed to parse RFC3339",
            "Failed to decode TCB FMSPC",
            "Failed to decode Fmspc",
            "tcbDate",
        ),
    ),
)


def classify_error(message: str) -> Reason:
    """The reason code for one of dcap-qvl's failure messages; `verification_failed` when none fits."""
    for reason, needles in _RULES:
        if any(needle in message for needle in needles):
            return reason
    return Reason.VERIFICATION_FAILED


def _one_line(message: str) -> str:
    message = message.removeprefix("Verification failed: ")
    return " ".join(message.replace("\n\nCaused by:\n", ": ").split())


def _refused(reason: Reason, detail: str, fields: QuoteFields | None = None) -> QuoteVerdict:
    return QuoteVerdict(ok=False, reason=reason, detail=detail, tcb_status=None, advisory_ids=(), fields=fields)


def verify_quote(raw: bytes, collateral_json: str, *, now: int, root_ca_der: bytes | None = None) -> QuoteVerdict:
    """Verify a TDX quote (v4 or v5) against its collateral at Unix time `now`.

    With `root_ca_der=None` the chain must end at Intel's SGX root CA (built into dcap-qvl); otherwise at the
    given DER root (the devnet's dev authority). `ok` means dcap-qvl accepted the evidence; whether its TCB
    status is good enough is the caller's policy (`evaluate_policy`). Never raises for bad input.
    """
    try:
        fields = parse_quote_fields(raw)
    except (QuoteError, TypeError) as exc:
        return _refused(Reason.MALFORMED_QUOTE, str(exc))
    try:
        collateral = dcap_qvl.QuoteCollateralV3.from_json(collateral_json)
    except (ValueError, TypeError) as exc:
        return _refused(Reason.BAD_COLLATERAL, f"collateral unreadable: {_one_line(str(exc))}", fields)
    try:
        if root_ca_der is None:
            report = dcap_qvl.verify(bytes(raw), collateral, now)
        else:
            report = dcap_qvl.verify_with_root_ca(bytes(raw), collateral, bytes(root_ca_der), now)
    except Exception as exc:  # dcap-qvl raises ValueError; anything else (e.g. a bad `now`) is refused too
        message = str(exc)
        return _refused(classify_error(message), _one_line(message) or type(exc).__name__, fields)
    return QuoteVerdict(
        ok=True,
        reason=None,
        detail="verified",
        tcb_status=str(report.status),
        advisory_ids=tuple(str(a) for a in report.advisory_ids),
        fields=fields,
    )


def check_report_data(verdict: QuoteVerdict, *, expected_report_data: bytes) -> QuoteVerdict:
    """`verdict`, refused with `report_data_mismatch` unless REPORTDATA equals `expected_report_data`.

    The expected value (≤ 64 bytes) is zero-padded to 64, as quote providers pad what they are given.
    """
    if not verdict.ok:
        return verdict
    if len(expected_report_data) > 64:
        raise ValueError("expected_report_data must be at most 64 bytes")
    if verdict.fields is None:
        return dataclasses.replace(verdict, ok=False, reason=Reason.VERIFICATION_FAILED, detail="no TD report")
    expected = expected_report_data.ljust(64, b"\0")
    if not hmac.compare_digest(bytes.fromhex(verdict.fields.report_data), expected):
        return dataclasses.replace(
            verdict,
            ok=False,
            reason=Reason.REPORT_DATA_MISMATCH,
            detail=f"REPORTDATA {verdict.fields.report_data} is not the expected {expected.hex()}",
        )
    return verdict


def evaluate_policy(
    verdict: QuoteVerdict,
    *,
    expected_report_data: bytes,
    allowed_tcb: frozenset[str],
    allow_debug: bool = False,
) -> QuoteVerdict:
    """Apply this verifier's policy to a dcap-qvl verdict; a verdict that already failed is returned unchanged.

    Checked in order: REPORTDATA binding, debug TD, TCB status in `allowed_tcb`. (dcap-qvl 0.7.0 itself refuses
    debug TDs, so `allow_debug` only matters for verdicts from a verifier that lets them through.)
    """
    verdict = check_report_data(verdict, expected_report_data=expected_report_data)
    if not verdict.ok or verdict.fields is None:
        return verdict
    if verdict.fields.debug and not allow_debug:
        return dataclasses.replace(
            verdict, ok=False, reason=Reason.DEBUG_TD, detail="the TD is debuggable: the host can read its memory"
        )
    if verdict.tcb_status not in allowed_tcb:
        advisories = f" (advisories: {', '.join(verdict.advisory_ids)})" if verdict.advisory_ids else ""
        allowed = ", ".join(sorted(allowed_tcb))
        return dataclasses.replace(
            verdict,
            ok=False,
            reason=Reason.TCB_STATUS_REFUSED,
            detail=f"TCB status {verdict.tcb_status} is not allowed{advisories}; allowed: {allowed}",
        )
    return verdict
