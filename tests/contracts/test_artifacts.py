"""The committed artifacts are exactly what the pinned compiler makes of the sources."""

from __future__ import annotations

import json

import pytest

from contracts import ARTIFACTS, UnknownArtifact, available, load_artifact
from contracts.build import SETTINGS, SOLCJS, check, compile_all
from tests.plugins.require import requires

pytestmark = requires("solcjs (node_modules)", SOLCJS.exists(), "npm ci")


def test_recompiled_bytecode_matches_the_committed_artifacts() -> None:
    fresh = compile_all()
    assert set(fresh) == {p.name for p in ARTIFACTS.glob("*.json")}
    for name, text in fresh.items():
        committed = json.loads((ARTIFACTS / name).read_text())
        compiled = json.loads(text)
        assert compiled["bytecode"] == committed["bytecode"], name
        assert compiled["deployedBytecode"] == committed["deployedBytecode"], name
        assert compiled["abi"] == committed["abi"], name
    assert check(fresh) == []


def test_artifacts_record_the_pinned_compiler_and_settings() -> None:
    data = json.loads((ARTIFACTS / "DevToken.json").read_text())
    assert data["compiler"].startswith("0.8.28+commit.")
    assert data["settings"] == SETTINGS
    assert "@openzeppelin/contracts/token/ERC20/ERC20.sol" in data["sourceHashes"]


def test_loader() -> None:
    token = load_artifact("DevToken")
    assert token.bytecode.startswith("0x60")
    assert any(item.get("name") == "mint" for item in token.abi)
    assert "DevToken" in available()
    with pytest.raises(UnknownArtifact, match=r"no compiled contract 'Nope'; available: .*DevToken"):
        load_artifact("Nope")
