"""The EasyEnclave client: discovery of executors, routed only after the control plane itself is verified.

EasyEnclave's own SDK trusted what the control plane said. This client first checks the control plane: a fresh
single-use nonce of ours, `GET /api/v1/attestation?nonce=` → its Ed25519 signing key and a TDX quote whose
REPORTDATA binds that nonce and that key (`wire/control_plane.py`), verified like an executor's (signature
chain, current collateral, TCB policy, no debug TD) and whose measurements must match an allowlist entry of the
service `easyenclave-control-plane`. Only then does it ask `GET /api/v1/services?name=mm-executor&tags=…&nonce=`
for executors, with a fresh nonce each time, and it uses the answer only when it is signed by that attested key
over the query it asked, its nonce and the list itself — so the list comes from the verified TD, for this
request, unaltered, whatever sits on the path. The control-plane URL must be https unless `EASYENCLAVE_ALLOW_HTTP`
(dev and tests only; production refuses it).

A verification is trusted for `EASYENCLAVE_VERIFY_SECONDS`, a discovery answer for `EASYENCLAVE_CACHE_SECONDS`;
a failed verification is never cached as a pass, and discovery is refused while it fails. An answer that does
not verify under a cached key makes one fresh verification (the control plane may have restarted with a new
key) and one new request before it is refused. Discovery only says where executors are: each one is still
attested by the gate before any job or secret reaches it.

The API followed is upstream's Python control plane (design 1, commit 829f8a9); see docs/easyenclave.md.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from dataclasses import dataclass
from typing import Any, NoReturn

import httpx
from django.conf import settings
from django.core.cache import cache

from attestation import services
from attestation.domain.allowlist import Measurements
from attestation.errors import AttestationError
from attestation.gate import verify_quote_evidence
from attestation.selectors import measurement_allowed
from mrmarket.http import outbound_client
from mrmarket.observability.logging import get_logger
from wire.control_plane import SIGNATURE_TAG, ControlPlaneBindingError, report_data, signed_payload
from wire.errors import WireError
from wire.keys import verify_signature

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


class EasyEnclaveInsecureUrl(EasyEnclaveError):
    """The control-plane URL is not https and plain http is not allowed here (`EASYENCLAVE_ALLOW_HTTP`)."""

    code = "easyenclave_insecure_url"


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
    signing_key: str  # bound by its quote: what every discovery answer must be signed with


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
        insecure = self.base_url.startswith("http://") and not settings.EASYENCLAVE_ALLOW_HTTP
        if insecure or not self.base_url.startswith(("https://", "http://")):
            raise EasyEnclaveInsecureUrl(
                f"the EasyEnclave control plane must be reached over https (got {self.base_url.split(':')[0]}://)"
            )

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
        nonce = services.nonce_issue(purpose=NONCE_PURPOSE).value
        body = self._get("/api/v1/attestation", {"nonce": nonce})
        try:
            answered = str(body["nonce"])
            signing_key = str(body["signing_key"]).lower()
            quote = base64.b64decode(str(body["quote_b64"]), validate=True)
            claimed = str(body.get("measurements", {}).get("mrtd", "")).lower()
        except (KeyError, TypeError, AttributeError, binascii.Error):
            raise EasyEnclaveBadResponse(
                "the control plane's attestation answer lacks nonce, signing_key or quote_b64"
            ) from None
        services.nonce_consume(value=nonce, purpose=NONCE_PURPOSE)
        if answered != nonce:
            self._refuse("wrong_nonce", "the control plane answered another nonce")
        try:
            expected = report_data(nonce=nonce, signing_key=signing_key)
        except ControlPlaneBindingError as exc:
            self._refuse("malformed_evidence", exc.message)
        checked = verify_quote_evidence(quote, expected=expected)
        verdict, hardware = checked.verdict, checked.hardware
        if not verdict.ok:
            self._refuse(str(verdict.reason or "verification_failed"), verdict.detail)
        assert verdict.fields is not None
        measured = Measurements(verdict.fields.mrtd, verdict.fields.rtmrs)
        if claimed and claimed != measured.mrtd:
            self._refuse("measurement_mismatch", "the MRTD the control plane claims is not the one its quote shows")
        if measurement_allowed(measured=measured, service=CONTROL_PLANE_SERVICE) is None:
            self._refuse("unknown_measurement", f"control-plane MRTD {measured.mrtd[:16]}… is not allowlisted")
        result = ControlPlaneVerdict(
            self.base_url, time.time(), measured.mrtd, verdict.tcb_status or "", hardware, signing_key
        )
        cache.set(self._verdict_key(), result, timeout=settings.EASYENCLAVE_VERIFY_SECONDS)
        log.info("control_plane_verified", url=self.base_url, tcb_status=result.tcb_status, hardware=hardware)
        return result

    def _refuse(self, reason: str, detail: str) -> NoReturn:
        cache.delete(self._verdict_key())
        log.warning("control_plane_refused", url=self.base_url, reason=reason)
        raise ControlPlaneUnverified(reason, f"the EasyEnclave control plane failed attestation: {reason}: {detail}")

    # -- discovery --------------------------------------------------------------------------------------------

    def discover(self, *, service: str = EXECUTOR_SERVICE, tags: tuple[str, ...] = ()) -> list[DiscoveredService]:
        """Healthy (or not yet probed) services by name and tags, each at its URL for our environment."""
        cached_verdict = self.cached_verdict()
        verdict = cached_verdict or self.verify_control_plane()
        key = f"easyenclave:discovery:{self.base_url}:{self.environment}:{service}:{','.join(sorted(tags))}"
        cached = cache.get(key)
        if isinstance(cached, list):
            return cached
        query = {"name": service, "environment": self.environment}
        if tags:
            query["tags"] = ",".join(sorted(tags))
        try:
            rows = self._signed_services(query, verdict)
        except ControlPlaneUnverified:
            if cached_verdict is None:
                raise
            # The key we cached may be that of a control plane since restarted: verify it afresh, ask once more.
            rows = self._signed_services(query, self.verify_control_plane())
        try:
            found = [self._service(row) for row in rows]
        except (KeyError, TypeError, AttributeError) as exc:
            raise EasyEnclaveBadResponse(f"the control plane's service list is malformed ({exc!r})") from None
        usable = [s for s in found if s.url and s.health_status != "unhealthy"]
        cache.set(key, usable, timeout=settings.EASYENCLAVE_CACHE_SECONDS)
        return usable

    def _signed_services(self, query: dict[str, str], verdict: ControlPlaneVerdict) -> list[Any]:
        """The service list, only if the answer is signed by the attested key for this query and a fresh nonce."""
        nonce = secrets.token_hex(32)
        body = self._get("/api/v1/services", {**query, "nonce": nonce})
        signature = body.get("signature")
        if not isinstance(signature, str) or not signature:
            self._refuse("discovery_unsigned", "the service list is not signed by the attested control plane")
        try:
            verify_signature(verdict.signing_key, signed_payload(body), signature, tag=SIGNATURE_TAG)
        except WireError:
            self._refuse("discovery_bad_signature", "the service list's signature is not the attested key's")
        if body.get("nonce") != nonce:
            self._refuse("discovery_wrong_nonce", "the signed service list answers another request (a replay)")
        if body.get("query") != query:
            self._refuse("discovery_wrong_query", "the signed service list answers another query")
        rows = body.get("services")
        if not isinstance(rows, list):
            raise EasyEnclaveBadResponse("the control plane's service list is malformed (no services list)")
        return rows

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
