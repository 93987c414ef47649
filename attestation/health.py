"""The attestation app's health checks (registered from AttestationConfig.ready()): the executors we know
answer, and the EasyEnclave control plane's last verification.

Both only read. Verifying the control plane issues and consumes a nonce (rows) and discovery records what it
finds in the executor registry (rows), so neither runs here: the checks read what routing and re-attestation
last established (the registry, the cached verdict) and probe the executors' open `/v1/health`.
"""

from __future__ import annotations

import httpx
from django.conf import settings

from attestation.easyenclave import EasyEnclaveClient, EasyEnclaveError
from attestation.models import ExecutorRecord
from mrmarket import health
from mrmarket.http import outbound_client


def check_executors() -> tuple[health.State, str]:
    """Configured executors and those in the registry (not revoked; discovery through EasyEnclave adds there)."""
    known = ExecutorRecord.objects.exclude(state=ExecutorRecord.State.REVOKED).values_list("url", flat=True)
    urls = list(dict.fromkeys([*settings.EXECUTOR_URLS, *known]))
    if not urls:
        return "not_configured", "no executors yet"
    failures = []
    with outbound_client(timeout=health.check_timeout()) as client:
        for url in urls:
            try:
                client.get(url.rstrip("/") + "/v1/health").raise_for_status()
            except httpx.HTTPError as exc:
                failures.append(f"{url}: {health.error_text(exc)}")
    if failures:
        return "fail", "; ".join(failures)
    return "ok", f"{len(urls)} executor(s) healthy"


def check_easyenclave() -> tuple[health.State, str]:
    if not settings.EASYENCLAVE_URL:
        return "not_configured", "EasyEnclave is not configured yet"
    try:
        verdict = EasyEnclaveClient().cached_verdict()
    except EasyEnclaveError as exc:
        return "fail", exc.message
    if verdict is None:
        window = settings.EASYENCLAVE_VERIFY_SECONDS
        return "fail", f"control plane not verified in the last {window}s (discovery verifies it)"
    attested = "hardware-attested" if verdict.hardware_attested else "NOT hardware-attested (dev root)"
    return "ok", f"control plane verified ({attested}, MRTD {verdict.mrtd[:16]}…, TCB {verdict.tcb_status})"


def register_checks() -> None:
    health.register("executors", check_executors)
    health.register("easyenclave", check_easyenclave)
