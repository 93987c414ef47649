"""`python -m payouts.audit`: recompute the published artifacts of an epoch (docs/scoring.md, "Recomputing a bundle").

`score --inputs INPUTS.json --out DIR` reads the inputs document (`mrmarket.oracle-inputs/v1`), validates it against
`docs/api/oracle-inputs-v1.schema.json`, scores it with `payouts.domain` and writes `DIR/bundle.json`, exactly the
bundle's canonical bytes (RFC 8785), then prints their SHA-256 (one line, lower-case hex). Exit status: 0 on
success; 2 when the inputs are refused (not JSON, a schema violation or a document the engine cannot score; the
message names the JSON path) and nothing is written; 1 when the bundle cannot be written.

The bundle records the software that computed it: the `version` of `pyproject.toml` and `git rev-parse HEAD` of the
checkout, each "unknown" when it cannot be read. A bundle is thus reproduced bit for bit by the same commit.

`manifest --bundle BUNDLE.json --out DIR` validates a results bundle against its schema, builds its payout manifest
(`payouts.domain.manifest`), writes `DIR/manifest.json` (canonical bytes) and prints their SHA-256. Exit status as
for `score` (2: the bundle is refused, naming the JSON path).

`recompute --inputs INPUTS --bundle BUNDLE --manifest MANIFEST` rebuilds the bundle from the inputs and the manifest
from the rebuilt bundle, and compares both with the given files byte for byte. The rebuild records the software the
given bundle names (its `software` object), not this checkout's: that value is part of the bytes, so a bundle can
only be reproduced under its own name; whether this checkout *is* that software is reported on its own line. Exit
status: 0 when both match (the two digests are printed); 1 naming, for each artifact that differs, the first
differing JSON path with both values (or that the file is the same document in other bytes); 2 when the inputs are
refused as by `score`, or a file cannot be read, is not JSON, or the bundle names no usable software.

`verify --rpc URL --campaign ADDRESS --epoch N [--artifacts BASE_URL] [--require-hardware]` checks one epoch against
the chain: the digests on chain, the documents, the source reports and their attestations, the recomputation and
the payments (`payouts.audit.verify`). Exit status: 0 when every check passes; 1 when any fails (each is listed);
2 for a usage problem or when the chain or the documents cannot be reached.

The functions that score and compare live in `payouts.audit.recompute`; this module is the command line.
No Django and no database: the errors are this module's own (`mrmarket.errors` would pull the framework in).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from payouts.audit import verify
from payouts.audit.recompute import (
    InputsRefused,
    manifest_file,
    recompute_files,
    score_file,
    software_note,
    software_version,
)

__all__ = ["main", "software_version"]

BUNDLE_FILE = "bundle.json"
MANIFEST_FILE = "manifest.json"
EXIT_REFUSED = 2
EXIT_WRITE_FAILED = 1
EXIT_DIFFERS = 1


def write_atomically(directory: Path, name: str, data: bytes) -> Path:
    """Write `directory/name` whole or not at all (a reader never sees half a bundle)."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m payouts.audit", description="Recompute published artifacts.")
    commands = parser.add_subparsers(dest="command", required=True)
    score = commands.add_parser("score", help="score an inputs document and write DIR/bundle.json")
    score.add_argument("--inputs", required=True, type=Path, help="the mrmarket.oracle-inputs/v1 document")
    score.add_argument("--out", required=True, type=Path, help="directory to write bundle.json into")
    manifest = commands.add_parser("manifest", help="build a results bundle's payout manifest: DIR/manifest.json")
    manifest.add_argument("--bundle", required=True, type=Path, help="the mrmarket.results-bundle/v1 document")
    manifest.add_argument("--out", required=True, type=Path, help="directory to write manifest.json into")
    recompute = commands.add_parser("recompute", help="rebuild a bundle and its manifest and compare them")
    recompute.add_argument("--inputs", required=True, type=Path, help="the mrmarket.oracle-inputs/v1 document")
    recompute.add_argument("--bundle", required=True, type=Path, help="the published results bundle")
    recompute.add_argument("--manifest", required=True, type=Path, help="the published payout manifest")
    check = commands.add_parser("verify", help="check an epoch's published documents and payments against the chain")
    check.add_argument("--rpc", required=True, help="JSON-RPC URL of the campaign's chain")
    check.add_argument("--campaign", required=True, help="the campaign's escrow address")
    check.add_argument("--epoch", required=True, type=int, help="the epoch index")
    check.add_argument("--artifacts", help="base URL of the documents (default: from the on-chain bundle uri)")
    check.add_argument(
        "--require-hardware", action="store_true", help="refuse reports whose attestation is not hardware-backed"
    )
    check.add_argument("--from-block", type=int, default=0, help="first block searched for the epoch's events")
    return parser


def _refused(exc: InputsRefused) -> int:
    sys.stderr.write(f"refused{' (schema)' if exc.by_schema else ''}: {exc}\n")
    return EXIT_REFUSED


def _write(out: Path, name: str, data: bytes) -> int:
    try:
        write_atomically(out, name, data)
    except OSError as exc:
        sys.stderr.write(f"cannot write {out / name}: {exc.strerror}\n")
        return EXIT_WRITE_FAILED
    sys.stdout.write(hashlib.sha256(data).hexdigest() + "\n")
    return 0


def _recompute(args: argparse.Namespace) -> int:
    try:
        found = recompute_files(args.inputs, args.bundle, args.manifest)
    except InputsRefused as exc:
        return _refused(exc)
    note = software_note(found.software, software_version())
    if found.differences:
        for difference in found.differences:
            sys.stderr.write(f"differs: {difference}\n")
        sys.stderr.write(note + "\n")
        return EXIT_DIFFERS
    sys.stdout.write(f"bundle {found.bundle_digest}\nmanifest {found.manifest_digest}\n{note}\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "recompute":
        return _recompute(args)
    if args.command == "verify":
        return verify.run(
            rpc=args.rpc,
            campaign=args.campaign,
            epoch=args.epoch,
            artifacts=args.artifacts,
            require_hardware=args.require_hardware,
            from_block=args.from_block,
            running=software_version(),
            out=sys.stdout,
            err=sys.stderr,
        )
    try:
        if args.command == "manifest":
            data, name = manifest_file(args.bundle), MANIFEST_FILE
        else:
            data, name = score_file(args.inputs, software=software_version()), BUNDLE_FILE
    except InputsRefused as exc:
        return _refused(exc)
    return _write(args.out, name, data)
