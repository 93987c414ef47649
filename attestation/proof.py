"""Proof of execution, schema `mrmarket.proof-of-execution/v1`: one document linking a job's reports
to the attestation that bound their signing key.

    {
      "schema": "mrmarket.proof-of-execution/v1",
      "job_id", "job_spec_digest",
      "window": {"start_ms", "end_ms"},                         # first report's start → last report's end
      "reports": [{"sequence", "digest", "window_start_ms", "window_end_ms"}...],   # the hash chain, in order
      "executor": {"signing_key", "sealing_key", "measurement": {"mrtd", "rtmr0".."rtmr3"}, "build_version"},
      "attestation": {"record", "nonce", "runtime_config", "quote_sha256", "ita_token_sha256", "verified_at",
                      "tcb_status", "advisory_ids", "hardware_attested",
                      "allowlist_entry": {"id", "build_version", "source_commit"}}
    }

Its digest is SHA-256 of its RFC 8785 canonical form. Anyone holding the reports can check that each digest
matches, that the chain links, that every report names `executor.signing_key`, and — with the stored quote
(`quote_sha256`) — that the quote's REPORTDATA binds that key, the nonce and the digest of `runtime_config` (the
executor's controller key and exchange endpoints, ADR 0012; `wire/attestation.py`);
`ita_token_sha256` (empty when the evidence had no Intel Trust Authority token) names the token whose
`tdx_report_data` does the same.
"""

from __future__ import annotations

import hashlib
from typing import Any

from attestation.errors import AttestationError
from attestation.models import AttestationRecord
from wire.canonical import digest

PROOF_SCHEMA = "mrmarket.proof-of-execution/v1"


class NoAcceptedAttestation(AttestationError):
    code = "no_accepted_attestation"
    status = 409


def build_proof(
    *, job_id: str, job_spec_digest: str, reports: list[dict[str, Any]], signing_key: str
) -> dict[str, Any]:
    """`reports`: rows with sequence, digest, window_start_ms, window_end_ms, signing_key (in sequence order)."""
    record = (
        AttestationRecord.objects.select_related("executor", "allowlist_entry")
        .filter(signing_key=signing_key, ok=True)
        .order_by("-id")
        .first()
    )
    if record is None:
        raise NoAcceptedAttestation(f"no accepted attestation bound signing key {signing_key[:16]}…")
    if any(r["signing_key"] != signing_key for r in reports):
        raise NoAcceptedAttestation("the reports are not all signed by the attested key")
    entry = record.allowlist_entry
    rtmrs = list(record.rtmrs) + [""] * (4 - len(record.rtmrs))
    proof = {
        "schema": PROOF_SCHEMA,
        "job_id": job_id,
        "job_spec_digest": job_spec_digest,
        "window": {
            "start_ms": reports[0]["window_start_ms"] if reports else None,
            "end_ms": reports[-1]["window_end_ms"] if reports else None,
        },
        "reports": [{k: r[k] for k in ("sequence", "digest", "window_start_ms", "window_end_ms")} for r in reports],
        "executor": {
            "signing_key": record.signing_key,
            "sealing_key": record.sealing_key,
            "measurement": {"mrtd": record.mrtd, **{f"rtmr{i}": rtmrs[i] for i in range(4)}},
            "build_version": record.executor.build_version,
        },
        "attestation": {
            "record": record.pk,
            "nonce": record.nonce,
            "runtime_config": record.runtime_config,
            "quote_sha256": record.quote_sha256,
            "ita_token_sha256": hashlib.sha256(record.ita_token.encode()).hexdigest() if record.ita_token else "",
            "verified_at": record.verified_at.isoformat(),
            "tcb_status": record.tcb_status,
            "advisory_ids": list(record.advisory_ids),
            "hardware_attested": record.hardware_attested,
            "allowlist_entry": (
                {"id": entry.pk, "build_version": entry.build_version, "source_commit": entry.source_commit}
                if entry
                else None
            ),
        },
    }
    return {"proof": proof, "digest": digest(proof)}
