"""Campaign metadata v1: validation against the JSON Schema, the rules a schema cannot say, and its hash.

The metadata is fixed at creation. Its canonical form (RFC 8785, `wire.canonical`) hashed with SHA-256 is the
`metadataHash` stored in the escrow, so anyone holding the JSON can check it is the campaign's. Errors name
the field (`scoring.max_spread_bps: 5000 is greater than the maximum of 1000`). Pure: no Django.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from wire.canonical import canonical_bytes
from wire.errors import CanonicalFormError

SCHEMA_ID = "mrmarket.campaign-metadata/v1"
SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema" / "metadata-v1.json"
MAX_EPOCHS = 3660  # CampaignFactory.MAX_EPOCHS


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class MetadataError(ValueError):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors

    @property
    def fields(self) -> dict[str, str]:
        return {e.field: e.message for e in self.errors}


@cache
def _validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def integer_bounds(field: str) -> tuple[int, int]:
    """The schema's inclusive bounds of a top-level integer field (`epoch_seconds`), for forms that say them."""
    spec = _validator().schema["properties"][field]
    return int(spec["minimum"]), int(spec["maximum"])


def _path(parts: Any) -> str:
    return ".".join(str(p) for p in parts)


def validate(metadata: Any) -> None:
    """Raise MetadataError listing every problem, each naming its field; return None when valid."""
    errors = [
        FieldError(_path(e.absolute_path) or _missing_field(e), e.message)
        for e in sorted(_validator().iter_errors(metadata), key=lambda e: (_path(e.absolute_path), e.message))
    ]
    if errors:
        raise MetadataError(errors)
    try:
        # JSON Schema's "integer" takes 1.0, and no bound keeps chain_id or start within I-JSON: what has no
        # canonical form has no hash, so it is not metadata (it used to pass here and fail in `canonical`).
        canonical_bytes(metadata)
    except CanonicalFormError as exc:
        raise MetadataError([FieldError(exc.path, exc.message)]) from None
    errors = _cross_field_errors(metadata)
    if errors:
        raise MetadataError(errors)


def _missing_field(error: Any) -> str:
    # "'budget' is a required property" at the root has an empty path: name the property instead.
    if error.validator == "required":
        return str(error.message).split("'")[1]
    if error.validator == "additionalProperties":
        return str(error.message).split("'")[1]
    return ""


def _cross_field_errors(m: dict[str, Any]) -> list[FieldError]:
    errors = []
    if m["start"] >= m["end"]:
        errors.append(FieldError("end", "must be after start"))
    else:
        epochs = -(-(m["end"] - m["start"]) // m["epoch_seconds"])
        if epochs > MAX_EPOCHS:
            errors.append(FieldError("epoch_seconds", f"gives {epochs} epochs; at most {MAX_EPOCHS}"))
        if int(m["budget"]) < epochs:
            errors.append(FieldError("budget", f"must pay at least one base unit per epoch ({epochs} epochs)"))
    scoring = m["scoring"]
    if m["epoch_seconds"] % scoring["sample_seconds"]:
        errors.append(FieldError("scoring.sample_seconds", "must divide epoch_seconds (samples align to epochs)"))
    weight = Fraction(scoring["depth_weight"])
    if weight > 1:
        errors.append(FieldError("scoring.depth_weight", "must be within 0 and 1"))
    base, quote = m["pair"].split("/")
    if base == quote:
        errors.append(FieldError("pair", "base and quote must differ"))
    return errors


def canonical(metadata: dict[str, Any]) -> bytes:
    validate(metadata)
    return canonical_bytes(metadata)


def metadata_hash(metadata: dict[str, Any]) -> bytes:
    """SHA-256 of the canonical form: the campaign's on-chain metadataHash."""
    return hashlib.sha256(canonical(metadata)).digest()
