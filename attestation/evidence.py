"""The attestation app's own client of an executor's public endpoints: its evidence for a nonce
(`/v1/attestation`), its announced identity (`/v1/health`) and its free capacity (`/v1/capacity`). What the
scheduled re-attestation uses (`tasks.reattest_executor`); it satisfies `interface.CheckedExecutor`.

These endpoints are unsigned: they carry no job control, so this client holds no controller key. As the job
client does for them: the outbound default timeout and the correlation id (`mrmarket.http.outbound_client`);
transport failures and 5xx answers retried with backoff, then `EvidenceUnavailable`; a 4xx answer raises
`EvidenceRefused` with the executor's own error code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from attestation.errors import EvidenceRefused, EvidenceUnavailable
from mrmarket.http import outbound_client
from wire.canonical import parse
from wire.errors import WireError

RETRIES = 3


class EvidenceClient:
    def __init__(
        self, base_url: str, *, client: httpx.Client | None = None, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = client or outbound_client()
        self._sleep = sleep

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> EvidenceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def health(self) -> dict[str, Any]:
        return self._get("/v1/health")

    def capacity(self) -> dict[str, Any]:
        return self._get("/v1/capacity")

    def attestation(self, nonce: str) -> dict[str, Any]:
        return self._get(f"/v1/attestation?nonce={nonce}")

    def _get(self, path: str) -> dict[str, Any]:
        last = ""
        for attempt in range(RETRIES):
            try:
                response = self._client.request(
                    "GET", self.base_url + path, content=b"", headers={"Content-Type": "application/json"}
                )
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            else:
                if response.status_code < 500:
                    return self._answer(response, path)
                last = f"HTTP {response.status_code}"
            if attempt + 1 < RETRIES:
                self._sleep(0.2 * 2**attempt)
        raise EvidenceUnavailable(
            f"executor {self.base_url} did not answer GET {path.split('?')[0]} ({last})",
            extra={"executor": self.base_url},
        )

    def _answer(self, response: httpx.Response, path: str) -> dict[str, Any]:
        try:
            data = parse(response.content)
        except (WireError, ValueError):
            raise EvidenceUnavailable(
                f"executor {self.base_url} answered {path.split('?')[0]} with something that is not JSON",
                extra={"executor": self.base_url},
            ) from None
        if response.status_code >= 400:
            error = data.get("error", {}) if isinstance(data, dict) else {}
            raise EvidenceRefused(
                f"executor refused: {error.get('message', response.status_code)}",
                extra={"executor": self.base_url, "executor_code": error.get("code"), "status": response.status_code},
            )
        if not isinstance(data, dict):
            raise EvidenceUnavailable(f"executor {self.base_url} answered a non-object", extra={})
        return data
