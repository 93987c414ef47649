"""The dev Intel Trust Authority: signs attestation tokens (JWT, PS384 or RS256) with a locally generated RSA key
and publishes that key as a JWKS, the way ITA publishes its keys at `/certs` — with an `x5c` chain: a certificate
of the key issued by the authority's own root CA (`root_ca_der`), which verifiers may pin.

    authority = DevTokenAuthority.ephemeral()
    jwks = authority.jwks()                            # {"keys": [{"kty": "RSA", "kid": …, "n": …, "e": …}]}
    token = authority.appraisal_token(mrtd=…, rtmrs=…, report_data=…, tcb_status="UpToDate", now=…)

Tokens carry ITA's TDX claims (`tdx_mrtd`, `tdx_rtmr0`..`tdx_rtmr3`, `tdx_report_data`, `attester_tcb_status`, …)
in the version-2 layout (nested under `tdx`) or the version-1 layout (flat, at the top level). `sign` signs any
header and payload, which tests use to build tokens a verifier must refuse (wrong algorithm, unknown key, expired,
missing claims).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

ISSUER = "https://portal.trustauthority.intel.com"
TOKEN_SECONDS = 300  # ITA tokens live about five minutes


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _uint(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def public_jwk(key: rsa.RSAPublicKey, *, kid: str, alg: str | None = None, x5c: Sequence[bytes] = ()) -> dict[str, Any]:
    numbers = key.public_numbers()
    jwk: dict[str, Any] = {"kty": "RSA", "use": "sig", "kid": kid, "n": _uint(numbers.n), "e": _uint(numbers.e)}
    if alg:
        jwk["alg"] = alg
    if x5c:
        jwk["x5c"] = [base64.b64encode(der).decode() for der in x5c]
    return jwk


def certificate(
    subject: str,
    public_key: Any,
    issuer: x509.Certificate | None,
    signer: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    not_before: dt.datetime | None = None,
    days: int = 365,
) -> x509.Certificate:
    """An X.509 certificate of `public_key`; self-signed when `issuer` is None."""
    start = not_before or dt.datetime.now(tz=dt.UTC) - dt.timedelta(days=1)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(signer, hashes.SHA384())


def sign_jwt(header: Mapping[str, Any], payload: Mapping[str, Any], key: rsa.RSAPrivateKey) -> str:
    """A compact JWS of `payload`, signed as `header["alg"]` says (PS384 or RS256) with `key`."""
    head = b64url(json.dumps(dict(header), separators=(",", ":")).encode())
    body = b64url(json.dumps(dict(payload), separators=(",", ":")).encode())
    signing_input = f"{head}.{body}".encode("ascii")
    alg = header.get("alg")
    if alg == "PS384":
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=hashes.SHA384.digest_size)
        signature = key.sign(signing_input, pss, hashes.SHA384())
    elif alg == "RS256":
        signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    else:
        raise ValueError(f"the dev authority signs PS384 or RS256, not {alg!r}")
    return f"{head}.{body}.{b64url(signature)}"


def kid_of(key: rsa.RSAPrivateKey) -> str:
    return hashlib.sha256(_uint(key.public_key().public_numbers().n).encode()).hexdigest()[:32]


class DevTokenAuthority:
    def __init__(self, key: rsa.RSAPrivateKey, *, issuer: str = ISSUER) -> None:
        self.key = key
        self.issuer = issuer
        self.kid = kid_of(key)
        self.root_key = ec.generate_private_key(ec.SECP384R1())
        self.root = certificate("devnet ITA root CA", self.root_key.public_key(), None, self.root_key, ca=True)
        self._leaves: dict[str, bytes] = {}

    @property
    def root_ca_der(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.DER)

    def rotate(self, key: rsa.RSAPrivateKey) -> None:
        """Sign with `key` from now on (and publish only it), as ITA does when it rotates."""
        self.key, self.kid = key, kid_of(key)

    def leaf_der(self) -> bytes:
        if self.kid not in self._leaves:
            cert = certificate("devnet ITA token signing", self.key.public_key(), self.root, self.root_key, ca=False)
            self._leaves[self.kid] = cert.public_bytes(serialization.Encoding.DER)
        return self._leaves[self.kid]

    @classmethod
    def ephemeral(cls, *, issuer: str = ISSUER, bits: int = 3072) -> DevTokenAuthority:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=bits), issuer=issuer)

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        return {"keys": [public_jwk(self.key.public_key(), kid=self.kid, x5c=[self.leaf_der()])]}

    def sign(self, payload: Mapping[str, Any], *, alg: str = "PS384", kid: str | None = None) -> str:
        return sign_jwt({"alg": alg, "typ": "JWT", "kid": self.kid if kid is None else kid}, payload, self.key)

    def appraisal_token(
        self,
        *,
        mrtd: str,
        rtmrs: Sequence[str],
        report_data: str,
        tcb_status: str = "UpToDate",
        advisory_ids: Sequence[str] = (),
        debug: bool = False,
        now: int,
        ttl: int = TOKEN_SECONDS,
        layout: str = "v2",
        alg: str = "PS384",
    ) -> str:
        tdx = {
            "tdx_mrtd": mrtd,
            **{f"tdx_rtmr{i}": rtmrs[i] for i in range(4)},
            "tdx_report_data": report_data,
            "tdx_is_debuggable": debug,
            "attester_tcb_status": tcb_status,
            "attester_advisory_ids": list(advisory_ids),
        }
        envelope = {"iss": self.issuer, "iat": now, "nbf": now, "exp": now + ttl, "jti": str(uuid.uuid4())}
        if layout == "v2":
            payload = {**envelope, "ver": "2.0.0", "tdx": tdx}
        elif layout == "v1":
            payload = {**envelope, "ver": "1.0.0", "attester_type": "TDX", **tdx}
        else:
            raise ValueError(f"layout is v1 or v2, not {layout!r}")
        return self.sign(payload, alg=alg)
