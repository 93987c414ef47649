"""Validation of the published documents against their JSON Schemas (`docs/api/*.schema.json`, draft 2020-12).

A violation is reported as one `SchemaViolation` naming the JSON path of the offending value in the same form as
the scoring engine's own errors (`inputs.participants[0].orders[1].price`), so a person reads one kind of path.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "api"
INPUTS_SCHEMA_FILE = SCHEMA_DIR / "oracle-inputs-v1.schema.json"
BUNDLE_SCHEMA_FILE = SCHEMA_DIR / "results-bundle-v1.schema.json"
MANIFEST_SCHEMA_FILE = SCHEMA_DIR / "payout-manifest-v1.schema.json"


class SchemaViolation(ValueError):
    """A document that its schema refuses; `path` names the value (or the object missing a property)."""

    code = "schema_violation"

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


@cache
def _validator(schema_file: Path) -> Draft202012Validator:
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def json_path(root: str, parts: Iterable[Any]) -> str:
    path = root
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _violation(error: ValidationError, root: str) -> SchemaViolation:
    parts = list(error.absolute_path)
    instance = error.instance
    # A missing or unknown property is named by its own path rather than its parent's.
    if error.validator == "required" and isinstance(instance, dict):
        missing = [k for k in error.validator_value if k not in instance]
        return SchemaViolation(json_path(root, [*parts, missing[0]]), "is missing")
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        known = set(error.schema.get("properties", {}))
        unknown = sorted(k for k in instance if k not in known)
        return SchemaViolation(json_path(root, [*parts, unknown[0]]), "is not a known field")
    description = error.schema.get("description") if isinstance(error.schema, dict) else None
    if error.validator == "pattern" and isinstance(description, str):
        return SchemaViolation(json_path(root, parts), f"{error.message} ({description})")
    return SchemaViolation(json_path(root, parts), error.message)


def validate(document: Any, schema_file: Path, *, root: str) -> None:
    """Raise `SchemaViolation` for the most relevant problem of `document`; return None when it is valid."""
    error = best_match(_validator(schema_file).iter_errors(document))
    if error is not None:
        raise _violation(error, root)


def validate_inputs(document: Any) -> None:
    validate(document, INPUTS_SCHEMA_FILE, root="inputs")


def validate_bundle(document: Any) -> None:
    validate(document, BUNDLE_SCHEMA_FILE, root="bundle")


def validate_manifest(document: Any) -> None:
    validate(document, MANIFEST_SCHEMA_FILE, root="manifest")
