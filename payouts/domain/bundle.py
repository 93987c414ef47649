"""The results bundle `mrmarket.results-bundle/v1` (docs/scoring.md, published artifact 2): one epoch's scores
wrapped with what they were computed from, as canonical JSON (`docs/api/results-bundle-v1.schema.json`).

`results_bundle` parses an inputs document (`mrmarket.oracle-inputs/v1`), scores it and returns the bundle as a
JSON-able dict; `bundle_bytes` is its canonical form (RFC 8785) and `bundle_digest` the lower-case hex SHA-256 of
those bytes, the digest that goes on chain with `recordResults`. The same document and software version give the
same bytes. Pure: no Django, no I/O; the software version is the caller's to supply.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from payouts.domain.scoring.engine import EpochScores, score_epoch
from payouts.domain.scoring.inputs import OracleInputs
from wire.canonical import canonical_bytes, digest

BUNDLE_SCHEMA = "mrmarket.results-bundle/v1"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Software:
    """What computed the bundle: the package version (`pyproject.toml`) and the git commit, or "unknown"."""

    version: str
    commit: str

    def as_json(self) -> dict[str, str]:
        return {"version": self.version, "commit": self.commit}


def results_bundle(document: Any, *, software: Software) -> dict[str, Any]:
    """The bundle of one inputs document (a parsed JSON value). Raises `ScoringInputError` (naming the path) when
    the document cannot be scored, and `wire.errors.CanonicalFormError` when it is not canonical-JSON-able."""
    inputs_digest = digest(document)
    inputs = OracleInputs.from_json(document)
    return bundle_of(inputs=inputs, inputs_digest=inputs_digest, scores=score_epoch(inputs.epoch), software=software)


def bundle_of(*, inputs: OracleInputs, inputs_digest: str, scores: EpochScores, software: Software) -> dict[str, Any]:
    """Assemble the bundle from already computed scores (participants sorted by address, as the engine gives)."""
    params = inputs.epoch.params
    return {
        "schema": BUNDLE_SCHEMA,
        "campaign": inputs.campaign.as_json(),
        "epoch": params.epoch_json(),
        "parameters": params.parameters_json(),
        "inputs_digest": inputs_digest,
        **scores.as_json(),
        "software": software.as_json(),
    }


def bundle_bytes(bundle: dict[str, Any]) -> bytes:
    """The bundle's canonical bytes (RFC 8785): what is published and hashed."""
    return canonical_bytes(bundle)


def bundle_digest(bundle: dict[str, Any]) -> str:
    """Lower-case hex SHA-256 of `bundle_bytes(bundle)`."""
    return hashlib.sha256(bundle_bytes(bundle)).hexdigest()
