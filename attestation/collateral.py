"""DCAP collateral for quote verification: TCB info, QE identity, CRLs and their issuer chains.

Sources, by setting:
- `ATTESTATION_PCCS_URL` (production): fetched from a PCCS/PCS with `dcap_qvl.get_collateral`, cached per
  platform (keyed by the quote's PCK certificate) until the TCB info's `nextUpdate` (at most a day), so an
  expired collateral is never used and a PCCS outage only matters once the cached copy expires.
- `ATTESTATION_COLLATERAL_FILE` (dev, tests): a JSON file as `QuoteCollateralV3.from_json` reads it — the
  devnet's dev quote authority writes one for its own root.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import cache

from attestation.errors import AttestationError

PEM_START = b"-----BEGIN CERTIFICATE-----"
MAX_CACHE_SECONDS = 86_400


class CollateralUnavailable(AttestationError):
    code = "collateral_unavailable"
    status = 503


def _pck_key(quote: bytes) -> str:
    start = quote.find(PEM_START)
    end = quote.find(b"-----END CERTIFICATE-----", start)
    leaf = quote[start:end] if start >= 0 and end > start else quote
    return "dcap-collateral:" + hashlib.sha256(leaf).hexdigest()


def _seconds_left(collateral_json: str) -> int:
    try:
        tcb = json.loads(json.loads(collateral_json)["tcb_info"])
        next_update = datetime.fromisoformat(str(tcb["nextUpdate"]).replace("Z", "+00:00"))
    except (KeyError, ValueError, TypeError):
        return 0
    return int(min((next_update - datetime.now(tz=UTC)).total_seconds(), MAX_CACHE_SECONDS))


def collateral_json(quote: bytes) -> str:
    if settings.ATTESTATION_COLLATERAL_FILE:
        try:
            return Path(settings.ATTESTATION_COLLATERAL_FILE).read_text()
        except OSError as exc:
            raise CollateralUnavailable(f"cannot read ATTESTATION_COLLATERAL_FILE ({exc.strerror})") from None
    if not settings.ATTESTATION_PCCS_URL:
        raise CollateralUnavailable("no collateral source: set ATTESTATION_PCCS_URL (or a collateral file in dev)")
    key = _pck_key(quote)
    cached = cache.get(key)
    if cached is not None:
        return str(cached)
    fetched = _fetch(settings.ATTESTATION_PCCS_URL, quote)
    ttl = _seconds_left(fetched)
    if ttl > 0:
        cache.set(key, fetched, timeout=ttl)
    return fetched


def _fetch(url: str, quote: bytes) -> str:
    import dcap_qvl

    try:
        result: Any = dcap_qvl.get_collateral(url, quote)
        if inspect.isawaitable(result):
            result = asyncio.run(_await(result))
        return str(result.to_json())
    except Exception as exc:  # the binding raises plain exceptions for network and parse failures
        raise CollateralUnavailable(f"the PCCS at {url} did not give collateral ({type(exc).__name__})") from None


async def _await(awaitable: Any) -> Any:
    return await awaitable
