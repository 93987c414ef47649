"""Verifying an Intel Trust Authority (ITA) attestation token. Pure: PyJWT and `cryptography`, no network, no Django.

An ITA token is a JWT in which Intel states that it appraised a TDX quote: the TD's measurements, its
REPORTDATA, the platform's TCB status and advisories. The JWS itself (base64url, the three parts, the JSON header
and payload, the PS384/RS256 signature) is decoded and verified by PyJWT; our own code is the policy on top. We
accept a token only when, in this order,

1. it is a string of at most 64 KiB without `=` padding, and PyJWT reads it as three canonical base64url parts
   whose header is a JSON object (`malformed_token`). The padding refusal is our one pre-check on the raw text:
   PyJWT accepts padded parts, we keep one spelling per token,
2. its `alg` is PS384 (ITA's default) or RS256 (on request) — never `none`, HS* (the classic key-confusion
   attack: an HMAC "signed" with the public key), ES* or anything else (`alg_not_allowed`), checked by us before
   any key is looked at; then no `crit` header (`malformed_token`; PyJWT also refuses `b64: false`, RFC 7797's
   unencoded payload, as `malformed_token` — ITA never sends it),
3. its `kid` names a key of the configured JWKS (`unknown_kid`) that is an RSA signing key of at least 2048
   bits whose own `alg`, if stated, is the token's (`bad_key`); the signature verifies under it (`bad_signature`,
   PyJWT, given that one key and that one algorithm; PS384 is RSASSA-PSS with SHA-384, MGF1-SHA-384 and a 48-byte
   salt, RFC 7518 §3.5), and the payload is a JSON object (`malformed_token`),
4. `iss` is the configured issuer (`wrong_issuer`), `exp` is in the future (`expired`) and `nbf`/`iat`, when
   present, not in the future (`not_yet_valid`), within `leeway` seconds; `aud` matches when one is expected,
5. the TDX claims are present (`missing_claim`) and well-formed (`bad_claim`): `tdx_mrtd`, `tdx_rtmr0`..`3`
   (48 bytes hex each), `tdx_report_data` (64 bytes hex), `attester_tcb_status`, optional
   `attester_advisory_ids`, and the debug flag (`tdx_is_debuggable` or `tdx_td_attributes_debug`). Version-1
   tokens carry them at the top level, version-2 tokens under `tdx`.

Ours, not PyJWT's: the algorithm allowlist and its order, the `kid` lookup and key checks, `crit`, and every
claim check (4 and 5). PyJWT's claim checks are switched off because they read the wall clock and we verify at a
given `now`; its header checks are replaced by ours (`_PolicyJws`) so that each refusal keeps its own code (PyJWT
would refuse a non-string `kid` or any `crit` before we could say `alg_not_allowed`/`unknown_kid`). The JWKS's RSA
members are read by PyJWT (`RSAAlgorithm.from_jwk`), one key at a time: `PyJWKSet` drops unusable keys silently, and
a token naming one must be refused with `bad_key` rather than `unknown_kid`.

The token's `jku`, `x5u` and `jwk` headers are ignored: keys come only from the JWKS the operator configured. When a
root certificate is given (`root_ca_der`, ITA's signing root), the key must also carry an `x5c` chain, as Intel's
own clients require: its leaf certifies exactly this RSA key, each certificate is issued by the next (CAs marked
as such), the last by the root, all valid at `now` (`untrusted_key`). Then whoever serves the JWKS cannot slip in a
key of their own.
Whether the verified claims are acceptable (REPORTDATA binding, TCB policy, debug, allowlist) is decided by the
same policy as for quotes (`quote.evaluate_policy`, `allowlist`), through `claims_verdict`.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import jwt
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from jwt.types import Options

from attestation.domain.quote import QuoteFields, QuoteVerdict

ALLOWED_ALGS = ("PS384", "RS256")
MIN_RSA_BITS = 2048
MAX_TOKEN_BYTES = 64 * 1024
MEASUREMENT_HEX = 96
REPORT_DATA_HEX = 128


class TokenReason(StrEnum):
    MALFORMED_TOKEN = "malformed_token"  # noqa: S105 (reason codes, not passwords)
    ALG_NOT_ALLOWED = "alg_not_allowed"
    UNKNOWN_KID = "unknown_kid"
    BAD_KEY = "bad_key"
    UNTRUSTED_KEY = "untrusted_key"
    BAD_SIGNATURE = "bad_signature"
    WRONG_ISSUER = "wrong_issuer"
    WRONG_AUDIENCE = "wrong_audience"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    MISSING_CLAIM = "missing_claim"
    BAD_CLAIM = "bad_claim"


class TokenError(ValueError):
    """A token (or JWKS) that is refused; `code` is a `TokenReason` value (or `bad_jwks`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Jwk:
    kid: str
    alg: str | None
    public_key: rsa.RSAPublicKey | None  # None: not an RSA signing key we can use (refused when selected)
    problem: str = ""
    x5c: tuple[bytes, ...] = ()  # DER certificates, the key's own first


@dataclass(frozen=True)
class Jwks:
    keys: Mapping[str, Jwk]

    @classmethod
    def from_json(cls, text: str | bytes | Mapping[str, Any]) -> Jwks:
        """Read a JSON Web Key Set. Keys that are not usable RSA signature keys are kept, marked with why, so a
        token naming one is refused with `bad_key` rather than `unknown_kid`."""
        try:
            doc = dict(text) if isinstance(text, Mapping) else json.loads(text)
        except (ValueError, TypeError) as exc:
            raise TokenError("bad_jwks", f"JWKS is not JSON: {exc}") from None
        raw_keys = doc.get("keys") if isinstance(doc, dict) else None
        if not isinstance(raw_keys, list):
            raise TokenError("bad_jwks", "JWKS has no `keys` list")
        keys: dict[str, Jwk] = {}
        for raw in raw_keys:
            if isinstance(raw, dict) and isinstance(raw.get("kid"), str):
                key = _read_jwk(raw)
                keys.setdefault(key.kid, key)  # a duplicate kid never replaces the first
        return cls(keys)

    def get(self, kid: str) -> Jwk | None:
        return self.keys.get(kid)


def _read_jwk(raw: dict[str, Any]) -> Jwk:
    kid, alg = str(raw["kid"]), raw.get("alg")
    alg = alg if isinstance(alg, str) else None
    if raw.get("kty") != "RSA":
        return Jwk(kid, alg, None, f"key type {raw.get('kty')!r} is not RSA")
    if raw.get("use") not in (None, "sig"):
        return Jwk(kid, alg, None, f"key use {raw.get('use')!r} is not sig")
    try:
        # Only the public members: a JWKS that (wrongly) also publishes `d` still yields just the public key.
        parsed = RSAAlgorithm.from_jwk({name: raw[name] for name in ("kty", "n", "e") if name in raw})
    except (jwt.InvalidKeyError, ValueError, TypeError) as exc:
        return Jwk(kid, alg, None, f"RSA key unreadable: {exc}")
    if not isinstance(parsed, rsa.RSAPublicKey):
        return Jwk(kid, alg, None, "RSA key unreadable: not a public key")
    public_key = parsed
    if public_key.key_size < MIN_RSA_BITS:
        return Jwk(kid, alg, None, f"RSA key of {public_key.key_size} bits is shorter than {MIN_RSA_BITS}")
    chain = raw.get("x5c") or []
    try:
        if not isinstance(chain, list):
            raise TypeError("x5c is not a list")
        x5c = tuple(base64.b64decode(str(c), validate=True) for c in chain)  # standard base64 (RFC 7517 §4.7)
    except (ValueError, TypeError, binascii.Error) as exc:
        return Jwk(kid, alg, None, f"x5c unreadable: {exc}")
    return Jwk(kid, alg, public_key, x5c=x5c)


def check_chain(key: Jwk, root_ca_der: bytes, *, now: int) -> None:
    """The key's `x5c` leads from a certificate of exactly this key to the given root, all valid at `now`."""
    assert key.public_key is not None
    if not key.x5c:
        raise TokenError(TokenReason.UNTRUSTED_KEY, f"key {key.kid!r} has no x5c chain to the configured root")
    try:
        certs = [x509.load_der_x509_certificate(der) for der in key.x5c]
        root = x509.load_der_x509_certificate(root_ca_der)
    except ValueError as exc:
        raise TokenError(TokenReason.UNTRUSTED_KEY, f"key {key.kid!r}: a certificate is unreadable: {exc}") from None
    leaf_key = certs[0].public_key()
    if not isinstance(leaf_key, rsa.RSAPublicKey) or leaf_key.public_numbers() != key.public_key.public_numbers():
        raise TokenError(TokenReason.UNTRUSTED_KEY, f"key {key.kid!r}: its x5c certifies another key")
    when = datetime.fromtimestamp(now, tz=UTC)
    if certs[-1].fingerprint(hashes.SHA256()) != root.fingerprint(hashes.SHA256()):
        certs.append(root)
    for cert, issuer in itertools.pairwise(certs):
        try:
            cert.verify_directly_issued_by(issuer)
            ca = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound) as exc:
            detail = str(exc) or type(exc).__name__
            raise TokenError(TokenReason.UNTRUSTED_KEY, f"key {key.kid!r}: x5c does not chain: {detail}") from None
        if not ca:
            raise TokenError(TokenReason.UNTRUSTED_KEY, f"key {key.kid!r}: {issuer.subject} is not a CA")
    for cert in certs:
        if not cert.not_valid_before_utc <= when <= cert.not_valid_after_utc:
            raise TokenError(TokenReason.UNTRUSTED_KEY, f"key {key.kid!r}: {cert.subject} is not valid now")


@dataclass(frozen=True)
class TokenClaims:
    """The verified TDX appraisal of one token; hex lowercase."""

    mrtd: str
    rtmrs: tuple[str, str, str, str]
    report_data: str
    tcb_status: str
    advisory_ids: tuple[str, ...]
    is_debug: bool
    issuer: str
    expires_at: int
    layout: str  # "v1" (flat) or "v2" (nested under `tdx`)
    raw: Mapping[str, Any]


class _PolicyJws(jwt.PyJWS):
    """PyJWT's JWS decoder without its own header checks (`kid` a string, `crit` understood): `verify_token` makes
    them itself, after the `alg` check and with its own codes. Base64url, JSON and signature stay PyJWT's."""

    def _validate_headers(self, headers: dict[str, Any], *, encoding: bool = False) -> None:
        return None


_JWS = _PolicyJws()
# PyJWT's claim checks read the wall clock; ours take `now` (and refuse with our codes), so all of them are off.
_SIGNATURE_ONLY: Options = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
    "require": [],
}


def _text(token: object) -> str:
    if not isinstance(token, str) or len(token) > MAX_TOKEN_BYTES:
        raise TokenError(TokenReason.MALFORMED_TOKEN, "token is not a string of at most 64 KiB")
    text = token.strip()
    if "=" in text:  # PyJWT reads padded parts too; one token, one spelling
        raise TokenError(TokenReason.MALFORMED_TOKEN, "token parts are padded (`=`), not base64url without padding")
    return text


def read_header(token: str) -> dict[str, Any]:
    """The token's header, after the structural checks (three canonical base64url parts, a JSON object header)."""
    try:
        return _JWS.get_unverified_header(_text(token))
    except jwt.DecodeError as exc:
        raise TokenError(TokenReason.MALFORMED_TOKEN, f"token is not a compact JWS: {exc}") from None


def _verified_payload(token: str, alg: str, key: rsa.RSAPublicKey) -> dict[str, Any]:
    """The payload once PyJWT verified the signature with this one key and this one (already allowed) algorithm."""
    try:
        return jwt.decode(token, key, algorithms=[alg], options=_SIGNATURE_ONLY)
    except jwt.InvalidSignatureError:
        raise TokenError(TokenReason.BAD_SIGNATURE, f"the {alg} signature does not verify") from None
    except jwt.InvalidAlgorithmError as exc:  # cannot happen after our `alg` check; refused all the same
        raise TokenError(TokenReason.ALG_NOT_ALLOWED, f"alg {alg!r} is not allowed: {exc}") from None
    except jwt.InvalidTokenError as exc:  # the payload is not a JSON object, or `b64` without `crit`
        raise TokenError(TokenReason.MALFORMED_TOKEN, f"token payload is unreadable: {exc}") from None


def _number(payload: Mapping[str, Any], name: str) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenError(TokenReason.BAD_CLAIM, f"`{name}` is not a number")
    return int(value)


def _check_times(payload: Mapping[str, Any], *, now: int, leeway: int) -> int:
    exp = _number(payload, "exp")
    if exp is None:
        raise TokenError(TokenReason.MISSING_CLAIM, "the token has no `exp`")
    if now >= exp + leeway:
        raise TokenError(TokenReason.EXPIRED, f"the token expired at {exp} (now {now})")
    for name in ("nbf", "iat"):
        when = _number(payload, name)
        if when is not None and when > now + leeway:
            raise TokenError(TokenReason.NOT_YET_VALID, f"the token's `{name}` {when} is in the future (now {now})")
    return exp


def _hex_claim(claims: Mapping[str, Any], name: str, length: int) -> str:
    if name not in claims:
        raise TokenError(TokenReason.MISSING_CLAIM, f"the token has no `{name}`")
    value = claims[name]
    if not isinstance(value, str) or len(value) != length:
        raise TokenError(TokenReason.BAD_CLAIM, f"`{name}` is not {length} hex characters")
    try:
        bytes.fromhex(value)
    except ValueError:
        raise TokenError(TokenReason.BAD_CLAIM, f"`{name}` is not hex") from None
    return value.lower()


def _tdx_claims(payload: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    nested = payload.get("tdx")
    if nested is not None:
        if not isinstance(nested, dict):
            raise TokenError(TokenReason.BAD_CLAIM, "`tdx` is not an object")
        return "v2", nested
    return "v1", payload


def _debug_flag(claims: Mapping[str, Any]) -> bool:
    for name in ("tdx_is_debuggable", "tdx_td_attributes_debug"):
        if name in claims:
            if not isinstance(claims[name], bool):
                raise TokenError(TokenReason.BAD_CLAIM, f"`{name}` is not a boolean")
            return bool(claims[name])
    raise TokenError(TokenReason.MISSING_CLAIM, "the token has no `tdx_is_debuggable`")


def verify_token(
    token: str,
    jwks: Jwks,
    *,
    issuer: str,
    now: int,
    leeway: int = 0,
    audience: str | None = None,
    root_ca_der: bytes | None = None,
) -> TokenClaims:
    """Verify an ITA token at Unix time `now`; raises `TokenError` with one `TokenReason` code per failure."""
    header = read_header(token)
    alg = header.get("alg")
    if alg not in ALLOWED_ALGS:
        raise TokenError(TokenReason.ALG_NOT_ALLOWED, f"alg {alg!r} is not allowed (only {', '.join(ALLOWED_ALGS)})")
    if "crit" in header:
        raise TokenError(TokenReason.MALFORMED_TOKEN, "critical header extensions are not supported")
    # The key comes from the configured JWKS by `kid` only: `jku`, `x5u`, `jwk` and `x5c` headers are never read.
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenError(TokenReason.UNKNOWN_KID, "the token names no key (`kid`)")
    key = jwks.get(kid)
    if key is None:
        raise TokenError(TokenReason.UNKNOWN_KID, f"no key {kid!r} in the configured JWKS")
    if key.public_key is None:
        raise TokenError(TokenReason.BAD_KEY, f"key {kid!r}: {key.problem}")
    if key.alg is not None and key.alg != alg:
        raise TokenError(TokenReason.BAD_KEY, f"key {kid!r} is for {key.alg}, the token says {alg}")
    if root_ca_der is not None:
        check_chain(key, root_ca_der, now=now)
    payload = _verified_payload(_text(token), alg, key.public_key)

    if payload.get("iss") != issuer:
        raise TokenError(TokenReason.WRONG_ISSUER, f"issuer {payload.get('iss')!r} is not {issuer!r}")
    expires_at = _check_times(payload, now=now, leeway=leeway)
    if audience is not None:
        aud = payload.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if audience not in audiences:
            raise TokenError(TokenReason.WRONG_AUDIENCE, f"audience {aud!r} does not include {audience!r}")

    layout, claims = _tdx_claims(payload)
    mrtd = _hex_claim(claims, "tdx_mrtd", MEASUREMENT_HEX)
    r0, r1, r2, r3 = (_hex_claim(claims, f"tdx_rtmr{i}", MEASUREMENT_HEX) for i in range(4))
    report_data = _hex_claim(claims, "tdx_report_data", REPORT_DATA_HEX)
    tcb_status = claims.get("attester_tcb_status")
    if tcb_status is None:
        raise TokenError(TokenReason.MISSING_CLAIM, "the token has no `attester_tcb_status`")
    if not isinstance(tcb_status, str) or not tcb_status:
        raise TokenError(TokenReason.BAD_CLAIM, "`attester_tcb_status` is not a string")
    advisories = claims.get("attester_advisory_ids") or []
    if not isinstance(advisories, list) or not all(isinstance(a, str) for a in advisories):
        raise TokenError(TokenReason.BAD_CLAIM, "`attester_advisory_ids` is not a list of strings")
    return TokenClaims(
        mrtd=mrtd,
        rtmrs=(r0, r1, r2, r3),
        report_data=report_data,
        tcb_status=tcb_status,
        advisory_ids=tuple(advisories),
        is_debug=_debug_flag(claims),
        issuer=issuer,
        expires_at=expires_at,
        layout=layout,
        raw=payload,
    )


def claims_verdict(claims: TokenClaims) -> QuoteVerdict:
    """The verified token as a genuine-evidence verdict, for the policy shared with quotes (`evaluate_policy`)."""
    fields = QuoteFields(
        mrtd=claims.mrtd,
        rtmrs=claims.rtmrs,
        report_data=claims.report_data,
        td_attributes="",
        debug=claims.is_debug,
        mrseam="",
    )
    return QuoteVerdict(
        ok=True,
        reason=None,
        detail=f"ITA token ({claims.layout}) verified",
        tcb_status=claims.tcb_status,
        advisory_ids=claims.advisory_ids,
        fields=fields,
    )
