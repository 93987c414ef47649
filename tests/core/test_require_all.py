"""A test that needs a missing tool skips locally and fails on CI (MRMARKET_REQUIRE_ALL=1), and every such skip
goes through the one helper, so none can stay silent on CI."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SAMPLE = """
import pytest
from tests.plugins.require import require, requires

@requires("a tool nobody has", False, "install it")
def test_marked():
    pass

@pytest.fixture
def tool():
    require("another missing tool", False)

def test_fixture(tool):
    pass

def test_inline():
    require("node", None)

def test_present():
    require("python", sys_ok())

def sys_ok():
    return True

@pytest.mark.skip(reason="not about a dependency")
def test_plain_skip():
    pass
"""


def run_sample(tmp_path: Path, flag: str | None) -> str:
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "MRMARKET_REQUIRE_ALL"}}
    env["PYTHONPATH"] = str(ROOT)
    if flag is not None:
        env["MRMARKET_REQUIRE_ALL"] = flag
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-c", os.devnull, "-p", "no:django", "-p", "no:cacheprovider"),
            *("-p", "tests.plugins.require", "-rA", "-q", str(tmp_path / "test_sample.py")),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.stdout + result.stderr


@pytest.mark.parametrize("flag", [None, "0", ""])
def test_without_the_flag_a_missing_dependency_skips(tmp_path: Path, flag: str | None) -> None:
    out = run_sample(tmp_path, flag)
    assert "1 passed, 4 skipped" in out, out


def test_with_the_flag_a_missing_dependency_fails(tmp_path: Path) -> None:
    out = run_sample(tmp_path, "1")
    # A skip in setup (a mark, a fixture) turns into an error at setup, one in the test body into a failure.
    assert "1 failed, 1 passed, 1 skipped, 2 errors" in out, out
    for outcome, name in (("ERROR", "test_marked"), ("ERROR", "test_fixture"), ("FAILED", "test_inline")):
        assert f"{outcome} test_sample.py::{name}" in out, out
    assert "missing dependency: a tool nobody has (install it): MRMARKET_REQUIRE_ALL is set" in out
    assert "SKIPPED" in out
    assert "not about a dependency" in out  # a plain skip stays a skip


def test_ci_sets_the_flag() -> None:
    assert re.search(r"^export MRMARKET_REQUIRE_ALL=1$", (ROOT / ".ci" / "run").read_text(), re.MULTILINE)


def test_every_skip_in_the_suite_goes_through_the_helper() -> None:
    direct = re.compile(r"pytest\.skip\(|mark\.skipif\(|importorskip\(")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        if path != ROOT / "tests" / "plugins" / "require.py" and path != Path(__file__)
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if direct.search(line)
    ]
    assert offenders == [], "skip through tests.plugins.require.require()/requires() instead"
