"""Solidity sources (`contracts/src/`) and their committed compiled artifacts (`contracts/artifacts/`).

`python -m contracts.build` recompiles with the pinned compiler and settings; `--check` fails when the
committed artifacts differ from a fresh compile. `load_artifact(name)` reads one for deployment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


class UnknownArtifact(LookupError):
    pass


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str  # 0x-prefixed creation code
    deployed_bytecode: str  # 0x-prefixed runtime code


def available() -> list[str]:
    return sorted(p.stem for p in ARTIFACTS.glob("*.json"))


def load_artifact(name: str) -> Artifact:
    path = ARTIFACTS / f"{name}.json"
    if not path.is_file():
        raise UnknownArtifact(f"no compiled contract {name!r}; available: {', '.join(available()) or 'none'}")
    data = json.loads(path.read_text())
    return Artifact(
        name=data["contractName"],
        abi=data["abi"],
        bytecode=data["bytecode"],
        deployed_bytecode=data["deployedBytecode"],
    )
