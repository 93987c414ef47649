"""`python -m attestation.offline verify EVIDENCE.json [--allowlist ALLOWLIST.json] [--root-ca FILE] [--at UNIX]
[--json]`: check an executor's evidence file as downloaded from the proof page (`mrmarket.executor-evidence/v1`,
`attestation.domain.evidence`).

It checks, in order: the file's digest; the TDX quote against the collateral beside it, under Intel's root built
into dcap-qvl (or, for a dev-root executor, the dev root given with `--root-ca`; the file's own only with
`--trust-embedded-dev-root`, which shows the quote is well formed and nothing more); that what the server published
(TCB status, advisories, hardware flag) is what the quote says; that REPORTDATA binds the nonce, the executor's
signing and sealing keys and its runtime configuration; that the quote measures what the server
published; and, with `--allowlist`
(the published `GET /api/v1/attestation/allowlist` document), that an entry matching the measurement was active at
the verification time. Verification time: `--at`, default the time the server verified it (the collateral served
is the one of that time).

Exit status: 0 when every check passed; 1 when any failed (each is listed); 2 when a file cannot be read or is not
an evidence document. Prints one line per check, or with `--json` one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from attestation.domain.evidence import EvidenceFormatError, EvidenceResult, verify_evidence

EXIT_OK, EXIT_FAILED, EXIT_UNUSABLE = 0, 1, 2


class _Unusable(Exception):
    pass


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise _Unusable(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def _root(data: bytes) -> bytes:
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            return x509.load_pem_x509_certificate(data).public_bytes(serialization.Encoding.DER)
        except ValueError as exc:
            raise _Unusable(f"the root CA is not a PEM certificate: {exc}") from None
    return data


def _allowlist(data: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _Unusable(f"the allowlist is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise _Unusable("the allowlist is not a JSON object")
    return doc


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")


def _print(result: EvidenceResult, as_json: bool) -> None:
    if as_json:
        _out(json.dumps(result.as_json(), sort_keys=True))
        return
    for check in result.checks:
        _out(f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
    for note in result.notes:
        _out(f"note {note}")
    kind = "hardware-attested" if result.hardware else "NOT hardware-attested"
    verdict = "verified" if result.ok else "REFUSED"
    _out(f"{verdict}: {kind}, TCB {result.tcb_status or '—'}, MRTD {result.mrtd or '—'}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m attestation.offline", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("verify", help="check an evidence file")
    check.add_argument("evidence", help="the evidence file (mrmarket.executor-evidence/v1)")
    check.add_argument("--allowlist", help="the published allowlist document (GET /api/v1/attestation/allowlist)")
    check.add_argument("--root-ca", help="the dev root CA to check a dev-root quote against (DER or PEM)")
    check.add_argument(
        "--trust-embedded-dev-root",
        action="store_true",
        help="check a dev-root quote against the root inside the file (shows it is well formed, nothing more)",
    )
    check.add_argument("--at", type=int, help="verification time, Unix seconds (default: when the server verified)")
    check.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        data = _read(args.evidence, "evidence")
        root = _root(_read(args.root_ca, "root CA")) if args.root_ca else None
        allowlist = _allowlist(_read(args.allowlist, "allowlist")) if args.allowlist else None
        result = verify_evidence(
            data,
            at=args.at,
            root_ca_der=root,
            allowlist=allowlist,
            trust_embedded_dev_root=args.trust_embedded_dev_root,
        )
    except (_Unusable, EvidenceFormatError) as exc:
        if args.json:
            _out(json.dumps({"ok": False, "error": str(exc)}))
        else:
            sys.stderr.write(f"unusable: {exc}\n")
        return EXIT_UNUSABLE
    _print(result, args.json)
    return EXIT_OK if result.ok else EXIT_FAILED
