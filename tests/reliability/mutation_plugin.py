"""Loaded into pytest by the mutation run only (pyproject's `[tool.mutmut] pytest_add_cli_args`).

Hypothesis draws its examples at random and remembers failing ones in `.hypothesis/`: under mutation that would
make a mutant's verdict depend on the run. Derandomized and without a database, every run of the same mutant draws
the same examples, so a survivor is reproducible and the list of equivalent mutants stays meaningful.
"""

from __future__ import annotations

from hypothesis import settings

# Trampolined code runs slower: no deadline (a slow example is not a failure here).
settings.register_profile("mutation", derandomize=True, database=None, deadline=None, print_blob=False)
settings.load_profile("mutation")
