"""docs/configuration.md lists exactly the environment variables the settings read."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_DIR = ROOT / "mrmarket" / "settings"
ENV_METHODS = {"str", "bool", "int", "float", "list", "dict", "json", "url", "path"}


def variables_read_by_settings() -> set[str]:
    names: set[str] = set()
    for path in SETTINGS_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            is_env_call = (isinstance(func, ast.Name) and func.id == "env") or (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id == "env"
                and func.attr in ENV_METHODS
            )
            first = node.args[0]
            if is_env_call and isinstance(first, ast.Constant) and isinstance(first.value, str):
                names.add(first.value)
        # Required production variables are read through a list, not env() calls.
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "REQUIRED" for t in node.targets):
                names.update(ast.literal_eval(node.value))
    return names


def variables_in_doc() -> set[str]:
    text = (ROOT / "docs" / "configuration.md").read_text()
    return set(re.findall(r"^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|", text, flags=re.MULTILINE))


def test_every_setting_is_documented_and_every_documented_one_exists() -> None:
    read = variables_read_by_settings()
    documented = variables_in_doc()
    assert read, "the scan found no env() calls: the test itself is broken"
    assert sorted(read - documented) == [], "read by settings but not in docs/configuration.md"
    assert sorted(documented - read) == [], "in docs/configuration.md but not read by the settings"
