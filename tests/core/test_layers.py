"""The layer contracts (`[tool.importlinter]` in pyproject.toml, ADR 0016) hold on this tree, and each of them
fails on a deliberate violation: a copy of the source tree with one bad import added, checked by the same
`lint-imports` that `make lint` runs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("wire", "mrmarket", "attestation", "execution", "campaigns", "payouts", "executor", "devnet")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    # A process of its own, run in `cwd`: import-linter finds the packages from its working directory, and this
    # test process has the real ones imported already.
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", "pyproject.toml", "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("layers")
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, copy / package, ignore=_not_python)
    return copy


def _not_python(directory: str, names: list[str]) -> set[str]:
    return {n for n in names if (not n.endswith(".py") and not (Path(directory) / n).is_dir()) or n == "__pycache__"}


def test_the_tree_keeps_every_layer_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


VIOLATIONS = {
    # A lower layer reaching up, hidden in a function body: grimp sees imports wherever they are.
    "attestation/_violation.py": ("def f():\n    from execution.models import MMOrder\n", "Layers point one way"),
    "mrmarket/_violation.py": ("import campaigns.models\n", "Layers point one way"),
    "executor/_violation.py": ("import django.conf\n", "import no Django code"),
    "wire/_violation.py": ("import mrmarket.errors\n", "import no Django code"),
    "execution/_violation.py": ("import devnet.exchange\n", "never imports the devnet"),
    "payouts/domain/_violation.py": ("from django.db import models\n", "Domain modules are pure"),
}


@pytest.mark.parametrize("path", sorted(VIOLATIONS))
def test_a_deliberate_violation_breaks_its_contract(tree: Path, path: str) -> None:
    source, contract = VIOLATIONS[path]
    bad = tree / path
    bad.write_text(source)
    try:
        result = lint_imports(tree)
    finally:
        bad.unlink()
    assert result.returncode != 0
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN") or " BROKEN " in line]
    assert any(contract in line for line in broken), result.stdout
    assert f"{path[:-3].replace('/', '.')} ->" in result.stdout
