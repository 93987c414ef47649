"""Intel Trust Authority tokens as executor evidence: the configured JWKS, fetched and cached, and verification.

ITA is on when both `ATTESTATION_ITA_JWKS_URL` (ITA's `/certs`; https in production) and
`ATTESTATION_ITA_ISSUER` are set. The JWKS is cached for `ATTESTATION_ITA_JWKS_CACHE_SECONDS`; a token naming a
key the cached set lacks makes one refetch (ITA rotates keys), at most once a minute, so tokens with made-up
`kid`s cannot turn into a flood of requests to ITA. With `ATTESTATION_ITA_ROOT_CA_FILE` (ITA's token-signing root,
PEM or DER) a key counts only when its `x5c` chain leads to that root, so the JWKS host alone cannot add a key.
The token checks themselves are pure (`domain/ita.py`).
"""

from __future__ import annotations

from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.core.cache import cache

from attestation.domain.ita import Jwks, TokenClaims, TokenError, TokenReason, verify_token
from attestation.errors import AttestationError
from mrmarket.http import outbound_client
from mrmarket.observability.logging import get_logger

log = get_logger(__name__)
REFETCH_INTERVAL_SECONDS = 60


class ItaUnavailable(AttestationError):
    """The JWKS could not be fetched or read: no token can be checked now (nothing is accepted)."""

    code = "ita_unavailable"
    status = 503


def configured() -> bool:
    return bool(settings.ATTESTATION_ITA_JWKS_URL and settings.ATTESTATION_ITA_ISSUER)


def _cache_key() -> str:
    return f"ita:jwks:{settings.ATTESTATION_ITA_JWKS_URL}"


def _fetch() -> str:
    url = settings.ATTESTATION_ITA_JWKS_URL
    try:
        with outbound_client(timeout=settings.OUTBOUND_HTTP_TIMEOUT_SECONDS) as client:
            response = client.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise ItaUnavailable(f"the ITA JWKS at {url} did not answer ({type(exc).__name__})") from None
    if response.status_code != 200:
        raise ItaUnavailable(f"the ITA JWKS at {url} answered {response.status_code}")
    try:
        Jwks.from_json(response.text)
    except TokenError as exc:
        raise ItaUnavailable(f"the ITA JWKS at {url} is unreadable: {exc.message}") from None
    return response.text


def jwks(*, refresh: bool = False) -> Jwks:
    text = None if refresh else cache.get(_cache_key())
    if not isinstance(text, str):
        text = _fetch()
        cache.set(_cache_key(), text, timeout=settings.ATTESTATION_ITA_JWKS_CACHE_SECONDS)
        log.info("ita_jwks_fetched", url=settings.ATTESTATION_ITA_JWKS_URL)
    return Jwks.from_json(text)


def root_ca_der() -> bytes | None:
    path = settings.ATTESTATION_ITA_ROOT_CA_FILE
    if not path:
        return None
    try:
        data = Path(path).read_bytes()
        cert = x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data else x509.load_der_x509_certificate(data)
    except (OSError, ValueError) as exc:
        raise ItaUnavailable(f"ATTESTATION_ITA_ROOT_CA_FILE is unreadable: {exc}") from None
    return cert.public_bytes(serialization.Encoding.DER)


def verify(token: str, *, now: int) -> TokenClaims:
    """The token's verified claims; raises `TokenError` (refused) or `ItaUnavailable` (cannot check now)."""
    if not configured():
        raise TokenError("ita_not_configured", "Intel Trust Authority tokens are not accepted here (no JWKS/issuer)")

    root = root_ca_der()

    def check(keys: Jwks) -> TokenClaims:
        return verify_token(
            token,
            keys,
            issuer=settings.ATTESTATION_ITA_ISSUER,
            now=now,
            leeway=settings.ATTESTATION_ITA_LEEWAY_SECONDS,
            audience=settings.ATTESTATION_ITA_AUDIENCE or None,
            root_ca_der=root,
        )

    try:
        return check(jwks())
    except TokenError as exc:
        refetch = cache.add(f"ita:jwks-refetch:{settings.ATTESTATION_ITA_JWKS_URL}", 1, REFETCH_INTERVAL_SECONDS)
        if exc.code != TokenReason.UNKNOWN_KID or not refetch:
            raise
    return check(jwks(refresh=True))
