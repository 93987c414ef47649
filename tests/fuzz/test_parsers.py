"""Hypothesis fuzzing of every parser of outside input: each input either parses or is refused with the parser's
own typed error, never another exception (and never a crash of the process).

The parsers and their errors: JSON from the other side (`wire.canonical.parse`, CanonicalFormError); signed
reports (`SignedReport.from_json`, `verify_report`, `verify_chain`, WireError); job specs (`JobSpec.parse`,
WireError); TDX quotes (`parse_quote_fields`, QuoteError; `verify_quote` never raises) mutated from the real Intel
quote; Intel Trust Authority tokens and key sets (`verify_token`, `Jwks.from_json`, TokenError), re-signed after
each mutation so the claims are reached; Sign-In with Ethereum messages (`siwe_verify`, SiweError), re-signed
likewise; campaign metadata (`validate`, MetadataError); published evidence files (`verify_evidence`,
EvidenceFormatError).

Inputs are valid documents after one to three edits (tests/fuzz/mutations.py) and raw bytes. Bounded: a fixed
number of examples each, derandomized (the same inputs on every run), no example database.
"""

from __future__ import annotations

import base64
import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from django.conf import settings as django_settings
from eth_account import Account
from eth_account.messages import encode_defunct
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from siwe import SiweMessage

from attestation.domain.evidence import EvidenceFormatError, evidence_bytes, verify_evidence
from attestation.domain.ita import Jwks, TokenClaims, TokenError, verify_token
from attestation.domain.quote import HEADER_LEN, TD_REPORT_LEN, QuoteError, parse_quote_fields, verify_quote
from campaigns.domain.metadata import MetadataError, validate
from devnet.ita.authority import ISSUER, DevTokenAuthority, b64url
from mrmarket import siwe
from mrmarket.config import ConfigError
from tests.campaigns.test_metadata import good as good_metadata
from tests.executor.harness import job_spec
from tests.fuzz.mutations import JSON_VALUES, mutated, mutated_bytes
from tests.plugins.require import require
from tests.wire.builders import KEY, chain, report
from wire.canonical import canonical_bytes, parse
from wire.errors import CanonicalFormError, WireError
from wire.jobs import JobSpec
from wire.reports import SignedReport, report_bytes, sign_report, verify_chain, verify_report

pytestmark = pytest.mark.fuzz

FUZZ = settings(
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
FEW = settings(FUZZ, max_examples=100)  # for parsers behind an RSA signature or a quote verification per example

# The real quote's fixture: beside the checkout (…/shared/fixtures/tdx, as tests/attestation/test_quote.py looks),
# or beside the worktrees' parent when the checkout is a worktree.
_BASE = Path(django_settings.BASE_DIR)
FIXTURES = next(
    (
        p
        for p in (_BASE.parent / "shared" / "fixtures" / "tdx", _BASE.parent.parent / "shared" / "fixtures" / "tdx")
        if (p / "tdx_quote").exists()
    ),
    _BASE.parent / "shared" / "fixtures" / "tdx",
)
AT = 1_751_000_000  # the real quote's collateral is current then (its README)


# --- JSON from the other side ------------------------------------------------------------------------------------

GOOD_JSON = canonical_bytes(chain(1)[0].as_json())


@FUZZ
@given(st.binary(max_size=256) | mutated_bytes(GOOD_JSON) | st.text(max_size=64).map(str.encode))
def test_json_from_the_other_side_parses_or_is_a_canonical_form_error(data: bytes) -> None:
    try:
        value = parse(data)
    except CanonicalFormError:
        return
    # What parses has no float in it (NaN and Infinity included) and is text.
    assert "float" not in json.dumps(value, default=lambda o: type(o).__name__)
    assert not any(isinstance(v, float) for v in _leaves(value))


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


# --- signed reports ----------------------------------------------------------------------------------------------

FIRST, SECOND = chain(2)


@FUZZ
@given(mutated(FIRST.as_json()))
def test_a_mutated_envelope_verifies_only_if_unchanged(envelope: Any) -> None:
    try:
        signed = SignedReport.from_json(envelope)
        verify_report(signed, signing_key=KEY.public_hex)
    except WireError:
        return
    assert signed.report == FIRST.report  # anything else changed the digest or the signature


@FUZZ
@given(mutated_bytes(report_bytes(SECOND)))
def test_a_mutated_envelope_as_bytes_is_refused_typed(data: bytes) -> None:
    try:
        signed = SignedReport.from_json(parse(data))
        verify_chain([signed], signing_key=KEY.public_hex, after=FIRST)
    except WireError:
        return
    assert signed.report == SECOND.report


@FUZZ
@given(mutated(report(1, prev_digest=FIRST.digest)))
def test_a_mutated_report_signed_by_the_executor_verifies_or_is_refused_typed(doc: Any) -> None:
    """Signed after the mutation, so the schema and the chain rules behind the signature are reached."""
    try:
        signed = sign_report(doc, KEY)
    except WireError:
        return
    verify_report(signed, signing_key=KEY.public_hex)  # what signs verifies
    with contextlib.suppress(WireError):
        verify_chain([signed], signing_key=KEY.public_hex, after=FIRST)


# --- job specs ---------------------------------------------------------------------------------------------------


@FUZZ
@given(mutated(job_spec("job-fuzz")))
def test_a_mutated_job_spec_parses_or_is_refused_typed(raw: Any) -> None:
    try:
        spec = JobSpec.parse(raw)
    except WireError:
        return
    # A spec that parses writes back the document it was parsed from, and has a digest.
    assert spec.canonical() == canonical_bytes(raw)
    assert JobSpec.parse(json.loads(spec.canonical())).digest() == spec.digest()


# --- TDX quotes --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_quote() -> tuple[bytes, str]:
    require("the real TDX quote fixture", (FIXTURES / "tdx_quote").exists(), f"looked in {FIXTURES}")
    return (FIXTURES / "tdx_quote").read_bytes(), (FIXTURES / "tdx_quote_collateral.json").read_text()


@FUZZ
@given(data=st.data())
def test_a_mutated_quote_is_read_or_is_a_quote_error(real_quote: tuple[bytes, str], data: st.DataObject) -> None:
    raw = data.draw(mutated_bytes(real_quote[0]) | st.binary(max_size=700))
    try:
        fields = parse_quote_fields(raw)
    except QuoteError:
        return
    assert len(fields.mrtd) == 96
    assert len(fields.report_data) == 128


@FEW
@given(data=st.data())
def test_a_mutated_quote_never_verifies_and_never_raises(real_quote: tuple[bytes, str], data: st.DataObject) -> None:
    raw, collateral = real_quote
    tampered = data.draw(mutated_bytes(raw))
    verdict = verify_quote(tampered, collateral, now=AT)
    signed = HEADER_LEN + TD_REPORT_LEN  # the header and the TD report, under the quote's signature
    if tampered[:signed] != raw[:signed]:
        assert not verdict.ok, "a changed header or TD report verified"


@FEW
@given(data=st.data())
def test_mutated_collateral_is_refused_in_a_verdict(real_quote: tuple[bytes, str], data: st.DataObject) -> None:
    raw, collateral = real_quote
    document = json.loads(collateral)
    text = data.draw(mutated(document).map(json.dumps) | mutated_bytes(collateral.encode()).map(_lossy))
    verdict = verify_quote(raw, text, now=AT)
    assert verdict.ok or verdict.reason


def _lossy(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


# --- Intel Trust Authority tokens --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def authority() -> DevTokenAuthority:
    return DevTokenAuthority.ephemeral(bits=2048)


def _payload(authority: DevTokenAuthority) -> dict[str, Any]:
    token = authority.appraisal_token(
        mrtd="a1" * 48, rtmrs=("b2" * 48,) * 4, report_data="e5" * 64, now=AT, advisory_ids=["INTEL-SA-00837"]
    )
    return dict(json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "==")))


def _signed(header: Any, payload: Any, authority: DevTokenAuthority) -> str:
    """A compact JWS of any JSON header and payload, signed by the authority's key (PS384 unless RS256 is asked)."""
    head = b64url(json.dumps(header, separators=(",", ":")).encode())
    body = b64url(json.dumps(payload, separators=(",", ":")).encode())
    signing_input = f"{head}.{body}".encode("ascii")
    if isinstance(header, dict) and header.get("alg") == "RS256":
        signature = authority.key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    else:
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=hashes.SHA384.digest_size)
        signature = authority.key.sign(signing_input, pss, hashes.SHA384())
    return f"{head}.{body}.{b64url(signature)}"


@FEW
@given(data=st.data())
def test_a_re_signed_mutated_token_verifies_or_is_a_token_error(
    authority: DevTokenAuthority, data: st.DataObject
) -> None:
    """The claims mutated and the token signed again by the trusted key: every claim check is reached."""
    header = {"alg": "PS384", "typ": "JWT", "kid": authority.kid}
    header = data.draw(st.just(header) | mutated(header, edits=1))
    payload = data.draw(mutated(_payload(authority)))
    token = _signed(header, payload, authority)
    jwks = Jwks.from_json(json.dumps(authority.jwks()))
    try:
        claims = verify_token(token, jwks, issuer=ISSUER, now=AT + 10)
    except TokenError:
        return
    assert isinstance(claims, TokenClaims)


@FUZZ
@given(data=st.data())
def test_a_mangled_token_string_is_a_token_error(authority: DevTokenAuthority, data: st.DataObject) -> None:
    good = authority.appraisal_token(mrtd="a1" * 48, rtmrs=("b2" * 48,) * 4, report_data="e5" * 64, now=AT)
    token = data.draw(
        mutated_bytes(good.encode()).map(_lossy)
        | st.text(max_size=64)
        | st.lists(st.text(alphabet="AZaz09-_=.", max_size=12), min_size=1, max_size=5).map(".".join)
        | JSON_VALUES
    )
    jwks = Jwks.from_json(json.dumps(authority.jwks()))
    try:
        verify_token(token, jwks, issuer=ISSUER, now=AT + 10)  # type: ignore[arg-type]  # any JSON value
    except TokenError:
        return
    assert token == good


@FUZZ
@given(data=st.data())
def test_a_mutated_key_set_is_read_or_is_a_token_error(authority: DevTokenAuthority, data: st.DataObject) -> None:
    document = data.draw(mutated(authority.jwks()).map(json.dumps) | st.text(max_size=32))
    try:
        jwks = Jwks.from_json(document)
    except TokenError:
        return
    token = authority.appraisal_token(mrtd="a1" * 48, rtmrs=("b2" * 48,) * 4, report_data="e5" * 64, now=AT)
    with contextlib.suppress(TokenError):
        verify_token(token, jwks, issuer=ISSUER, now=AT + 10, root_ca_der=authority.root_ca_der)


# --- Sign-In with Ethereum ---------------------------------------------------------------------------------------

WALLET = Account.from_key("0x" + "4d" * 32)
SIWE_NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CHAIN_ID = 31337
RESOURCE = siwe.campaign_resource(CHAIN_ID, "0x" + "ab" * 20)


def _siwe_message() -> str:
    fields = {
        "domain": "localhost",
        "address": WALLET.address,
        "statement": "Join the campaign as a market maker.",
        "uri": "http://localhost/participants",
        "version": "1",
        "chain_id": CHAIN_ID,
        "nonce": "abcdefgh12345678",
        "issued_at": "2026-06-01T11:59:00.000Z",
        "expiration_time": "2026-06-01T12:05:00.000Z",
        "resources": [RESOURCE],
    }
    return str(SiweMessage(**fields).prepare_message())


class _AnyNonce:
    """Takes every nonce: the store is not the parser under test (tests/core/test_siwe.py covers it)."""

    def consume(self, nonce: str, *, now: datetime) -> None:
        assert isinstance(nonce, str)


@st.composite
def _siwe_texts(draw: st.DrawFn) -> str:
    lines = _siwe_message().split("\n")
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["edit", "drop", "duplicate", "replace"]))
        if action == "edit":
            lines[at] = draw(mutated_bytes(lines[at].encode(), edits=2).map(_lossy))
        elif action == "drop":
            del lines[at]
        elif action == "duplicate":
            lines.insert(at, lines[at])
        else:
            lines[at] = draw(st.text(max_size=40))
        if not lines:
            lines = [""]
    return "\n".join(lines)


@pytest.fixture
def no_chain(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    """Contract wallets are asked of the chain; without one only EOA signatures are checked (siwe's own path)."""
    settings.SIWE_DOMAIN = "localhost"

    def unconfigured() -> Any:
        raise ConfigError("no chain in the parser fuzz")

    monkeypatch.setattr(siwe, "get_web3", unconfigured)


@FUZZ
@given(message=_siwe_texts(), resign=st.booleans(), signature=st.text(max_size=140))
def test_a_mutated_siwe_message_verifies_or_is_a_siwe_error(
    no_chain: None, message: str, resign: bool, signature: str
) -> None:
    """Re-signed by the wallet half the time, so the checks behind the signature are reached too."""
    if resign:
        signature = "0x" + WALLET.sign_message(encode_defunct(text=message)).signature.hex()
    try:
        verified = siwe.siwe_verify(
            message=message,
            signature=signature,
            chain_id=CHAIN_ID,
            resource=RESOURCE,
            nonces=_AnyNonce(),
            now=SIWE_NOW,
        )
    except siwe.SiweError:
        return
    assert resign
    assert verified.address == WALLET.address.lower()
    assert verified.expires_at > SIWE_NOW


def test_the_unmutated_siwe_message_verifies(no_chain: None) -> None:
    """The fuzz's starting point is valid: its refusals come from the mutations."""
    message = _siwe_message()
    signature = "0x" + WALLET.sign_message(encode_defunct(text=message)).signature.hex()
    verified = siwe.siwe_verify(
        message=message, signature=signature, chain_id=CHAIN_ID, resource=RESOURCE, nonces=_AnyNonce(), now=SIWE_NOW
    )
    assert verified.address == WALLET.address.lower()
    assert siwe.siwe_claimed_address(message) == WALLET.address.lower()


@FUZZ
@given(_siwe_texts() | st.text(max_size=80))
def test_the_claimed_address_is_read_from_any_text(message: str) -> None:
    address = siwe.siwe_claimed_address(message)
    assert address is None or (address.startswith("0x") and address == address.lower())


# --- campaign metadata -------------------------------------------------------------------------------------------


@FUZZ
@given(mutated(good_metadata()) | mutated(good_metadata("high_volatility")))
def test_mutated_campaign_metadata_is_valid_or_a_metadata_error(doc: Any) -> None:
    try:
        validate(doc)
    except MetadataError:
        return
    canonical_bytes(doc)  # valid metadata has a hash


# --- published evidence ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def evidence(real_quote: tuple[bytes, str]) -> bytes:
    raw, collateral = real_quote
    fields = parse_quote_fields(raw)
    body = {
        "executor": {"signing_key": "11" * 32, "sealing_key": "22" * 32},
        "attestation": {"verified_at_unix": AT, "nonce": "33" * 32, "runtime_config": {}},
        "quote_b64": base64.b64encode(raw).decode(),
        "collateral": collateral,
        "ita_token": None,
        "root": {"kind": "intel", "ca_der_b64": None},
        "server_verdict": {
            "ok": True,
            "mrtd": fields.mrtd,
            **{f"rtmr{i}": fields.rtmrs[i] for i in range(4)},
            "tcb_status": "UpToDate",
        },
    }
    return evidence_bytes(body)


@FEW
@given(data=st.data())
def test_a_mutated_evidence_file_is_checked_or_is_an_evidence_format_error(
    evidence: bytes, data: st.DataObject
) -> None:
    document = json.loads(evidence)
    raw = data.draw(mutated_bytes(evidence) | mutated(document).map(lambda d: json.dumps(d).encode()))
    try:
        result = verify_evidence(raw, allowlist={"entries": []})
    except EvidenceFormatError:
        return
    assert all(check.name for check in result.checks)
