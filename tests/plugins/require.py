"""Tests that need a tool the machine may lack (node, Anvil, solcjs, PostgreSQL, Chromium, the real TDX quote)
declare it through `require()` (inside a test or fixture) or `requires()` (a mark). Both skip with a reason that
starts with `missing dependency:`.

With MRMARKET_REQUIRE_ALL=1 (set by .ci/run) such a skip is a failure instead: on CI every dependency is there, so
a skip would only hide that a whole class of tests (the Merkle leaf encoding checked against the JavaScript
library, the concurrency tests on PostgreSQL, the browser pages) never ran. Loaded with `-p` from pyproject.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

FLAG = "MRMARKET_REQUIRE_ALL"
PREFIX = "missing dependency: "


def strict() -> bool:
    return os.environ.get(FLAG, "").strip() not in ("", "0")


def _reason(name: str, hint: str) -> str:
    return f"{PREFIX}{name}" + (f" ({hint})" if hint else "")


def require(name: str, available: object, hint: str = "") -> None:
    """Skip the running test (or fixture) unless `available` is truthy; fail instead under the flag."""
    if not available:
        pytest.skip(_reason(name, hint))


def requires(name: str, available: object, hint: str = "") -> pytest.MarkDecorator:
    """The mark form of `require`, for a whole module (`pytestmark`) or one test."""
    return pytest.mark.skipif(not available, reason=_reason(name, hint))


def postgresql() -> bool:
    """True when the test database is PostgreSQL (the concurrency and advisory-lock paths need it)."""
    from django.db import connection

    return connection.vendor == "postgresql"


def require_postgresql(why: str = "SQLite serializes writers itself") -> None:
    require("PostgreSQL (DATABASE_URL=postgres://...)", postgresql(), why)


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr: Any = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not (report.skipped and strict()) or hasattr(report, "wasxfail"):
        return
    reason = _skip_reason(report)
    if PREFIX not in reason:
        return
    report.outcome = "failed"
    report.longrepr = f"{reason.removeprefix('Skipped: ')}: {FLAG} is set, so a missing dependency fails the run"
