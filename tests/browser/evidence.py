"""Executor evidence documents (`mrmarket.executor-evidence/v1`) as the server serves them to the proof page, for
tests of the browser's verifier (static/src/proof_verify.js). `server_verdict` is what the Python verifier says of
the same evidence, so a test can compare the two."""

from __future__ import annotations

import base64
import datetime
import hashlib
from typing import Any

from attestation.domain.quote import QuoteVerdict, verify_quote
from wire.attestation import report_data, runtime_config, runtime_config_digest
from wire.canonical import digest

EVIDENCE_SCHEMA = "mrmarket.executor-evidence/v1"


def seeded_hex(label: str, size: int = 32) -> str:
    """`size` bytes of hex derived from `label`: stable test keys and nonces."""
    return hashlib.sha512(label.encode()).digest()[:size].hex()


def dev_runtime_config() -> dict[str, Any]:
    return runtime_config(
        controller_key=seeded_hex("controller"),
        exchange_api_urls={"binance": "http://127.0.0.1:9/api"},
        quote_provider="dev-authority",
        dev=True,
    )


def binding(label: str = "executor") -> dict[str, Any]:
    """A nonce, an executor's two public keys and a runtime configuration, with the REPORTDATA that binds them."""
    config = dev_runtime_config()
    values: dict[str, Any] = {
        "nonce": seeded_hex(f"{label}.nonce"),
        "signing_key": seeded_hex(f"{label}.signing"),
        "sealing_key": seeded_hex(f"{label}.sealing"),
        "runtime_config": config,
        "runtime_config_digest": runtime_config_digest(config),
    }
    values["report_data"] = report_data(
        nonce=values["nonce"],
        signing_key=values["signing_key"],
        sealing_key=values["sealing_key"],
        runtime_config_digest=values["runtime_config_digest"],
    )
    return values


def server_verdict(verdict: QuoteVerdict, *, hardware_attested: bool) -> dict[str, Any]:
    fields = verdict.fields
    rtmrs = fields.rtmrs if fields else ("", "", "", "")
    return {
        "ok": verdict.ok,
        "tcb_status": verdict.tcb_status,
        "advisory_ids": list(verdict.advisory_ids),
        "mrtd": fields.mrtd if fields else "",
        **{f"rtmr{i}": rtmrs[i] for i in range(4)},
        "reason": str(verdict.reason) if verdict.reason else None,
        "hardware_attested": hardware_attested and verdict.ok,
    }


def evidence_body(
    *,
    quote: bytes,
    collateral: str,
    at: int,
    root_ca_der: bytes | None,
    bound: dict[str, Any],
    record: int = 1,
    build_version: str = "0.0.0-test",
) -> dict[str, Any]:
    """The evidence body for one executor; `root_ca_der=None` means Intel's root."""
    verdict = verify_quote(quote, collateral, now=at, root_ca_der=root_ca_der)
    return {
        "executor": {
            "url": f"http://127.0.0.1:9/executor/{record}",
            "signing_key": bound["signing_key"],
            "sealing_key": bound["sealing_key"],
            "build_version": build_version,
        },
        "attestation": {
            "record": record,
            "verified_at": datetime.datetime.fromtimestamp(at, tz=datetime.UTC).isoformat(),
            "verified_at_unix": at,
            "nonce": bound["nonce"],
            "runtime_config": bound["runtime_config"],
            "runtime_config_digest": bound["runtime_config_digest"],
        },
        "quote_b64": base64.b64encode(quote).decode(),
        "collateral": collateral,
        "ita_token": "",
        "root": {
            "kind": "intel" if root_ca_der is None else "dev",
            "ca_der_b64": "" if root_ca_der is None else base64.b64encode(root_ca_der).decode(),
        },
        "server_verdict": server_verdict(verdict, hardware_attested=root_ca_der is None),
    }


def evidence_document(body: dict[str, Any]) -> dict[str, Any]:
    return {"schema": EVIDENCE_SCHEMA, "body": body, "digest": digest(body)}
