"""Recomputing an epoch's published artifacts: the inputs document scored into its results bundle, the bundle into
its payout manifest, and both compared byte for byte with what was published (docs/scoring.md, "Recomputing a
bundle"). The `score`, `manifest` and `recompute` commands (`payouts.audit.cli`) and `verify`
(`payouts.audit.verify`, which downloads the documents instead of reading files) share these functions.

The bundle records the software that computed it: the `version` of `pyproject.toml` and `git rev-parse HEAD` of the
checkout, each "unknown" when it cannot be read. A bundle is thus reproduced bit for bit by the same commit; a
recomputation records the software the given bundle names (`recorded_software`), not this checkout's.

No Django and no database: the errors are this module's own (`mrmarket.errors` would pull the framework in).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tomllib
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


def parse_json(raw: bytes, *, name: str) -> object:
    """The parsed JSON value of a document's bytes; raises `InputsRefused` (not JSON, floats, repeated keys)."""
    try:
        return parse(raw)
    except (CanonicalFormError, UnicodeDecodeError) as exc:
        raise InputsRefused(f"{name}: {exc}") from None


def read_json(path: Path, *, name: str) -> tuple[bytes, object]:
    """The file's bytes and its parsed JSON value; raises `InputsRefused` (unreadable, not JSON, floats, repeats)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputsRefused(f"cannot read {path}: {exc.strerror}") from None
    return raw, parse_json(raw, name=name)


def score_file(inputs_path: Path, *, software: Software) -> bytes:
    """The canonical bundle bytes of the inputs document at `inputs_path`; raises `InputsRefused`."""
    _, document = read_json(inputs_path, name="inputs")
    return score_document(document, software=software)


def score_document(document: object, *, software: Software) -> bytes:
    """The canonical bundle bytes of a parsed inputs document; raises `InputsRefused`."""
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
    _, inputs = read_json(inputs_path, name="inputs")
    return _recomputation(inputs, bundle_raw, bundle, manifest_raw, manifest, software)


def recompute_bytes(inputs_raw: bytes, bundle_raw: bytes, manifest_raw: bytes) -> Recomputation:
    """`recompute_files` over documents already in memory (downloaded, say); raises `InputsRefused`."""
    bundle = parse_json(bundle_raw, name="bundle")
    manifest = parse_json(manifest_raw, name="manifest")
    software = recorded_software(bundle)
    inputs = parse_json(inputs_raw, name="inputs")
    return _recomputation(inputs, bundle_raw, bundle, manifest_raw, manifest, software)


def _recomputation(
    inputs: object, bundle_raw: bytes, bundle: object, manifest_raw: bytes, manifest: object, software: Software
) -> Recomputation:
    rebuilt = score_document(inputs, software=software)
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
