"""The payout manifest `mrmarket.payout-manifest/v1` (docs/scoring.md, published artifact 3), built from a results
bundle (`docs/api/payout-manifest-v1.schema.json`).

`payout_manifest` takes a parsed results bundle and returns the manifest as a JSON-able dict: the bundle's
`campaign`, `epoch` (the whole `{index, start_ms, end_ms}` object, so the document says which window it pays for
without the bundle at hand; `publishPayout` takes `epoch.index`), `results_digest` (the SHA-256 of the bundle's
canonical bytes, the digest `recordResults` put on chain), `epoch_budget`, the leaves `(index, account, amount)`
of every participant paid more than 0, sorted by account with index = position, their `total`, the `merkle_root`
of OpenZeppelin's StandardMerkleTree over them (`payouts/domain/merkle.py`) and the bundle's `software`.

When nobody scored, the manifest has no leaves, a total of "0" and a null root: it is written for the record, but
never published on chain (`publishPayout` refuses a zero root, and there is nothing to pay; the budget stays
refundable to the creator).

The manifest trusts the bundle's scores, and checks only what the payout relies on: every account a lower-case 0x
address, paid once; every amount a decimal string of base units; the budget a uint256; and the amounts summing to
the budget exactly when anyone is paid. The whole bundle's shape is its schema's to check (`payouts.audit`); that
the amounts are the right ones is checked by recomputing the bundle from the inputs. Pure: no Django, no I/O.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from payouts.domain.bundle import BUNDLE_SCHEMA, bundle_digest
from payouts.domain.payout import ADDRESS_RE, manifest, manifest_json
from wire.canonical import canonical_bytes

_UINT_RE = re.compile(r"0|[1-9][0-9]*")
_UINT256 = 2**256


class ManifestError(ValueError):
    """A results bundle no manifest can be built from; `path` names the offending value (`bundle.participants[3]
    .amount`)."""

    code = "manifest_refused"

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ManifestError(path, "is not an object")
    return value


def _base_units(value: Any, path: str) -> int:
    if not isinstance(value, str) or not _UINT_RE.fullmatch(value):
        raise ManifestError(path, f"{value!r} is not a decimal string of base units")
    number = int(value)
    if number >= _UINT256:
        raise ManifestError(path, "does not fit in a uint256")
    return number


def _paid(bundle: dict[str, Any]) -> dict[str, int]:
    participants = bundle.get("participants")
    if not isinstance(participants, list):
        raise ManifestError("bundle.participants", "is not an array")
    paid: dict[str, int] = {}
    seen: set[str] = set()
    for i, entry in enumerate(participants):
        path = f"bundle.participants[{i}]"
        participant = _object(entry, path)
        account = participant.get("address")
        if not isinstance(account, str) or not ADDRESS_RE.fullmatch(account):
            raise ManifestError(f"{path}.address", f"{account!r} is not a lower-case 0x address")
        if account in seen:
            raise ManifestError(f"{path}.address", f"{account} is listed twice")
        seen.add(account)
        amount = _base_units(participant.get("amount"), f"{path}.amount")
        if amount:
            paid[account] = amount
    return paid


def payout_manifest(bundle: Any) -> dict[str, Any]:
    """The manifest of a results bundle (a parsed JSON value). Raises `ManifestError` naming the path, and
    `wire.errors.CanonicalFormError` when the bundle is not canonical-JSON-able (a float, say)."""
    document = _object(bundle, "bundle")
    if document.get("schema") != BUNDLE_SCHEMA:
        raise ManifestError("bundle.schema", f"is not {BUNDLE_SCHEMA!r}")
    campaign = _object(document.get("campaign"), "bundle.campaign")
    epoch = _object(document.get("epoch"), "bundle.epoch")
    software = _object(document.get("software"), "bundle.software")
    parameters = _object(document.get("parameters"), "bundle.parameters")
    budget = _base_units(parameters.get("epoch_budget"), "bundle.parameters.epoch_budget")
    paid = _paid(document)
    total = sum(paid.values())
    if paid and total != budget:
        raise ManifestError("bundle.participants", f"the amounts sum to {total}, not the epoch budget {budget}")
    return manifest_json(
        manifest(paid),
        campaign=campaign,
        epoch=epoch,
        results_digest=bundle_digest(document),
        budget=budget,
        software=software,
    )


def manifest_bytes(document: dict[str, Any]) -> bytes:
    """The manifest's canonical bytes (RFC 8785): what is published and hashed."""
    return canonical_bytes(document)


def manifest_digest(document: dict[str, Any]) -> str:
    """Lower-case hex SHA-256 of `manifest_bytes(document)`: the `manifestHash` of publishPayout (as 0x + this)."""
    return hashlib.sha256(manifest_bytes(document)).hexdigest()
