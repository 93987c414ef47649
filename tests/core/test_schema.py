"""The committed OpenAPI schema matches the code (regenerate with `make schema`)."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]


def test_committed_schema_matches_the_code(tmp_path: Path) -> None:
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--api-version", "v1", "--file", str(out), stderr=StringIO())
    committed = (ROOT / "docs" / "api" / "openapi-v1.yaml").read_text()
    assert out.read_text() == committed, "docs/api/openapi-v1.yaml is stale: run `make schema`"
