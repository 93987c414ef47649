"""Verify a TDX quote file offline and print the verdict as one JSON object.

    python manage.py verify_quote --quote FILE --collateral FILE [--at UNIX] [--root-ca FILE]
                                  [--nonce HEX --signing-key HEX --sealing-key HEX]

Exit status: 0 verified, 1 refused, 2 unusable input (unreadable file, bad arguments). The JSON always has
`ok`, `tcb_status`, `advisory_ids`, `mrtd`, `rtmr0`..`rtmr3`, `report_data`, `debug`; `reason` and `detail`
when not ok. Without `--root-ca` the chain must end at Intel's root; with it, at that root (DER or PEM), e.g.
the devnet authority's (`python -m devnet.tdx root-ca`). With the nonce and both executor keys it also checks
that REPORTDATA binds them (wire/attestation.py). The TCB status is reported, not judged.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.core.management.base import BaseCommand, CommandError, CommandParser

from attestation.domain.quote import QuoteVerdict, check_report_data, verify_quote
from wire.attestation import report_data
from wire.errors import WireError

EXIT_OK, EXIT_REFUSED, EXIT_INPUT = 0, 1, 2


class _InputError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise _InputError("unreadable_input", f"cannot read {what} {path}: {exc.strerror or exc}") from None


def _root_der(data: bytes) -> bytes:
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            return x509.load_pem_x509_certificate(data).public_bytes(serialization.Encoding.DER)
        except ValueError as exc:
            raise _InputError("unreadable_input", f"root CA is not a PEM certificate: {exc}") from None
    return data


def _result(verdict: QuoteVerdict | None, reason: str | None = None, detail: str | None = None) -> dict[str, Any]:
    fields = verdict.fields if verdict is not None else None
    out: dict[str, Any] = {
        "ok": bool(verdict and verdict.ok),
        "tcb_status": verdict.tcb_status if verdict else None,
        "advisory_ids": list(verdict.advisory_ids) if verdict else [],
        "mrtd": fields.mrtd if fields else None,
        **{f"rtmr{i}": (fields.rtmrs[i] if fields else None) for i in range(4)},
        "report_data": fields.report_data if fields else None,
        "debug": fields.debug if fields else None,
    }
    if verdict is not None and not verdict.ok:
        out["reason"], out["detail"] = verdict.reason, verdict.detail
    if reason is not None:
        out["ok"], out["reason"], out["detail"] = False, reason, detail
    return out


class Command(BaseCommand):
    help = "Verify a TDX DCAP quote against its collateral; prints one JSON object (exit 0 ok, 1 refused, 2 bad input)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quote", required=True, help="raw quote file (binary)")
        parser.add_argument("--collateral", required=True, help="collateral JSON (dcap-qvl QuoteCollateralV3)")
        parser.add_argument("--at", type=int, default=None, help="verification time, Unix seconds (default now)")
        parser.add_argument("--root-ca", default=None, help="root CA certificate (DER or PEM); default Intel's")
        parser.add_argument("--nonce", default=None, help="the verifier's nonce (64 hex) to check REPORTDATA")
        parser.add_argument("--signing-key", default=None, help="executor's Ed25519 public key (64 hex)")
        parser.add_argument("--sealing-key", default=None, help="executor's X25519 public key (64 hex)")
        parser.add_argument(
            "--runtime-config-digest", default=None, help="SHA-256 (64 hex) of the executor's runtime_config document"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            quote, collateral, root, expected = self._inputs(options)
        except _InputError as exc:
            self._emit(_result(None, exc.reason, exc.detail))
            raise CommandError(exc.detail, returncode=EXIT_INPUT) from None
        at = int(time.time()) if options["at"] is None else options["at"]
        verdict = verify_quote(quote, collateral, now=at, root_ca_der=root)
        if expected is not None:
            verdict = check_report_data(verdict, expected_report_data=expected)
        self._emit(_result(verdict))
        if not verdict.ok:
            raise CommandError(f"quote refused: {verdict.reason}", returncode=EXIT_REFUSED)

    def _inputs(self, options: dict[str, Any]) -> tuple[bytes, str, bytes | None, bytes | None]:
        quote = _read(options["quote"], "quote")
        raw_collateral = _read(options["collateral"], "collateral")
        try:
            collateral = raw_collateral.decode()
        except UnicodeDecodeError:
            raise _InputError("unreadable_input", "collateral is not UTF-8 text") from None
        root = _root_der(_read(options["root_ca"], "root CA")) if options["root_ca"] else None
        binding = (options["nonce"], options["signing_key"], options["sealing_key"], options["runtime_config_digest"])
        expected = None
        if any(binding):
            if not all(binding):
                message = "--nonce, --signing-key, --sealing-key and --runtime-config-digest go together"
                raise _InputError("invalid_arguments", message)
            try:
                expected = report_data(
                    nonce=binding[0], signing_key=binding[1], sealing_key=binding[2], runtime_config_digest=binding[3]
                )
            except WireError as exc:
                raise _InputError("invalid_arguments", str(exc)) from None
        return quote, collateral, root, expected

    def _emit(self, result: dict[str, Any]) -> None:
        self.stdout.write(json.dumps(result))
