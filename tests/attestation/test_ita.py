"""Intel Trust Authority tokens: signature by kid (PS384/RS256 only), issuer, times, TDX claims in both layouts,
and one distinct reason per refusal. Pure: no database, no network."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt.types import Options

from attestation.domain.ita import Jwks, TokenError, TokenReason, claims_verdict, read_header, verify_token
from attestation.domain.quote import evaluate_policy
from devnet.ita.authority import ISSUER, DevTokenAuthority, b64url, certificate, public_jwk, sign_jwt

NOW = 1_800_000_000
NOW_REAL = int(time.time())  # the dev authority's certificates are valid around now
MRTD = "a1" * 48
RTMRS = ("b2" * 48, "c3" * 48, "d4" * 48, "00" * 48)
REPORT_DATA = "e5" * 64


@pytest.fixture(scope="module")
def authority() -> DevTokenAuthority:
    return DevTokenAuthority.ephemeral()


@pytest.fixture(scope="module")
def jwks(authority: DevTokenAuthority) -> Jwks:
    return Jwks.from_json(json.dumps(authority.jwks()))


def token_for(authority: DevTokenAuthority, **kw: object) -> str:
    args: dict[str, object] = {"mrtd": MRTD, "rtmrs": RTMRS, "report_data": REPORT_DATA, "now": NOW}
    args.update(kw)
    return authority.appraisal_token(**args)  # type: ignore[arg-type]


def refused(token: str, jwks: Jwks, *, now: int = NOW + 10, **kw: object) -> str:
    with pytest.raises(TokenError) as info:
        verify_token(token, jwks, issuer=ISSUER, now=now, **kw)  # type: ignore[arg-type]
    assert info.value.message
    return info.value.code


def payload_of(authority: DevTokenAuthority, **kw: object) -> dict:
    token = token_for(authority, **kw)
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))


@pytest.mark.parametrize("layout", ["v1", "v2"])
@pytest.mark.parametrize("alg", ["PS384", "RS256"])
def test_a_good_token_verifies_in_both_layouts_and_algorithms(authority, jwks, layout, alg):
    token = token_for(authority, layout=layout, alg=alg, advisory_ids=["INTEL-SA-00837"])
    claims = verify_token(token, jwks, issuer=ISSUER, now=NOW + 10)
    assert (claims.mrtd, claims.rtmrs, claims.report_data) == (MRTD, RTMRS, REPORT_DATA)
    assert claims.tcb_status == "UpToDate"
    assert claims.advisory_ids == ("INTEL-SA-00837",)
    assert claims.layout == layout
    assert claims.is_debug is False
    assert claims.expires_at == NOW + 300


def test_verified_claims_go_through_the_quote_policy(authority, jwks):
    claims = verify_token(token_for(authority), jwks, issuer=ISSUER, now=NOW)
    verdict = claims_verdict(claims)
    allowed = frozenset({"UpToDate"})
    assert evaluate_policy(verdict, expected_report_data=bytes.fromhex(REPORT_DATA), allowed_tcb=allowed).ok
    assert evaluate_policy(verdict, expected_report_data=b"other", allowed_tcb=allowed).reason == "report_data_mismatch"
    debug = claims_verdict(verify_token(token_for(authority, debug=True), jwks, issuer=ISSUER, now=NOW))
    assert evaluate_policy(debug, expected_report_data=bytes.fromhex(REPORT_DATA), allowed_tcb=allowed).reason == (
        "debug_td"
    )
    stale = claims_verdict(verify_token(token_for(authority, tcb_status="OutOfDate"), jwks, issuer=ISSUER, now=NOW))
    assert evaluate_policy(stale, expected_report_data=bytes.fromhex(REPORT_DATA), allowed_tcb=allowed).reason == (
        "tcb_status_refused"
    )


def test_hs256_signed_with_the_public_key_is_refused_before_any_key_is_used(authority, jwks):
    """Key confusion: an attacker "signs" with HMAC keyed by the published RSA key. Refused by its alg alone."""
    payload = payload_of(authority)
    header = {"alg": "HS256", "typ": "JWT", "kid": authority.kid}
    secret = json.dumps(authority.jwks()["keys"][0]).encode()
    head = b64url(json.dumps(header).encode())
    body = b64url(json.dumps(payload).encode())
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    assert refused(f"{head}.{body}.{b64url(mac)}", jwks) == TokenReason.ALG_NOT_ALLOWED


@pytest.mark.parametrize("alg", ["none", "HS384", "HS512", "ES256", "ES384", "PS256", "RS512", None, 7])
def test_every_other_algorithm_is_refused(authority, jwks, alg):
    head = b64url(json.dumps({"alg": alg, "kid": authority.kid}).encode())
    body = b64url(json.dumps(payload_of(authority)).encode())
    assert refused(f"{head}.{body}.", jwks) == TokenReason.ALG_NOT_ALLOWED
    assert refused(f"{head}.{body}.c2ln", jwks) == TokenReason.ALG_NOT_ALLOWED


def test_unknown_kid_and_a_token_without_kid(authority, jwks):
    payload = payload_of(authority)
    assert refused(authority.sign(payload, kid="someone-else"), jwks) == TokenReason.UNKNOWN_KID
    no_kid = sign_jwt({"alg": "PS384", "typ": "JWT"}, payload, authority.key)
    assert refused(no_kid, jwks) == TokenReason.UNKNOWN_KID


def test_a_token_signed_by_another_key_under_a_known_kid_fails_its_signature(authority, jwks):
    other = DevTokenAuthority.ephemeral(bits=2048)
    forged = sign_jwt({"alg": "PS384", "kid": authority.kid}, payload_of(authority), other.key)
    assert refused(forged, jwks) == TokenReason.BAD_SIGNATURE


def test_a_changed_claim_fails_the_signature(authority, jwks):
    head, _body, sig = token_for(authority).split(".")
    payload = payload_of(authority)
    payload["tdx"]["tdx_mrtd"] = "ff" * 48
    assert refused(f"{head}.{b64url(json.dumps(payload).encode())}.{sig}", jwks) == TokenReason.BAD_SIGNATURE


def test_unusable_keys_are_refused_by_name():
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    good = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP384R1())
    doc = {
        "keys": [
            public_jwk(small.public_key(), kid="small"),
            public_jwk(good.public_key(), kid="rs256-only", alg="RS256"),
            {**public_jwk(good.public_key(), kid="enc"), "use": "enc"},
            {"kty": "EC", "kid": "ec", "crv": "P-384", "x": "AA", "y": "AA"},
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
        ]
    }
    jwks = Jwks.from_json(doc)
    payload = {"iss": ISSUER, "exp": NOW + 60}
    assert refused(sign_jwt({"alg": "PS384", "kid": "small"}, payload, small), jwks) == TokenReason.BAD_KEY
    assert refused(sign_jwt({"alg": "PS384", "kid": "rs256-only"}, payload, good), jwks) == TokenReason.BAD_KEY
    assert refused(sign_jwt({"alg": "PS384", "kid": "enc"}, payload, good), jwks) == TokenReason.BAD_KEY
    assert refused(sign_jwt({"alg": "PS384", "kid": "broken"}, payload, good), jwks) == TokenReason.BAD_KEY
    assert refused(sign_jwt({"alg": "PS384", "kid": "ec"}, payload, good), jwks) == TokenReason.BAD_KEY
    del ec_key


@pytest.mark.parametrize("text", ["not json", "[]", '{"keys": 3}', "{}"])
def test_an_unreadable_jwks_is_refused(text):
    with pytest.raises(TokenError) as info:
        Jwks.from_json(text)
    assert info.value.code == "bad_jwks"


def test_issuer_and_audience(authority, jwks):
    token = token_for(authority)
    with pytest.raises(TokenError) as info:
        verify_token(token, jwks, issuer="https://evil.example", now=NOW)
    assert info.value.code == TokenReason.WRONG_ISSUER
    assert refused(token, jwks, audience="mrmarket") == TokenReason.WRONG_AUDIENCE
    with_aud = authority.sign({**payload_of(authority), "aud": ["x", "mrmarket"]})
    assert verify_token(with_aud, jwks, issuer=ISSUER, now=NOW, audience="mrmarket").mrtd == MRTD


def test_expiry_and_not_before_with_leeway(authority, jwks):
    token = token_for(authority, ttl=300)
    assert refused(token, jwks, now=NOW + 300) == TokenReason.EXPIRED
    assert verify_token(token, jwks, issuer=ISSUER, now=NOW + 300, leeway=30).mrtd == MRTD
    assert refused(token, jwks, now=NOW - 1) == TokenReason.NOT_YET_VALID
    assert verify_token(token, jwks, issuer=ISSUER, now=NOW - 1, leeway=30).mrtd == MRTD
    no_exp = payload_of(authority)
    del no_exp["exp"]
    assert refused(authority.sign(no_exp), jwks) == TokenReason.MISSING_CLAIM
    assert refused(authority.sign({**payload_of(authority), "exp": "later"}), jwks) == TokenReason.BAD_CLAIM


@pytest.mark.parametrize(
    "claim", ["tdx_mrtd", "tdx_rtmr0", "tdx_rtmr3", "tdx_report_data", "attester_tcb_status", "tdx_is_debuggable"]
)
@pytest.mark.parametrize("layout", ["v1", "v2"])
def test_each_missing_tdx_claim_is_named(authority, jwks, claim, layout):
    payload = payload_of(authority, layout=layout)
    (payload["tdx"] if layout == "v2" else payload).pop(claim)
    with pytest.raises(TokenError) as info:
        verify_token(authority.sign(payload), jwks, issuer=ISSUER, now=NOW)
    assert info.value.code == TokenReason.MISSING_CLAIM
    assert claim in info.value.message


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("tdx_mrtd", "a1" * 47),
        ("tdx_mrtd", "zz" * 48),
        ("tdx_rtmr1", 12),
        ("tdx_report_data", "e5" * 48),
        ("attester_tcb_status", ["UpToDate"]),
        ("attester_advisory_ids", "INTEL-SA-1"),
        ("tdx_is_debuggable", "false"),
    ],
)
def test_each_malformed_tdx_claim_is_named(authority, jwks, claim, value):
    payload = payload_of(authority)
    payload["tdx"][claim] = value
    with pytest.raises(TokenError) as info:
        verify_token(authority.sign(payload), jwks, issuer=ISSUER, now=NOW)
    assert info.value.code == TokenReason.BAD_CLAIM
    assert claim in info.value.message


def test_the_older_debug_claim_name_is_read(authority, jwks):
    payload = payload_of(authority, layout="v1")
    del payload["tdx_is_debuggable"]
    payload["tdx_td_attributes_debug"] = True
    assert verify_token(authority.sign(payload), jwks, issuer=ISSUER, now=NOW).is_debug is True


@pytest.mark.parametrize("token", ["", "a.b", "a.b.c.d", "!!!.e30.x", "bnVsbA.e30.", "e30.bnVsbA.", 42])
def test_malformed_tokens(jwks, token):
    code = refused(token, jwks)
    assert code in (TokenReason.MALFORMED_TOKEN, TokenReason.ALG_NOT_ALLOWED)
    if token in ("", "a.b", "a.b.c.d", 42):
        assert code == TokenReason.MALFORMED_TOKEN


def test_critical_headers_and_non_canonical_base64_are_refused(authority, jwks):
    payload = payload_of(authority)
    crit = sign_jwt({"alg": "PS384", "kid": authority.kid, "crit": ["exp"]}, payload, authority.key)
    assert refused(crit, jwks) == TokenReason.MALFORMED_TOKEN
    header = b'{"alg":"PS384","kid":"k"}'  # 25 bytes: the last base64url character carries 4 unused bits
    head = b64url(header)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    stray = alphabet[alphabet.index(head[-1]) ^ 1]
    twin = head[:-1] + stray
    assert base64.urlsafe_b64decode(twin + "==") == header  # a lenient decoder reads the same header
    with pytest.raises(TokenError) as info:
        read_header(f"{twin}.e30.")
    assert info.value.code == TokenReason.MALFORMED_TOKEN
    assert read_header(token_for(authority))["kid"] == authority.kid


def test_an_alg_none_token_made_by_pyjwt_itself_is_refused(authority, jwks):
    unsigned = jwt.encode(payload_of(authority), "", algorithm="none", headers={"kid": authority.kid})
    assert unsigned.endswith(".")
    assert refused(unsigned, jwks) == TokenReason.ALG_NOT_ALLOWED


def test_hs256_keyed_with_the_pem_public_key_is_refused(authority, jwks):
    """The classic key confusion: the verifier's RSA public key, as PEM, used as the HMAC secret."""
    pem = authority.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": authority.kid}).encode())
    body = b64url(json.dumps(payload_of(authority)).encode())
    mac = hmac.new(pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
    assert refused(f"{head}.{body}.{b64url(mac)}", jwks) == TokenReason.ALG_NOT_ALLOWED


def test_headers_that_would_fetch_or_carry_a_key_are_ignored(authority, jwks):
    """`jku`, `x5u`, `jwk` and `x5c` never choose the key: the pinned JWKS does, by `kid`."""
    attacker = DevTokenAuthority.ephemeral(bits=2048)
    redirect = {
        "jku": "https://evil.example/certs",
        "x5u": "https://evil.example/cert.pem",
        "jwk": public_jwk(attacker.key.public_key(), kid=authority.kid),
        "x5c": [base64.b64encode(attacker.leaf_der()).decode()],
    }
    payload = payload_of(authority)
    forged = sign_jwt({"alg": "PS384", "kid": authority.kid, **redirect}, payload, attacker.key)
    assert refused(forged, jwks) == TokenReason.BAD_SIGNATURE
    own_kid = sign_jwt({"alg": "PS384", "kid": attacker.kid, **redirect}, payload, attacker.key)
    assert refused(own_kid, jwks) == TokenReason.UNKNOWN_KID
    genuine = sign_jwt({"alg": "PS384", "kid": authority.kid, **redirect}, payload, authority.key)
    assert verify_token(genuine, jwks, issuer=ISSUER, now=NOW + 10).mrtd == MRTD


@pytest.mark.parametrize("kid", [7, ["k"], {"kid": "k"}, "", None])
def test_a_kid_that_is_not_a_key_name_is_an_unknown_kid(authority, jwks, kid):
    token = sign_jwt({"alg": "PS384", "kid": kid}, payload_of(authority), authority.key)
    assert refused(token, jwks) == TokenReason.UNKNOWN_KID


def test_the_alg_is_judged_before_crit_and_kid(authority, jwks):
    head = b64url(json.dumps({"alg": "HS256", "kid": 7, "crit": ["exp"]}).encode())
    body = b64url(json.dumps(payload_of(authority)).encode())
    assert refused(f"{head}.{body}.c2ln", jwks) == TokenReason.ALG_NOT_ALLOWED


def test_padded_parts_and_an_unencoded_payload_are_malformed(authority, jwks):
    small = DevTokenAuthority.ephemeral(bits=2048)
    head, body, sig = token_for(small).split(".")
    assert len(sig) == 342  # 256 signature bytes: the padded spelling ends in "=="
    padded = f"{head}.{body}.{sig}=="
    lenient: Options = {"verify_exp": False, "verify_iat": False, "verify_nbf": False}
    assert jwt.decode(padded, small.key.public_key(), algorithms=["PS384"], options=lenient)  # PyJWT reads it
    assert refused(padded, Jwks.from_json(small.jwks())) == TokenReason.MALFORMED_TOKEN  # our pre-check does not
    payload = payload_of(authority)
    for header in ({"b64": False}, {"b64": False, "crit": ["b64"]}):
        token = sign_jwt({"alg": "PS384", "kid": authority.kid, **header}, payload, authority.key)
        assert refused(token, jwks) == TokenReason.MALFORMED_TOKEN


def test_a_jwks_entry_that_also_carries_private_members_yields_only_its_public_key(authority):
    private = jwt.algorithms.RSAAlgorithm.to_jwk(authority.key, as_dict=True)
    jwks = Jwks.from_json({"keys": [{**private, "kid": authority.kid, "use": "sig"}]})
    assert verify_token(token_for(authority), jwks, issuer=ISSUER, now=NOW).mrtd == MRTD


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(part=st.sampled_from([0, 1, 2]), index=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_any_flipped_bit_is_refused(authority, jwks, part, index, bit):
    parts = token_for(authority).split(".")
    raw = bytearray(base64.urlsafe_b64decode(parts[part] + "=="))
    raw[index % len(raw)] ^= 1 << bit
    parts[part] = b64url(bytes(raw))
    with pytest.raises(TokenError):
        verify_token(".".join(parts), jwks, issuer=ISSUER, now=NOW + 10)


# --- pinning ITA's signing root through the keys' x5c chains ---------------------------------------------------


def test_a_key_chained_to_the_pinned_root_verifies(authority, jwks):
    claims = verify_token(
        token_for(authority, now=NOW_REAL), jwks, issuer=ISSUER, now=NOW_REAL, root_ca_der=authority.root_ca_der
    )
    assert claims.mrtd == MRTD


def pinned_refusal(jwks_doc: dict, token: str, root: bytes) -> str:
    with pytest.raises(TokenError) as info:
        verify_token(token, Jwks.from_json(jwks_doc), issuer=ISSUER, now=NOW_REAL, root_ca_der=root)
    assert info.value.message
    return info.value.code


def test_keys_without_a_chain_to_the_pinned_root_are_untrusted(authority):
    token = token_for(authority, now=NOW_REAL)
    bare = {"keys": [public_jwk(authority.key.public_key(), kid=authority.kid)]}
    assert pinned_refusal(bare, token, authority.root_ca_der) == TokenReason.UNTRUSTED_KEY
    other = DevTokenAuthority(authority.key)  # same key, certified under another root
    assert pinned_refusal(other.jwks(), token, authority.root_ca_der) == TokenReason.UNTRUSTED_KEY
    stranger = DevTokenAuthority.ephemeral(bits=2048)  # a certificate of another key under the right root
    swapped = authority.jwks()
    swapped["keys"][0]["x5c"] = [base64.b64encode(stranger.leaf_der()).decode()]
    assert pinned_refusal(swapped, token, stranger.root_ca_der) == TokenReason.UNTRUSTED_KEY
    broken = authority.jwks()
    broken["keys"][0]["x5c"] = ["!!!"]
    assert pinned_refusal(broken, token, authority.root_ca_der) == TokenReason.BAD_KEY


def test_an_end_entity_cannot_issue_and_expired_certificates_do_not_count(authority):
    token = token_for(authority, now=NOW_REAL)
    # A leaf issued by a non-CA certificate that itself chains to the root.
    middle_key = ec.generate_private_key(ec.SECP384R1())
    middle = certificate("not a CA", middle_key.public_key(), authority.root, authority.root_key, ca=False)
    leaf = certificate("signing", authority.key.public_key(), middle, middle_key, ca=False)
    der = [c.public_bytes(serialization.Encoding.DER) for c in (leaf, middle)]
    doc = {"keys": [public_jwk(authority.key.public_key(), kid=authority.kid, x5c=der)]}
    assert pinned_refusal(doc, token, authority.root_ca_der) == TokenReason.UNTRUSTED_KEY
    old = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    expired = certificate(
        "signing", authority.key.public_key(), authority.root, authority.root_key, ca=False, not_before=old, days=30
    )
    doc = {
        "keys": [
            public_jwk(
                authority.key.public_key(), kid=authority.kid, x5c=[expired.public_bytes(serialization.Encoding.DER)]
            )
        ]
    }
    assert pinned_refusal(doc, token, authority.root_ca_der) == TokenReason.UNTRUSTED_KEY
