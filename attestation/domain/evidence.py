"""Published executor evidence, schema `mrmarket.executor-evidence/v1`, and its offline verification. Pure: no
Django, no database, no network — what `python -m attestation.offline` runs on a downloaded file.

    {"schema": "mrmarket.executor-evidence/v1",
     "body": {
       "executor": {"url", "signing_key", "sealing_key", "build_version"},
       "attestation": {"record", "verified_at", "verified_at_unix", "nonce", "runtime_config",
                       "runtime_config_digest"},
       "quote_b64", "collateral" (JSON text, dcap-qvl's QuoteCollateralV3), "ita_token",
       "root": {"kind": "intel" | "dev", "ca_der_b64"},
       "server_verdict": {"ok", "tcb_status", "advisory_ids", "mrtd", "rtmr0".."rtmr3", "hardware_attested",
                          "reason"},
       "allowlist_entry": {"id", "build_version", "source_commit"} | null},
     "digest": SHA-256 of the body's RFC 8785 canonical form}

The file is served in canonical form, so every byte of it is significant: a changed byte makes it unreadable, or
changes the body (its digest no longer matches), or changes the digest. The digest only detects damage; what makes
the evidence trustworthy is the quote's signature chain to Intel's root, checked here again from the quote and the
collateral beside it, and REPORTDATA binding the verifier's nonce, the executor's keys and its runtime
configuration (`wire.attestation`). An Intel Trust Authority token is carried but not checked offline (that needs
Intel's key set, fetched over the network); the quote it appraised is.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from attestation.domain.quote import check_report_data, verify_quote
from wire.attestation import BindingError, report_data, runtime_config_digest
from wire.canonical import canonical_bytes, digest, parse
from wire.errors import WireError

EVIDENCE_SCHEMA = "mrmarket.executor-evidence/v1"
ROOT_KINDS = ("intel", "dev")


class EvidenceFormatError(ValueError):
    """The file is not an evidence document this verifier can read (exit status 2 in the command line)."""


def evidence_document(body: dict[str, Any]) -> dict[str, Any]:
    return {"schema": EVIDENCE_SCHEMA, "body": body, "digest": digest(body)}


def evidence_bytes(body: dict[str, Any]) -> bytes:
    """The evidence file: the document in canonical form."""
    return canonical_bytes(evidence_document(body))


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class EvidenceResult:
    """Every check run, in order; `ok` when all passed. `hardware` is False under the dev root."""

    checks: tuple[Check, ...]
    tcb_status: str | None = None
    mrtd: str | None = None
    rtmrs: tuple[str, ...] = ()
    hardware: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "hardware_attested": self.hardware,
            "tcb_status": self.tcb_status,
            "mrtd": self.mrtd,
            **{f"rtmr{i}": (self.rtmrs[i] if self.rtmrs else None) for i in range(4)},
            "checks": [c.as_json() for c in self.checks],
            "notes": list(self.notes),
        }


def _obj(value: Any, where: str, keys: Sequence[str]) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise EvidenceFormatError(f"{where} must be an object")
    missing = [k for k in keys if k not in value]
    if missing:
        raise EvidenceFormatError(f"{where} lacks {', '.join(missing)}")
    return value


def read_evidence(data: bytes) -> dict[str, Any]:
    """Parse an evidence file: canonical JSON of the documented shape. Raises `EvidenceFormatError`."""
    try:
        doc = parse(data)
    except WireError as exc:
        raise EvidenceFormatError(f"not canonical JSON: {exc}") from None
    d = _obj(doc, "the document", ("schema", "body", "digest"))
    if d["schema"] != EVIDENCE_SCHEMA:
        raise EvidenceFormatError(f"schema is {d['schema']!r}, expected {EVIDENCE_SCHEMA!r}")
    body = _obj(
        d["body"], "body", ("executor", "attestation", "quote_b64", "collateral", "ita_token", "root", "server_verdict")
    )
    _obj(body["executor"], "body.executor", ("signing_key", "sealing_key"))
    attestation = _obj(body["attestation"], "body.attestation", ("verified_at_unix", "nonce", "runtime_config"))
    if not isinstance(attestation["verified_at_unix"], int) or isinstance(attestation["verified_at_unix"], bool):
        raise EvidenceFormatError("body.attestation.verified_at_unix must be an integer")
    root = _obj(body["root"], "body.root", ("kind", "ca_der_b64"))
    if root["kind"] not in ROOT_KINDS:
        raise EvidenceFormatError(f"body.root.kind must be one of {', '.join(ROOT_KINDS)}")
    _obj(body["server_verdict"], "body.server_verdict", ("ok", "mrtd"))
    return dict(d)


def _allowlisted(allowlist: Mapping[str, Any], mrtd: str, rtmrs: Sequence[str], at: int) -> Check:
    """Whether a published allowlist (`mrmarket.measurement-allowlist/v1`) had an entry for this measurement that
    was active at `at`: its MRTD equal, and every register the entry pins equal."""
    entries = allowlist.get("entries")
    if not isinstance(entries, list):
        raise EvidenceFormatError("the allowlist document has no entries list")
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("mrtd") != mrtd:
            continue
        pinned = entry.get("rtmrs")
        if not isinstance(pinned, list) or len(pinned) != 4:
            raise EvidenceFormatError(f"allowlist entry {entry.get('id')} has no list of four rtmrs")
        if any(value and value != rtmrs[i] for i, value in enumerate(pinned)):
            continue  # an empty string is a register the entry does not pin
        added, removed = _unix(entry.get("added_at")), _unix(entry.get("removed_at"))
        if added is not None and added > at:
            continue
        if removed is not None and removed <= at:
            continue
        build = entry.get("build_version", "?")
        return Check("allowlisted", True, f"allowlist entry {entry.get('id')} (build {build}) was active then")
    return Check("allowlisted", False, "no allowlist entry active at the verification time matches the measurement")


def _server_verdict(server: Mapping[str, Any], tcb: str | None, advisories: Sequence[str], kind: str) -> Check:
    """Whether what the server published (TCB status, advisories, hardware or not) is what the quote says."""
    differ = []
    if server.get("tcb_status") != tcb:
        differ.append(f"TCB status {server.get('tcb_status')!r} published, {tcb!r} verified")
    published = server.get("advisory_ids")
    if not isinstance(published, list) or sorted(map(str, published)) != sorted(advisories):
        differ.append("advisory ids differ")
    if server.get("hardware_attested") is not (kind == "intel"):
        differ.append("the hardware flag does not fit the root")
    if differ:
        return Check("server_verdict", False, "the server's published verdict is not the quote's: " + "; ".join(differ))
    return Check("server_verdict", True, f"the server published what the quote says (TCB {tcb})")


def _unix(value: Any) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    except ValueError:
        raise EvidenceFormatError(f"allowlist time {value!r} is not ISO 8601") from None


def _b64(value: Any) -> bytes | None:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        return None


def verify_evidence(
    data: bytes,
    *,
    at: int | None = None,
    root_ca_der: bytes | None = None,
    allowlist: Mapping[str, Any] | None = None,
    trust_embedded_dev_root: bool = False,
) -> EvidenceResult:
    """Check a downloaded evidence file. `at` defaults to the time the server verified it (collateral expires, so
    a later check needs the collateral of that time — the one served beside the quote). `root_ca_der` pins the
    dev root to check a dev-root quote against (without it, the root in the file is used and the result says it
    proves nothing about hardware, and fails the `root` check unless `trust_embedded_dev_root`: anyone can make a
    root of their own). Raises `EvidenceFormatError` when the file cannot be read at all."""
    doc = read_evidence(data)
    body = doc["body"]
    checks: list[Check] = []
    notes: list[str] = []
    checks.append(
        Check("digest", True, "the body's SHA-256 matches the digest the file names")
        if doc["digest"] == digest(body)
        else Check("digest", False, "the body does not hash to the digest the file names: the file was changed")
    )
    attestation, executor, server = body["attestation"], body["executor"], body["server_verdict"]
    when = int(attestation["verified_at_unix"]) if at is None else at
    kind = body["root"]["kind"]
    quote = _b64(body["quote_b64"])
    root: bytes | None = None
    if kind == "dev":
        root = root_ca_der or _b64(body["root"]["ca_der_b64"])
        if root_ca_der is None and trust_embedded_dev_root:
            notes.append("dev root taken from the file itself: this shows the quote is well formed, nothing more")
        elif root_ca_der is None:
            checks.append(
                Check(
                    "root",
                    False,
                    "the file brings its own dev root, which anyone can make: give --root-ca with the dev root you "
                    "trust (or --trust-embedded-dev-root to check only that the quote is well formed)",
                )
            )
        else:
            notes.append("checked against the dev root you gave: not hardware-attested")
    elif root_ca_der is not None:
        notes.append("--root-ca ignored: the file claims Intel's root, checked against the one built into dcap-qvl")
    if quote is None or root == b"" or (kind == "dev" and root is None):
        checks.append(Check("quote", False, "the quote or the dev root in the file is not base64"))
        return EvidenceResult(checks=tuple(checks), notes=tuple(notes))
    verdict = verify_quote(quote, str(body["collateral"]), now=when, root_ca_der=root)
    root_name = "Intel's SGX/TDX root" if kind == "intel" else "the dev quote authority's root"
    checks.append(
        Check("quote", True, f"the quote's signature chain ends at {root_name}, collateral current at {when}")
        if verdict.ok
        else Check("quote", False, f"{verdict.reason}: {verdict.detail}")
    )
    fields = verdict.fields
    try:
        runtime_digest = runtime_config_digest(attestation["runtime_config"])
        expected = report_data(
            nonce=str(attestation["nonce"]),
            signing_key=str(executor["signing_key"]),
            sealing_key=str(executor["sealing_key"]),
            runtime_config_digest=runtime_digest,
        )
    except (BindingError, WireError, TypeError) as exc:
        checks.append(Check("report_data", False, f"the nonce, keys or runtime configuration are unusable: {exc}"))
    else:
        if verdict.ok:
            bound = check_report_data(verdict, expected_report_data=expected)
            checks.append(
                Check("report_data", True, "REPORTDATA binds the nonce, both executor keys and the runtime config")
                if bound.ok
                else Check("report_data", False, bound.detail)
            )
        given = attestation.get("runtime_config_digest")
        if given is not None and given != runtime_digest:
            checks.append(Check("runtime_config_digest", False, "the stated runtime config digest is not its digest"))
    if fields is not None and verdict.ok:
        claimed = (server.get("mrtd"), *(server.get(f"rtmr{i}") for i in range(4)))
        same = claimed == (fields.mrtd, *fields.rtmrs)
        checks.append(
            Check("measurement", True, "the quote measures what the server published")
            if same
            else Check("measurement", False, "the quote's MRTD/RTMRs differ from what the server published")
        )
        checks.append(_server_verdict(server, verdict.tcb_status, verdict.advisory_ids, kind))
        if allowlist is not None:
            checks.append(_allowlisted(allowlist, fields.mrtd, fields.rtmrs, when))
    if body["ita_token"]:
        notes.append("the Intel Trust Authority token is carried but not checked offline (it needs Intel's key set)")
    return EvidenceResult(
        checks=tuple(checks),
        tcb_status=verdict.tcb_status,
        mrtd=fields.mrtd if fields else None,
        rtmrs=fields.rtmrs if fields else (),
        hardware=kind == "intel" and verdict.ok,
        notes=tuple(notes),
    )
