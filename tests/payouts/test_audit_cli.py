"""`python -m payouts.audit score`: the bundle written is exactly the canonical bytes, the same every run, computed
without Django or a database; each refused input exits 2, names the problem's path and writes nothing."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from payouts.audit import cli
from payouts.domain.bundle import Software, bundle_bytes, results_bundle
from tests.payouts.bundle_fixtures import rich_document

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORK = {"django", "rest_framework", "celery", "channels", "mrmarket", "campaigns", "execution", "attestation"}
APPS = {"campaigns", "execution", "attestation"}  # their package __init__ is a docstring: importing one runs nothing


def clean_env() -> dict[str, str]:
    """The environment of a stranger's checkout: no Django settings, no database, no Redis."""
    drop = {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONPATH"] = str(ROOT)
    return env


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "payouts.audit", *map(str, args)],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def write(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document, indent=2))
    return path


@pytest.mark.slow
def test_the_cli_writes_the_canonical_bundle_and_prints_its_digest_the_same_every_run(tmp_path: Path) -> None:
    inputs = write(tmp_path / "inputs.json", rich_document())
    first = run_cli("score", "--inputs", inputs, "--out", tmp_path / "one")
    second = run_cli("score", "--inputs", inputs, "--out", tmp_path / "two" / "nested")
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    data = (tmp_path / "one" / "bundle.json").read_bytes()
    assert data == (tmp_path / "two" / "nested" / "bundle.json").read_bytes()
    assert first.stdout == second.stdout == hashlib.sha256(data).hexdigest() + "\n"
    assert re.fullmatch(r"[0-9a-f]{64}\n", first.stdout)
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["bundle.json"]
    # Exactly what the domain computes for this checkout's software version.
    assert data == bundle_bytes(results_bundle(rich_document(), software=cli.software_version()))


@pytest.mark.slow
def test_the_cli_imports_no_framework_code() -> None:
    # An app's pure `domain` package may come along (the per-order points are campaigns.domain's): its package
    # `__init__` and the domain modules, which import no framework themselves (tests/core/test_layout.py).
    probe = (
        "import sys, payouts.audit.cli; "
        f"apps = {sorted(APPS)!r}; "
        "pure = lambda m: m in apps or (m.split('.')[0] in apps and m.split('.')[1:2] == ['domain']); "
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {sorted(FRAMEWORK)!r} and not pure(m)); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


def bad_schema(doc: dict[str, Any]) -> dict[str, Any]:
    doc["participants"][0]["orders"][0]["price"] = "-99.8"
    return doc


def bad_for_the_engine(doc: dict[str, Any]) -> dict[str, Any]:
    doc["snapshots"][1]["t_ms"] += 1  # a schema-valid time that is not a sample time of the epoch
    return doc


@pytest.mark.slow
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "refused: inputs: not JSON"),
        (json.dumps({"schema": 1.5}).encode(), "refused: inputs: float literal 1.5 is not allowed"),
        (
            json.dumps(bad_schema(rich_document())).encode(),
            "refused (schema): inputs.participants[0].orders[0].price: '-99.8' does not match",
        ),
        (
            json.dumps(bad_for_the_engine(rich_document())).encode(),
            "refused: inputs.snapshots[1].t_ms: is not a sample",
        ),
    ],
    ids=["not-json", "float", "schema", "engine"],
)
def test_refused_inputs_exit_2_name_the_path_and_write_nothing(tmp_path: Path, content: bytes, message: str) -> None:
    inputs = tmp_path / "inputs.json"
    inputs.write_bytes(content)
    done = run_cli("score", "--inputs", inputs, "--out", tmp_path / "out")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(message), done.stderr
    assert not (tmp_path / "out").exists()


# In process, for the cases around the edges (same `main`, no subprocess).


def test_main_refuses_a_missing_file_and_a_schema_violation_in_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["score", "--inputs", str(tmp_path / "absent.json"), "--out", str(tmp_path / "out")]) == 2
    assert "cannot read" in capsys.readouterr().err
    doc = rich_document()
    doc["campaign"].pop("chain_id")
    inputs = write(tmp_path / "inputs.json", doc)
    assert cli.main(["score", "--inputs", str(inputs), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == "refused (schema): inputs.campaign.chain_id: is missing\n"
    assert not (tmp_path / "out").exists()


def test_main_replaces_an_existing_bundle_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "bundle.json").write_text("stale")
    inputs = write(tmp_path / "inputs.json", rich_document())
    assert cli.main(["score", "--inputs", str(inputs), "--out", str(out)]) == 0
    data = (out / "bundle.json").read_bytes()
    assert capsys.readouterr().out == hashlib.sha256(data).hexdigest() + "\n"
    assert sorted(p.name for p in out.iterdir()) == ["bundle.json"]


def test_main_reports_an_unwritable_output_with_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    inputs = write(tmp_path / "inputs.json", rich_document())
    assert cli.main(["score", "--inputs", str(inputs), "--out", str(blocker)]) == 1
    assert "cannot write" in capsys.readouterr().err


def test_the_software_version_is_the_package_version_and_the_checkouts_commit(tmp_path: Path) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    software = cli.software_version()
    assert software.version == version
    assert software.commit == "unknown" or re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", software.commit)
    # Outside a checkout neither is known.
    assert cli.software_version(tmp_path) == Software(version="unknown", commit="unknown")
