"""The dev Intel Trust Authority: signs attestation tokens (JWT, PS384 or RS256) with a locally generated RSA key
and publishes that key as a JWKS, the way ITA publishes its keys at `/certs`.

    authority = DevTokenAuthority.ephemeral()
    jwks = authority.jwks()                            # {"keys": [{"kty": "RSA", "kid": …, "n": …, "e": …}]}
    token = authority.appraisal_token(mrtd=…, rtmrs=…, report_data=…, tcb_status="UpToDate", now=…)

Tokens carry ITA's TDX claims (TRUST-NOTES "Intel Trust Authority tokens") in the version-2 layout (nested under
`tdx`) or the version-1 layout (flat). `sign` signs any header and payload, which tests use to build tokens a
verifier must refuse (wrong algorithm, unknown key, expired, missing claims).
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ISSUER = "https://portal.trustauthority.intel.com"
TOKEN_SECONDS = 300  # ITA tokens live about five minutes


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _uint(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def public_jwk(key: rsa.RSAPublicKey, *, kid: str, alg: str | None = None) -> dict[str, str]:
    numbers = key.public_numbers()
    jwk = {"kty": "RSA", "use": "sig", "kid": kid, "n": _uint(numbers.n), "e": _uint(numbers.e)}
    if alg:
        jwk["alg"] = alg
    return jwk


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


class DevTokenAuthority:
    def __init__(self, key: rsa.RSAPrivateKey, *, issuer: str = ISSUER) -> None:
        self.key = key
        self.issuer = issuer
        self.kid = hashlib.sha256(_uint(key.public_key().public_numbers().n).encode()).hexdigest()[:32]

    @classmethod
    def ephemeral(cls, *, issuer: str = ISSUER, bits: int = 3072) -> DevTokenAuthority:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=bits), issuer=issuer)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [public_jwk(self.key.public_key(), kid=self.kid)]}

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
