"""House rules of the layout: domain code and the executor never import Django; the wire stays one-way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DJANGO_SIDE = {
    "django",
    "rest_framework",
    "channels",
    "celery",
    "mrmarket",
    "campaigns",
    "execution",
    "attestation",
    "payouts",
}
APPS = ("campaigns", "execution", "attestation", "payouts")


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


def imported_roots(path: Path) -> set[str]:
    return {module.split(".")[0] for module in imported_modules(path)}


@pytest.mark.parametrize("app", APPS)
def test_app_has_the_style_shape(app: str) -> None:
    for part in (
        "models.py",
        "services.py",
        "selectors.py",
        "errors.py",
        "tasks.py",
        "admin.py",
        "domain",
        "api/v1",
    ):
        assert (ROOT / app / part).exists(), f"{app}/{part}"


@pytest.mark.parametrize("path", sorted(p for app in APPS for p in (ROOT / app / "domain").rglob("*.py")), ids=str)
def test_domain_code_has_no_django_imports(path: Path) -> None:
    """Pure code imports pure code only: no framework, no app's Django side; another app's `domain` package is pure
    by this same test (the protocol's per-order points are the campaigns' and the oracle's alike), and which way
    such an import may point is import-linter's layers contract."""
    own = {app for app in APPS if app in str(path)}
    pure = {m for m in imported_modules(path) if m.split(".")[0] in APPS and m.split(".")[1:2] == ["domain"]}
    bad = {m.split(".")[0] for m in imported_modules(path) - pure} & (DJANGO_SIDE - own)
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_executor_never_imports_the_django_side() -> None:
    files = sorted((ROOT / "executor").rglob("*.py"))
    assert files
    for path in files:
        bad = imported_roots(path) & DJANGO_SIDE
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"
