"""`python -m payouts.audit manifest` and `recompute`: the manifest written is the canonical bytes of the bundle's
manifest; untouched artifacts recompute to the same bytes (exit 0, both digests); a changed manifest amount, a
tampered bundle or tampered inputs exit 1 naming the artifact and the first differing path with both values; refused
inputs exit 2."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from payouts.audit import cli
from payouts.audit.compare import first_difference
from payouts.domain.bundle import Software, bundle_bytes, results_bundle
from payouts.domain.manifest import manifest_bytes, payout_manifest
from tests.payouts.bundle_fixtures import paying_document
from tests.payouts.test_audit_cli import run_cli

OTHER_SOFTWARE = Software(version="9.9.9", commit="cd" * 20)  # not this checkout


def write(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document, indent=2))
    return path


def published(tmp_path: Path, *, software: Software = OTHER_SOFTWARE) -> tuple[Path, Path, Path]:
    """An epoch's three published files, the bundle and manifest as their canonical bytes."""
    doc = paying_document()
    inputs = write(tmp_path / "inputs.json", doc)
    bundle = results_bundle(doc, software=software)
    (tmp_path / "bundle.json").write_bytes(bundle_bytes(bundle))
    (tmp_path / "manifest.json").write_bytes(manifest_bytes(payout_manifest(bundle)))
    return inputs, tmp_path / "bundle.json", tmp_path / "manifest.json"


def recompute(inputs: Path, bundle: Path, manifest: Path) -> int:
    return cli.main(["recompute", "--inputs", str(inputs), "--bundle", str(bundle), "--manifest", str(manifest)])


def rewrite(path: Path, change) -> None:
    document = json.loads(path.read_bytes())
    change(document)
    path.write_bytes(bundle_bytes(document))  # canonical, as a careful forger would write it


def test_manifest_writes_the_canonical_manifest_and_prints_its_digest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, bundle, _ = published(tmp_path)
    out = tmp_path / "out"
    assert cli.main(["manifest", "--bundle", str(bundle), "--out", str(out)]) == 0
    data = (out / "manifest.json").read_bytes()
    assert data == (tmp_path / "manifest.json").read_bytes()
    assert capsys.readouterr().out == hashlib.sha256(data).hexdigest() + "\n"
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"[1, 2", "refused: bundle: not JSON"),
        (b'{"schema": "mrmarket.results-bundle/v1"}', "refused (schema): bundle.campaign: is missing"),
    ],
    ids=["not-json", "schema"],
)
def test_manifest_refuses_a_bad_bundle_with_exit_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(content)
    assert cli.main(["manifest", "--bundle", str(bundle), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.startswith(message)
    assert not (tmp_path / "out").exists()


def test_manifest_refuses_a_bundle_whose_amounts_miss_the_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, bundle, _ = published(tmp_path)
    rewrite(bundle, lambda b: b["participants"][0].update(amount="1"))
    assert cli.main(["manifest", "--bundle", str(bundle), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("refused: bundle.participants: the amounts sum to "), err
    assert not (tmp_path / "out").exists()


def test_untouched_artifacts_recompute_to_the_same_bytes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs, bundle, manifest = published(tmp_path)
    assert recompute(inputs, bundle, manifest) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "bundle " + hashlib.sha256(bundle.read_bytes()).hexdigest()
    assert out[1] == "manifest " + hashlib.sha256(manifest.read_bytes()).hexdigest()
    # Recomputed under the bundle's own software name, which this checkout is not: said on its own line.
    assert out[2].startswith(f"software 9.9.9 {'cd' * 20}: this checkout is ")
    assert "not known to be that software" in out[2]
    assert len(out) == 3


def test_the_checkouts_own_artifacts_recompute_and_say_it_is_the_same_software(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    running = cli.software_version()
    inputs, bundle, manifest = published(tmp_path, software=running)
    assert recompute(inputs, bundle, manifest) == 0
    note = capsys.readouterr().out.splitlines()[2]
    if running.commit == "unknown":
        assert "not known to be that software" in note
    else:
        assert note == f"software {running.version} {running.commit}: this checkout is that software"


def test_a_changed_manifest_amount_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs, bundle, manifest = published(tmp_path)
    original = json.loads(manifest.read_bytes())["leaves"][1]["amount"]
    forged = str(int(original) + 1)
    rewrite(manifest, lambda m: m["leaves"][1].update(amount=forged))
    assert recompute(inputs, bundle, manifest) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert lines[0] == f'differs: manifest.leaves[1].amount: recomputed "{original}", given "{forged}"'
    assert lines[1].startswith("software 9.9.9")
    assert len(lines) == 2  # the bundle matches


def test_a_tampered_bundle_is_named_and_so_is_a_manifest_built_from_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs, bundle, manifest = published(tmp_path)
    original = json.loads(bundle.read_bytes())["participants"][0]["depth"]
    rewrite(bundle, lambda b: b["participants"][0].update(depth=str(int(original) * 2)))
    assert recompute(inputs, bundle, manifest) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == (f'differs: bundle.participants[0].depth: recomputed "{original}", given "{int(original) * 2}"')
    assert lines[1].startswith("software ")  # the manifest was built from the true bundle: it matches
    # A forger who also rebuilds the manifest from the forged bundle changes its results digest.
    forged_manifest = payout_manifest(json.loads(bundle.read_bytes()))
    manifest.write_bytes(manifest_bytes(forged_manifest))
    assert recompute(inputs, bundle, manifest) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("differs: bundle.participants[0].depth: ")
    assert lines[1].startswith("differs: manifest.results_digest: recomputed ")
    assert lines[1].endswith(f'given "{forged_manifest["results_digest"]}"')


def test_tampered_inputs_are_named_by_the_bundle_they_no_longer_give(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs, bundle, manifest = published(tmp_path)
    doc = json.loads(inputs.read_text())
    doc["snapshots"][0]["book"]["bids"][0][1] = "3"  # one level's size
    write(inputs, doc)
    assert recompute(inputs, bundle, manifest) == 1
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith("differs: bundle.inputs_digest: recomputed ")
    assert first.endswith(f'given "{json.loads(bundle.read_bytes())["inputs_digest"]}"')


def test_the_same_document_in_other_bytes_is_a_difference(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs, bundle, manifest = published(tmp_path)
    write(bundle, json.loads(bundle.read_bytes()))  # indented: not the canonical bytes
    assert recompute(inputs, bundle, manifest) == 1
    assert capsys.readouterr().err.startswith(
        "differs: bundle: the same document in other bytes (not its canonical form, RFC 8785)\n"
    )


def test_an_extra_or_missing_key_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs, bundle, manifest = published(tmp_path)
    rewrite(manifest, lambda m: m.update(note="hi"))
    rewrite(bundle, lambda b: b.pop("gaps"))
    assert recompute(inputs, bundle, manifest) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "differs: bundle.gaps: recomputed [], given (absent)"
    assert lines[1] == 'differs: manifest.note: recomputed (absent), given "hi"'


def bad_schema(doc: dict[str, Any]) -> dict[str, Any]:
    doc["participants"][0]["orders"][0]["price"] = "-99.8"
    return doc


@pytest.mark.parametrize(
    ("target", "content", "message"),
    [
        ("inputs", json.dumps(bad_schema(paying_document())).encode(), "refused (schema): inputs.participants[0]"),
        ("inputs", b"{", "refused: inputs: not JSON"),
        ("bundle", b"{", "refused: bundle: not JSON"),
        ("manifest", b'{"a": 1.0}', "refused: manifest: float literal"),
        ("bundle", b'{"software": {"version": "1"}}', "refused: bundle.software.commit: None is not a commit"),
        ("bundle", b"[]", "refused: bundle.software: is missing"),
    ],
    ids=["inputs-schema", "inputs-json", "bundle-json", "manifest-float", "no-commit", "not-an-object"],
)
def test_refused_files_exit_2_naming_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str, content: bytes, message: str
) -> None:
    files = dict(zip(("inputs", "bundle", "manifest"), published(tmp_path), strict=True))
    files[target].write_bytes(content)
    assert recompute(files["inputs"], files["bundle"], files["manifest"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(message), captured.err


def test_inputs_scored_but_not_payable_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs, bundle, manifest = published(tmp_path)
    doc = json.loads(inputs.read_text())
    doc["parameters"]["epoch_budget"] = "9" * 78  # the inputs' schema allows it; a uint256 does not
    write(inputs, doc)
    assert recompute(inputs, bundle, manifest) == 2
    assert capsys.readouterr().err == (
        "refused: inputs: the recomputed bundle has no manifest: bundle.parameters.epoch_budget: "
        "does not fit in a uint256\n"
    )


def test_a_missing_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs, bundle, _ = published(tmp_path)
    assert recompute(inputs, bundle, tmp_path / "absent.json") == 2
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.slow
def test_the_commands_run_as_a_stranger_would_run_them(tmp_path: Path) -> None:
    """Through `python -m payouts.audit` without Django: score, manifest, then recompute; then a forged amount."""
    inputs = write(tmp_path / "inputs.json", paying_document())
    scored = run_cli("score", "--inputs", inputs, "--out", tmp_path / "pub")
    assert scored.returncode == 0, scored.stderr
    built = run_cli("manifest", "--bundle", tmp_path / "pub" / "bundle.json", "--out", tmp_path / "pub")
    assert built.returncode == 0, built.stderr
    manifest = tmp_path / "pub" / "manifest.json"
    assert built.stdout == hashlib.sha256(manifest.read_bytes()).hexdigest() + "\n"
    args = ("recompute", "--inputs", inputs, "--bundle", tmp_path / "pub" / "bundle.json", "--manifest", manifest)
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == [f"bundle {scored.stdout.strip()}", f"manifest {built.stdout.strip()}"]
    rewrite(manifest, lambda m: m["leaves"][0].update(amount="1"))
    forged = run_cli(*args)
    assert forged.returncode == 1
    assert forged.stderr.startswith("differs: manifest.leaves[0].amount: recomputed ")


@pytest.mark.parametrize(
    ("recomputed", "given", "expected"),
    [
        ({"a": [1, 2]}, {"a": [1, 2]}, None),
        ({"a": [1, 2]}, {"a": [1]}, "x.a[1]: recomputed 2, given (absent)"),
        ({"a": [1]}, {"a": [1, {"b": 1}]}, 'x.a[1]: recomputed (absent), given {"b": 1}'),
        ({"a": 1}, {"a": True}, "x.a: recomputed 1, given true"),
        ({"a": {"b": "1"}, "c": 1}, {"a": {"b": "2"}, "c": 2}, 'x.a.b: recomputed "1", given "2"'),
        ({"a": None}, {"a": {}}, "x.a: recomputed null, given {}"),
        ({"a": "y" * 200}, {"a": "z"}, f'x.a: recomputed "{"y" * 118}…, given "z"'),
    ],
    ids=["equal", "shorter", "longer", "bool-for-int", "first-in-order", "kind", "long-value"],
)
def test_the_first_difference_is_found_in_document_order(recomputed: Any, given: Any, expected: str | None) -> None:
    found = first_difference(recomputed, given, root="x")
    assert (found.describe() if found is not None else None) == expected
