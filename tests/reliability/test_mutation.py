"""The CI hook of the mutation run (docs/reliability.md, section 8).

CI runs the deterministic sample (`tests/reliability/mutation.py --sample`: the first three mutants of every
function of every mutated file) inside a 10-minute bound; `make mutation` runs every mutant. Either fails when a
mutant survives that `tests/reliability/equivalent_mutants.txt` does not explain.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.mutation import ROOT, only_mutate

pytestmark = [pytest.mark.mutation, pytest.mark.slow]

BOUND_SECONDS = 600


def test_the_sampled_mutants_are_all_killed_or_explained(tmp_path: Path) -> None:
    figures = tmp_path / "mutation.json"
    run = subprocess.run(
        [sys.executable, "-m", "tests.reliability.mutation", "--sample", "--json", str(figures)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=BOUND_SECONDS,
        check=False,
    )
    assert figures.exists(), run.stdout[-4000:] + run.stderr[-4000:]
    result = json.loads(figures.read_text())
    assert result["unexplained"] == [], run.stdout[-4000:]
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    # Every listed file was mutated and its sample ran: a file dropped from the run cannot pass silently.
    assert set(result["files"]) == set(only_mutate())
    for path, counts in result["files"].items():
        assert counts["mutants"] > 0, path
        assert counts.get("not checked", 0) == 0, path
