"""wire/ depends on the standard library, rfc8785 and PyNaCl only (ADR 0005)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {"wire", "rfc8785", "nacl", "__future__"} | set(sys.stdlib_module_names)


def test_wire_imports_only_what_the_executor_image_has() -> None:
    files = sorted((ROOT / "wire").rglob("*.py"))
    assert files
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] in ALLOWED, f"{path.relative_to(ROOT)} imports {name}"
