"""`python -m payouts.audit score --inputs INPUTS.json --out DIR`: recompute a results bundle.

Reads the inputs document (`mrmarket.oracle-inputs/v1`), validates it against `docs/api/oracle-inputs-v1.schema.json`,
scores it with `payouts.domain` and writes `DIR/bundle.json`, exactly the bundle's canonical bytes (RFC 8785), then
prints their SHA-256 (one line, lower-case hex). Exit status: 0 on success; 2 when the inputs are refused (not
JSON, a schema violation or a document the engine cannot score; the message names the JSON path) and nothing is
written; 1 when the bundle cannot be written.

The bundle records the software that computed it: the `version` of `pyproject.toml` and `git rev-parse HEAD` of the
checkout, each "unknown" when it cannot be read. A bundle is thus reproduced bit for bit by the same commit.

No Django and no database: the errors are this module's own (`mrmarket.errors` would pull the framework in).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Sequence
from pathlib import Path

from payouts.audit.schemas import SchemaViolation, validate_inputs
from payouts.domain.bundle import UNKNOWN, Software, bundle_bytes, results_bundle
from payouts.domain.scoring.inputs import ScoringInputError
from wire.canonical import parse
from wire.errors import CanonicalFormError

ROOT = Path(__file__).resolve().parents[2]
BUNDLE_FILE = "bundle.json"
EXIT_REFUSED = 2
EXIT_WRITE_FAILED = 1
_COMMIT_RE = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


class InputsRefused(ValueError):
    """The inputs document cannot be scored; the message says why and where (`by_schema`: its JSON Schema refused
    it, before the engine saw it)."""

    code = "inputs_refused"

    def __init__(self, message: str, *, by_schema: bool = False) -> None:
        super().__init__(message)
        self.by_schema = by_schema


def package_version(root: Path = ROOT) -> str:
    try:
        project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return UNKNOWN
    version = project.get("version")
    return version if isinstance(version, str) and version else UNKNOWN


def git_commit(root: Path = ROOT) -> str:
    """`MRMARKET_COMMIT` when set (a deployment built without its .git says which commit it runs), else the
    checkout's `git rev-parse HEAD`; "unknown" when neither can be read."""
    pinned = os.environ.get("MRMARKET_COMMIT", "").strip().lower()
    if pinned:
        return pinned if _COMMIT_RE.fullmatch(pinned) else UNKNOWN
    git = shutil.which("git")
    if git is None:
        return UNKNOWN
    try:
        # A fixed argument list, no shell: nothing from the inputs reaches the command.
        done = subprocess.run(  # noqa: S603
            [git, "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and _COMMIT_RE.fullmatch(commit) else UNKNOWN


def software_version(root: Path = ROOT) -> Software:
    return Software(version=package_version(root), commit=git_commit(root))


def score_file(inputs_path: Path, *, software: Software) -> bytes:
    """The canonical bundle bytes of the inputs document at `inputs_path`; raises `InputsRefused`."""
    try:
        raw = inputs_path.read_bytes()
    except OSError as exc:
        raise InputsRefused(f"cannot read {inputs_path}: {exc.strerror}") from None
    try:
        document = parse(raw)
    except (CanonicalFormError, UnicodeDecodeError) as exc:
        raise InputsRefused(f"inputs: {exc}") from None
    try:
        validate_inputs(document)
        return bundle_bytes(results_bundle(document, software=software))
    except SchemaViolation as exc:
        raise InputsRefused(f"{exc.path}: {exc.problem}", by_schema=True) from None
    except ScoringInputError as exc:
        raise InputsRefused(f"{exc.path}: {exc.problem}") from None
    except CanonicalFormError as exc:
        raise InputsRefused(f"inputs: {exc}") from None


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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        data = score_file(args.inputs, software=software_version())
    except InputsRefused as exc:
        sys.stderr.write(f"refused{' (schema)' if exc.by_schema else ''}: {exc}\n")
        return EXIT_REFUSED
    try:
        write_atomically(args.out, BUNDLE_FILE, data)
    except OSError as exc:
        sys.stderr.write(f"cannot write {args.out / BUNDLE_FILE}: {exc.strerror}\n")
        return EXIT_WRITE_FAILED
    sys.stdout.write(hashlib.sha256(data).hexdigest() + "\n")
    return 0
