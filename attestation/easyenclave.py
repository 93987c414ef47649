"""The EasyEnclave client: discovery of executors, routed only after the control plane itself is verified.

EasyEnclave's own SDK trusted what the control plane said. This client first checks the control plane: a fresh
single-use nonce of ours, `GET /api/v1/attestation?nonce=` → a TDX quote whose REPORTDATA is that nonce (UTF-8,
zero-padded to 64 bytes), verified like an executor's (signature chain, current collateral, TCB policy, no debug
TD) and whose MRTD (and any RTMRs the entry names) must be on the measurement allowlist under the service
`easyenclave-control-plane`. Only then does it ask `GET /api/v1/services?name=mm-executor&tags=…` for
executors. A verification is trusted for `EASYENCLAVE_VERIFY_SECONDS`, a discovery answer for
`EASYENCLAVE_CACHE_SECONDS`; a failed verification is never cached as a pass, and discovery is refused while it
fails. Discovery only says where executors are: each one is still attested by the gate before any job or secret
reaches it, so a lying control plane can withhold executors but cannot get one trusted.

The API followed is upstream's Python control plane (design 1, commit 829f8a9); see docs/easyenclave.md.
"""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings
from django.core.cache import cache

from attestation import services
from attestation.domain.allowlist import Measurements
from attestation.errors import AttestationError
from attestation.selectors import measurement_allowed
from mrmarket.http import outbound_client
from mrmarket.observability.logging import get_logger

log = get_logger(__name__)

CONTROL_PLANE_SERVICE = "easyenclave-control-plane"
EXECUTOR_SERVICE = "mm-executor"
NONCE_PURPOSE = "control-plane"


class EasyEnclaveError(AttestationError):
    code = "easyenclave_error"
    status = 503


class EasyEnclaveUnavailable(EasyEnclaveError):
    """The control plane did not answer (connection, timeout, 5xx)."""

    code = "easyenclave_unavailable"


class EasyEnclaveBadResponse(EasyEnclaveError):
    """The control plane answered something that is not its documented API."""

    code = "easyenclave_bad_response"


class ControlPlaneUnverified(EasyEnclaveError):
    """The control plane's own attestation failed: nothing is routed through it. `reason` says which check."""

    code = "control_plane_unverified"
    status = 409

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, extra={"reason": reason})
        self.reason = reason


@dataclass(frozen=True)
class ControlPlaneVerdict:
    url: str
    verified_at: float
    mrtd: str
    tcb_status: str
    hardware_attested: bool


@dataclass(frozen=True)
class DiscoveredService:
    service_id: str
    name: str
    url: str
    tags: tuple[str, ...]
    mrtd: str
    source_commit: str
    health_status: str


class EasyEnclaveClient:
    def __init__(self, base_url: str | None = None, *, environment: str | None = None) -> None:
        self.base_url = (base_url or settings.EASYENCLAVE_URL).rstrip("/")
        self.environment = environment if environment is not None else settings.EASYENCLAVE_ENVIRONMENT
        if not self.base_url:
            raise EasyEnclaveError("EASYENCLAVE_URL is not set")

    # -- control plane ----------------------------------------------------------------------------------------

    def _verdict_key(self) -> str:
        return f"easyenclave:verified:{self.base_url}"

    def cached_verdict(self) -> ControlPlaneVerdict | None:
        verdict = cache.get(self._verdict_key())
        return verdict if isinstance(verdict, ControlPlaneVerdict) else None

    def ensure_verified(self) -> ControlPlaneVerdict:
        """The control plane's verification, from the cache while it is fresh, else done now."""
        return self.cached_verdict() or self.verify_control_plane()

    def verify_control_plane(self) -> ControlPlaneVerdict:
        from attestation.gate import verify_quote_evidence

        nonce = services.nonce_issue(purpose=NONCE_PURPOSE).value
        body = self._get("/api/v1/attestation", {"nonce": nonce})
        try:
            answered = str(body["nonce"])
            quote = base64.b64decode(str(body["quote_b64"]), validate=True)
            claimed = str(body.get("measurements", {}).get("mrtd", "")).lower()
        except (KeyError, TypeError, AttributeError, binascii.Error):
            raise EasyEnclaveBadResponse("the control plane's attestation answer lacks nonce or quote_b64") from None
        services.nonce_consume(value=nonce, purpose=NONCE_PURPOSE)
        if answered != nonce:
            self._refuse("wrong_nonce", "the control plane answered another nonce")
        verdict, hardware = verify_quote_evidence(quote, expected=nonce.encode().ljust(64, b"\0"))
        if not verdict.ok:
            self._refuse(str(verdict.reason or "verification_failed"), verdict.detail)
        assert verdict.fields is not None
        measured = Measurements(verdict.fields.mrtd, verdict.fields.rtmrs)
        if claimed and claimed != measured.mrtd:
            self._refuse("measurement_mismatch", "the MRTD the control plane claims is not the one its quote shows")
        if measurement_allowed(measured=measured, service=CONTROL_PLANE_SERVICE) is None:
            self._refuse("unknown_measurement", f"control-plane MRTD {measured.mrtd[:16]}… is not allowlisted")
        result = ControlPlaneVerdict(self.base_url, time.time(), measured.mrtd, verdict.tcb_status or "", hardware)
        cache.set(self._verdict_key(), result, timeout=settings.EASYENCLAVE_VERIFY_SECONDS)
        log.info("control_plane_verified", url=self.base_url, tcb_status=result.tcb_status, hardware=hardware)
        return result

    def _refuse(self, reason: str, detail: str) -> None:
        cache.delete(self._verdict_key())
        log.warning("control_plane_refused", url=self.base_url, reason=reason)
        raise ControlPlaneUnverified(reason, f"the EasyEnclave control plane failed attestation: {reason}: {detail}")

    # -- discovery --------------------------------------------------------------------------------------------

    def discover(self, *, service: str = EXECUTOR_SERVICE, tags: tuple[str, ...] = ()) -> list[DiscoveredService]:
        """Healthy (or not yet probed) services by name and tags, each at its URL for our environment."""
        self.ensure_verified()
        key = f"easyenclave:discovery:{self.base_url}:{self.environment}:{service}:{','.join(sorted(tags))}"
        cached = cache.get(key)
        if isinstance(cached, list):
            return cached
        params = {"name": service, "environment": self.environment}
        if tags:
            params["tags"] = ",".join(sorted(tags))
        body = self._get("/api/v1/services", params)
        try:
            rows = body["services"]
            found = [self._service(row) for row in rows]
        except (KeyError, TypeError, AttributeError) as exc:
            raise EasyEnclaveBadResponse(f"the control plane's service list is malformed ({exc!r})") from None
        usable = [s for s in found if s.url and s.health_status != "unhealthy"]
        cache.set(key, usable, timeout=settings.EASYENCLAVE_CACHE_SECONDS)
        return usable

    def _service(self, row: dict[str, Any]) -> DiscoveredService:
        return DiscoveredService(
            service_id=str(row["service_id"]),
            name=str(row["name"]),
            url=str(row["endpoints"].get(self.environment, "")).rstrip("/"),
            tags=tuple(str(t) for t in row.get("tags", [])),
            mrtd=str(row.get("mrtd", "")).lower(),
            source_commit=str(row.get("source_commit", "")),
            health_status=str(row.get("health_status", "unknown")),
        )

    # -- transport --------------------------------------------------------------------------------------------

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        url = self.base_url + path
        try:
            with outbound_client(timeout=settings.EASYENCLAVE_TIMEOUT_SECONDS) as client:
                response = client.get(url, params=params)
        except httpx.HTTPError as exc:
            failure = type(exc).__name__
            raise EasyEnclaveUnavailable(f"EasyEnclave at {self.base_url} did not answer ({failure})") from None
        if response.status_code >= 500:
            raise EasyEnclaveUnavailable(f"EasyEnclave at {self.base_url} answered {response.status_code}")
        if response.status_code != 200:
            raise EasyEnclaveBadResponse(f"EasyEnclave refused {path}: {response.status_code} {response.text[:200]}")
        try:
            body = response.json()
        except ValueError:
            raise EasyEnclaveBadResponse(f"EasyEnclave answered {path} with something that is not JSON") from None
        if not isinstance(body, dict):
            raise EasyEnclaveBadResponse(f"EasyEnclave answered {path} with a JSON {type(body).__name__}")
        return body


def discovered_executor_urls(*, exchange: str | None = None) -> list[str]:
    """Executors EasyEnclave knows for this exchange (tag `exchange:<id>`) and the configured tags; empty when
    EasyEnclave is not configured. Raises when the control plane cannot be verified: nothing is routed then."""
    if not settings.EASYENCLAVE_URL:
        return []
    tags = tuple(settings.EASYENCLAVE_TAGS) + ((f"exchange:{exchange}",) if exchange else ())
    found = EasyEnclaveClient().discover(tags=tags)
    services.executors_discovered(found=[(s.url, s.service_id, list(s.tags)) for s in found])
    return [s.url for s in found]
