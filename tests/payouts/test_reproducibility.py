"""Reproducibility of the published artifacts on generated campaigns: for each random epoch, the bytes the epoch
close stores (`payouts.closing.scored_documents`, then the manifest of the bundle) are exactly what a stranger's
`python -m payouts.audit recompute` rebuilds from the stored inputs alone — the same inputs digest, the same bundle,
the same manifest and root — and what is scored and paid does not depend on the order the participants, orders,
fills or snapshots were listed in."""

from __future__ import annotations

import hashlib
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

from hypothesis import given

from payouts.audit import cli
from payouts.closing import scored_documents
from payouts.domain.manifest import manifest_bytes, payout_manifest
from tests.payouts.bundle_fixtures import envelope
from tests.payouts.test_audit_cli import ROOT, clean_env
from tests.payouts.test_scoring_properties import FAST, epochs
from wire.canonical import canonical_bytes, parse


def stored(document: dict[str, Any]) -> tuple[bytes, bytes, bytes]:
    """What the close stores for an inputs document: inputs, bundle and manifest bytes."""
    inputs_data, bundle_data = scored_documents(document)
    return inputs_data, bundle_data, manifest_bytes(payout_manifest(parse(bundle_data)))


def write(directory: Path, artifacts: tuple[bytes, bytes, bytes]) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in zip(("inputs", "bundle", "manifest"), artifacts, strict=True):
        (directory / f"{name}.json").write_bytes(data)
        paths += [f"--{name}", str(directory / f"{name}.json")]
    return paths


def shuffled(document: dict[str, Any], seed: int) -> dict[str, Any]:
    """The same epoch listed in another order."""
    rng = random.Random(seed)
    copy: dict[str, Any] = parse(canonical_bytes(document))
    rng.shuffle(copy["participants"])
    for person in copy["participants"]:
        rng.shuffle(person["orders"])
        rng.shuffle(person["fills"])
    rng.shuffle(copy["snapshots"])
    rng.shuffle(copy["source_reports"])
    return copy


@FAST
@given(epochs())
def test_the_close_stores_what_recompute_rebuilds_from_the_inputs(tmp_path_factory: Any, bare: dict[str, Any]) -> None:
    artifacts = stored(envelope(bare))
    directory = tmp_path_factory.mktemp("epoch")
    assert cli.main(["recompute", *write(directory, artifacts)]) == 0


@FAST
@given(epochs())
def test_the_artifacts_do_not_depend_on_the_order_things_were_listed_in(bare: dict[str, Any]) -> None:
    document = envelope(bare)
    _, bundle, manifest = stored(document)
    _, bundle_again, manifest_again = stored(shuffled(document, seed=len(bundle)))
    # The inputs' own bytes (so their digest, and the bundle's digest after it) name the order they were written
    # in; everything scored and paid is the same.
    first, again = parse(bundle), parse(bundle_again)
    first.pop("inputs_digest")
    again.pop("inputs_digest")
    assert again == first
    paid, paid_again = parse(manifest), parse(manifest_again)
    paid.pop("results_digest")
    paid_again.pop("results_digest")
    assert paid_again == paid


def test_generated_campaigns_recompute_from_a_strangers_checkout(tmp_path: Path) -> None:
    """A few generated epochs, each recomputed by a separate `python -m payouts.audit recompute` with a bare
    environment (no Django settings, no database), as anyone holding the published files would run it."""
    examples: list[dict[str, Any]] = []

    @FAST
    @given(epochs())
    def collect(bare: dict[str, Any]) -> None:
        if len(examples) < 5:
            examples.append(bare)

    collect()
    assert examples
    for i, bare in enumerate(examples):
        artifacts = stored(envelope(bare))
        done = subprocess.run(
            [sys.executable, "-m", "payouts.audit", "recompute", *write(tmp_path / str(i), artifacts)],
            cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"manifest {hashlib.sha256(artifacts[2]).hexdigest()}" in done.stdout
