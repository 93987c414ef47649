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
from dataclasses import dataclass
from pathlib import Path

from payouts.audit.compare import first_difference
from payouts.audit.schemas import SchemaViolation, validate_bundle, validate_inputs
from payouts.domain.bundle import UNKNOWN, Software, bundle_bytes, results_bundle
from payouts.domain.manifest import ManifestError, manifest_bytes, payout_manifest
from payouts.domain.scoring.inputs import ScoringInputError
from wire.canonical import parse
from wire.errors import CanonicalFormError

ROOT = Path(__file__).resolve().parents[2]
BUNDLE_FILE = "bundle.json"
MANIFEST_FILE = "manifest.json"
EXIT_REFUSED = 2
EXIT_WRITE_FAILED = 1
EXIT_DIFFERS = 1
_VERSION_MAX = 64
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


def read_json(path: Path, *, name: str) -> tuple[bytes, object]:
    """The file's bytes and its parsed JSON value; raises `InputsRefused` (unreadable, not JSON, floats, repeats)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputsRefused(f"cannot read {path}: {exc.strerror}") from None
    try:
        return raw, parse(raw)
    except (CanonicalFormError, UnicodeDecodeError) as exc:
        raise InputsRefused(f"{name}: {exc}") from None


def score_file(inputs_path: Path, *, software: Software) -> bytes:
    """The canonical bundle bytes of the inputs document at `inputs_path`; raises `InputsRefused`."""
    _, document = read_json(inputs_path, name="inputs")
    try:
        validate_inputs(document)
        return bundle_bytes(results_bundle(document, software=software))
    except SchemaViolation as exc:
        raise InputsRefused(f"{exc.path}: {exc.problem}", by_schema=True) from None
    except ScoringInputError as exc:
        raise InputsRefused(f"{exc.path}: {exc.problem}") from None
    except CanonicalFormError as exc:
        raise InputsRefused(f"inputs: {exc}") from None


def manifest_file(bundle_path: Path) -> bytes:
    """The canonical manifest bytes of the results bundle at `bundle_path`; raises `InputsRefused`."""
    _, bundle = read_json(bundle_path, name="bundle")
    try:
        validate_bundle(bundle)
        return manifest_bytes(payout_manifest(bundle))
    except SchemaViolation as exc:
        raise InputsRefused(f"{exc.path}: {exc.problem}", by_schema=True) from None
    except ManifestError as exc:
        raise InputsRefused(f"{exc.path}: {exc.problem}") from None
    except CanonicalFormError as exc:
        raise InputsRefused(f"bundle: {exc}") from None


def recorded_software(bundle: object) -> Software:
    """The `software` a given bundle names, which its recomputation must record too; raises `InputsRefused`."""
    software = bundle.get("software") if isinstance(bundle, dict) else None
    if not isinstance(software, dict):
        raise InputsRefused("bundle.software: is missing or not an object; the bundle cannot be reproduced")
    version, commit = software.get("version"), software.get("commit")
    if not isinstance(version, str) or not 0 < len(version) <= _VERSION_MAX:
        raise InputsRefused(f"bundle.software.version: {version!r} is not a version")
    if not isinstance(commit, str) or not (commit == UNKNOWN or _COMMIT_RE.fullmatch(commit)):
        raise InputsRefused(f"bundle.software.commit: {commit!r} is not a commit")
    return Software(version=version, commit=commit)


@dataclass(frozen=True)
class Recomputation:
    """What `recompute` found: the recomputed artifacts' digests and, per differing artifact, why."""

    bundle_digest: str
    manifest_digest: str
    differences: tuple[str, ...]
    software: Software


def _compare(name: str, recomputed_bytes: bytes, given_bytes: bytes, given: object) -> str | None:
    if recomputed_bytes == given_bytes:
        return None
    found = first_difference(parse(recomputed_bytes), given, root=name)
    if found is None:
        return f"{name}: the same document in other bytes (not its canonical form, RFC 8785)"
    return found.describe()


def recompute_files(inputs_path: Path, bundle_path: Path, manifest_path: Path) -> Recomputation:
    """Rebuild the bundle and the manifest and compare them with the given files; raises `InputsRefused`."""
    bundle_raw, bundle = read_json(bundle_path, name="bundle")
    manifest_raw, manifest = read_json(manifest_path, name="manifest")
    software = recorded_software(bundle)
    rebuilt = score_file(inputs_path, software=software)
    try:
        rebuilt_manifest = manifest_bytes(payout_manifest(parse(rebuilt)))
    except ManifestError as exc:
        # Inputs the engine scores but no payout can follow (a budget beyond a uint256).
        raise InputsRefused(f"inputs: the recomputed bundle has no manifest: {exc}") from None
    differences = [
        found
        for found in (
            _compare("bundle", rebuilt, bundle_raw, bundle),
            _compare("manifest", rebuilt_manifest, manifest_raw, manifest),
        )
        if found is not None
    ]
    return Recomputation(
        bundle_digest=hashlib.sha256(rebuilt).hexdigest(),
        manifest_digest=hashlib.sha256(rebuilt_manifest).hexdigest(),
        differences=tuple(differences),
        software=software,
    )


def software_note(recorded: Software, running: Software) -> str:
    """Whether this checkout is the software the bundle names (the recomputation records the bundle's either way)."""
    named = f"software {recorded.version} {recorded.commit}"
    if recorded == running and running.commit != UNKNOWN:
        return f"{named}: this checkout is that software"
    return (
        f"{named}: this checkout is {running.version} {running.commit}, not known to be that software "
        "(check out the bundle's commit to reproduce it with the same code)"
    )


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
    try:
        if args.command == "manifest":
            data, name = manifest_file(args.bundle), MANIFEST_FILE
        else:
            data, name = score_file(args.inputs, software=software_version()), BUNDLE_FILE
    except InputsRefused as exc:
        return _refused(exc)
    return _write(args.out, name, data)
