"""The one module through which Django reaches executors: start, stop, status, reports, credentials, revoke,
attestation, health.

Every job-control request is signed with the controller key (ADR 0011, `wire/control.py`) for one executor: its
audience is the executor's identity key — the attested one once the provisioning gate established it
(`address_to`), else the key the executor at this URL announces on `/v1/health` — so a request can be replayed
neither to another executor nor to the same one after it restarted with new keys. Each carries the
correlation id (`mrmarket.http.outbound_client`). Timeouts are the outbound default; transport failures and
5xx answers are retried with backoff for the calls that are safe to repeat (all of them here: start is
idempotent by job id, stop and revoke are idempotent, credentials are refused the second time), then raise
`ExecutorUnavailable`. A 4xx answer raises `ExecutorRefused` with the executor's own error code.

Credentials leave Django only through `deliver_credentials`, sealed to a key the caller passes; the caller is
`execution.jobs`, which takes that key from the provisioning gate (`execution.provisioning.provisioning_identity`),
so the trust gate of the attestation app sits in front of this single path. The controller key is the core's
(`mrmarket.controller`); without one a client cannot be made (`ExecutorNotConfigured`).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import httpx

from attestation.errors import EvidenceRefused
from execution.errors import ExecutorNotConfigured, ExecutorRefused, ExecutorUnavailable
from mrmarket.controller import controller_key
from mrmarket.errors import ControllerNotConfigured
from mrmarket.executor_http import executor_request
from mrmarket.http import outbound_client
from wire.canonical import canonical_bytes
from wire.control import sign_request
from wire.keys import SigningKey, seal


def _controller_key() -> SigningKey:
    try:
        return controller_key()
    except ControllerNotConfigured as exc:
        raise ExecutorNotConfigured(exc.message) from None  # what the job tasks wait out and retry


class ExecutorClient:
    def __init__(
        self,
        base_url: str,
        *,
        key: SigningKey | None = None,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        audience: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.audience = audience
        self._key = key or _controller_key()
        self._client = client or outbound_client()
        self._sleep = sleep

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ExecutorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def address_to(self, signing_key: str) -> None:
        """Sign what follows for the executor holding `signing_key` (the identity the gate just verified)."""
        self.audience = signing_key

    def _audience(self) -> str:
        if self.audience is None:
            key = self.health().get("signing_key")
            if not isinstance(key, str):
                raise ExecutorUnavailable(
                    f"executor {self.base_url} announces no identity key", extra={"executor": self.base_url}
                )
            self.audience = key
        return self.audience

    # -- calls ---------------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/v1/health", signed=False)

    def capacity(self) -> dict[str, Any]:
        return self._call("GET", "/v1/capacity", signed=False)

    def attestation(self, nonce: str) -> dict[str, Any]:
        """Its evidence for `nonce`, as the gate asks (`attestation.interface.AttestingExecutor`): a refusal is the
        gate's `EvidenceRefused`; silence stays `ExecutorUnavailable`, which the caller retries."""
        try:
            return self._call("GET", f"/v1/attestation?nonce={nonce}", signed=False)
        except ExecutorRefused as exc:
            raise EvidenceRefused(exc.message, extra=exc.extra) from exc

    def start(self, spec: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/v1/jobs/start", spec)

    def stop(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", "/v1/jobs/stop", {"job_id": job_id})

    def status(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/jobs/{job_id}/status")

    def reports(self, job_id: str, *, after: int | None, limit: int = 100) -> dict[str, Any]:
        cursor = -1 if after is None else after
        return self._call("GET", f"/v1/jobs/{job_id}/report?after={cursor}&limit={limit}")

    def deliver_credentials(
        self, job_id: str, *, sealing_key: str, job_spec_digest: str, credentials: dict[str, Any]
    ) -> dict[str, Any]:
        """Seal `credentials` to the executor's attested key and deliver them. The sealed payload names the job,
        the digest of the spec they may trade and this controller: the executor refuses them for any other."""
        payload = {
            **credentials,
            "job_id": job_id,
            "job_spec_digest": job_spec_digest,
            "controller_key": self._key.public_hex,
        }
        sealed = seal(sealing_key, canonical_bytes(payload))
        return self._call("POST", f"/v1/jobs/{job_id}/credentials", {"sealed_b64": base64.b64encode(sealed).decode()})

    def revoke(self, job_id: str) -> dict[str, Any]:
        return self._call("DELETE", f"/v1/jobs/{job_id}/credentials")

    def resume(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/jobs/{job_id}/resume", {})

    # -- transport -----------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, payload: Any = None, *, signed: bool = True) -> dict[str, Any]:
        body = canonical_bytes(payload) if payload is not None else b""
        audience = self._audience() if signed else ""

        def headers() -> dict[str, str]:
            if not signed:
                return {}
            timestamp_ms = int(time.time() * 1000)
            return sign_request(
                self._key, method=method, path_qs=path, body=body, audience=audience, timestamp_ms=timestamp_ms
            )

        return executor_request(
            self._client,
            base_url=self.base_url,
            method=method,
            path=path,
            body=body,
            headers=headers,
            sleep=self._sleep,
            unavailable=ExecutorUnavailable,
            refused=ExecutorRefused,
        )
