"""The one transport to an executor's HTTP API (`docs/api/executor-v1.yaml`), used by both Django clients of
an executor: execution's job client (`execution.executor_client`) and attestation's evidence client
(`attestation.evidence`).

Answers are canonical JSON objects; an error answer is `{"error": {"code", "message"}}`. Transport failures and
5xx answers are retried with backoff (`RETRIES` attempts, `BACKOFF_SECONDS` doubling), then raise the caller's
"unavailable" error; a 4xx answer raises its "refused" error carrying the executor's own code; an answer that is
not a JSON object counts as unavailable. Every call the callers make is safe to repeat (see their docstrings).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from mrmarket.errors import ApplicationError
from wire.canonical import parse
from wire.errors import WireError

RETRIES = 3
BACKOFF_SECONDS = 0.2


def executor_request(
    client: httpx.Client,
    *,
    base_url: str,
    method: str,
    path: str,
    body: bytes = b"",
    headers: Callable[[], dict[str, str]] = dict,
    sleep: Callable[[float], None],
    unavailable: type[ApplicationError],
    refused: type[ApplicationError],
) -> dict[str, Any]:
    """`method path` on the executor at `base_url`; `headers` is called once per attempt (a signed request
    carries a fresh timestamp each time)."""
    last = ""
    for attempt in range(RETRIES):
        try:
            response = client.request(
                method, base_url + path, content=body, headers={"Content-Type": "application/json", **headers()}
            )
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        else:
            if response.status_code < 500:
                return _answer(response, base_url=base_url, path=path, unavailable=unavailable, refused=refused)
            last = f"HTTP {response.status_code}"
        if attempt + 1 < RETRIES:
            sleep(BACKOFF_SECONDS * 2**attempt)
    raise unavailable(
        f"executor {base_url} did not answer {method} {path.split('?')[0]} ({last})", extra={"executor": base_url}
    )


def _answer(
    response: httpx.Response,
    *,
    base_url: str,
    path: str,
    unavailable: type[ApplicationError],
    refused: type[ApplicationError],
) -> dict[str, Any]:
    try:
        data = parse(response.content)
    except (WireError, ValueError):
        raise unavailable(
            f"executor {base_url} answered {path.split('?')[0]} with something that is not JSON",
            extra={"executor": base_url},
        ) from None
    if response.status_code >= 400:
        error = data.get("error", {}) if isinstance(data, dict) else {}
        raise refused(
            f"executor refused: {error.get('message', response.status_code)}",
            extra={"executor": base_url, "executor_code": error.get("code"), "status": response.status_code},
        )
    if not isinstance(data, dict):
        raise unavailable(f"executor {base_url} answered a non-object", extra={})
    return data
