"""DCAP collateral for quote verification: TCB info, QE identity, CRLs and their issuer chains.

Sources, by setting:
- `ATTESTATION_PCCS_URL` (production): fetched from a PCCS/PCS with `dcap_qvl.get_collateral` (at most
  `ATTESTATION_PCCS_TIMEOUT_SECONDS`), cached per platform — keyed by the quote's PCK certificate — until the
  TCB info's `nextUpdate` (at most a day), so an expired collateral is never used. Celery beat
  (`attestation.refresh_collateral`) fetches it again for every platform an executor attested from, ahead of
  expiry, so verification normally never waits on the PCCS and a PCCS outage only matters once a cached copy
  would have expired anyway; a failed refresh keeps the cached copy.
- `ATTESTATION_COLLATERAL_FILE` (dev quote authority, no PCCS): a JSON file as `QuoteCollateralV3.from_json`
  reads it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dcap_qvl
from django.conf import settings
from django.core.cache import cache

from attestation.errors import AttestationError

PEM_START = b"-----BEGIN CERTIFICATE-----"
PEM_END = b"-----END CERTIFICATE-----"
MAX_CACHE_SECONDS = 86_400


class CollateralUnavailable(AttestationError):
    code = "collateral_unavailable"
    status = 503


@dataclass(frozen=True)
class Refreshed:
    platform: str
    ok: bool
    seconds_left: int
    error: str = ""


def platform_key(quote: bytes) -> str:
    """The cache key of a quote's platform: the SHA-256 of its PCK leaf certificate (the first PEM in it)."""
    start = quote.find(PEM_START)
    end = quote.find(PEM_END, start)
    leaf = quote[start:end] if start >= 0 and end > start else quote
    return "dcap-collateral:" + hashlib.sha256(leaf).hexdigest()


def seconds_left(collateral_json: str, *, now: datetime | None = None) -> int:
    """Seconds until the TCB info's `nextUpdate` (capped at a day); 0 when it cannot be read or has passed."""
    try:
        tcb = json.loads(json.loads(collateral_json)["tcb_info"])
        next_update = datetime.fromisoformat(str(tcb["nextUpdate"]).replace("Z", "+00:00"))
    except (KeyError, ValueError, TypeError):
        return 0
    left = (next_update - (now or datetime.now(tz=UTC))).total_seconds()
    return max(0, int(min(left, MAX_CACHE_SECONDS)))


def collateral_json(quote: bytes) -> str:
    """The collateral for `quote`'s platform: the configured file, else the cached copy, else a fetch."""
    if settings.ATTESTATION_COLLATERAL_FILE:
        try:
            return Path(settings.ATTESTATION_COLLATERAL_FILE).read_text()
        except OSError as exc:
            raise CollateralUnavailable(f"cannot read ATTESTATION_COLLATERAL_FILE ({exc.strerror})") from None
    cached = cache.get(platform_key(quote))
    if cached is not None:
        return str(cached)
    return _fetch_and_cache(quote)


def refresh(quote: bytes) -> Refreshed:
    """Fetch the platform's collateral again and replace the cached copy; on failure the old copy stays."""
    key = platform_key(quote)
    try:
        fetched = _fetch_and_cache(quote)
    except CollateralUnavailable as exc:
        cached = cache.get(key)
        return Refreshed(key, False, seconds_left(str(cached)) if cached is not None else 0, exc.message)
    return Refreshed(key, True, seconds_left(fetched))


def _fetch_and_cache(quote: bytes) -> str:
    url = settings.ATTESTATION_PCCS_URL
    if not url:
        raise CollateralUnavailable("no collateral source: set ATTESTATION_PCCS_URL (or a collateral file in dev)")
    fetched = _fetch(url, quote, timeout=float(settings.ATTESTATION_PCCS_TIMEOUT_SECONDS))
    ttl = seconds_left(fetched)
    if ttl <= 0:
        raise CollateralUnavailable(f"the PCCS at {url} served collateral that is already past its nextUpdate")
    cache.set(platform_key(quote), fetched, timeout=ttl)
    return fetched


def _fetch(url: str, quote: bytes, *, timeout: float) -> str:
    async def fetch() -> str:
        # The binding's coroutine needs a running loop when it is created, so it is created inside this one.
        collateral = await asyncio.wait_for(dcap_qvl.get_collateral(url, quote), timeout=timeout)
        return str(collateral.to_json())

    try:
        return asyncio.run(fetch())
    except TimeoutError:
        raise CollateralUnavailable(f"the PCCS at {url} did not answer within {timeout:g} s") from None
    except Exception as exc:  # the binding raises plain ValueError/RuntimeError for network and parse failures
        raise CollateralUnavailable(f"the PCCS at {url} did not give collateral: {str(exc)[:200]}") from None
