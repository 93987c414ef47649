"""The attestation app's own client of an executor's public endpoints: its evidence for a nonce
(`/v1/attestation`), its announced identity (`/v1/health`) and its free capacity (`/v1/capacity`). What the
scheduled re-attestation uses (`tasks.reattest_executor`); it satisfies `interface.CheckedExecutor`.

These endpoints are unsigned: they carry no job control, so this client holds no controller key. The transport is
the one the job client uses (`mrmarket.executor_http`): the outbound default timeout and the correlation id,
transport failures and 5xx answers retried with backoff, then `EvidenceUnavailable`; a 4xx answer raises
`EvidenceRefused` with the executor's own error code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from attestation.errors import EvidenceRefused, EvidenceUnavailable
from mrmarket.executor_http import executor_request
from mrmarket.http import outbound_client


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
        return executor_request(
            self._client,
            base_url=self.base_url,
            method="GET",
            path=path,
            sleep=self._sleep,
            unavailable=EvidenceUnavailable,
            refused=EvidenceRefused,
        )
