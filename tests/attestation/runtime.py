"""The runtime configuration a test executor serves with its evidence, and the REPORTDATA that binds it."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from execution.executor_client import controller_key
from wire.attestation import report_data, runtime_config, runtime_config_digest


def ours(**bent: Any) -> dict[str, Any]:
    """A runtime configuration Django accepts (its own controller key, its exchange URLs), with `bent` fields."""
    doc = runtime_config(
        controller_key=controller_key().public_hex,
        exchange_api_urls=dict(settings.EXCHANGE_API_URLS),
        quote_provider="easyenclave",
        dev=False,
    )
    return {**doc, **bent}


def bound(nonce: str, keys: dict[str, str], runtime: dict[str, Any] | None = None) -> bytes:
    """REPORTDATA for `nonce`, `keys` (signing_key, sealing_key) and `runtime` (default `ours()`)."""
    doc = ours() if runtime is None else runtime
    return report_data(nonce=nonce, runtime_config_digest=runtime_config_digest(doc), **keys)
