"""The executor image's recipe (reviewed, not built: no Docker engine runs here): base pinned by digest, every
wheel pinned by hash and covering the executor's requirements, nothing but the executor and the wire
contract copied in, no secret in the image."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "executor" / "Dockerfile").read_text()
LOCK = (ROOT / "requirements" / "executor.lock").read_text()


def _names(text: str) -> set[str]:
    return {
        m.group(1).lower().replace("_", "-") for m in re.finditer(r"^([A-Za-z0-9_.-]+)(?:\[[^]]*\])?==", text, re.M)
    }


def test_base_image_is_pinned_by_digest() -> None:
    bases = re.findall(r"^ARG BASE_IMAGE=(\S+)$", DOCKERFILE, re.M)
    assert len(bases) == 1
    assert re.fullmatch(r"[\w./:-]+@sha256:[0-9a-f]{64}", bases[0])
    assert all(line.split()[1] == "${BASE_IMAGE}" for line in DOCKERFILE.splitlines() if line.startswith("FROM "))


def test_every_wheel_is_hash_pinned_and_the_lock_covers_the_requirements() -> None:
    entries = re.findall(r"^(\S+)==(\S+) \\\n\s+--hash=sha256:([0-9a-f]{64})$", LOCK, re.M)
    assert len(entries) == len(_names(LOCK))
    wanted = _names((ROOT / "requirements" / "executor.txt").read_text())
    assert wanted <= _names(LOCK), wanted - _names(LOCK)
    assert "--require-hashes --only-binary=:all:" in DOCKERFILE


def test_only_the_executor_and_the_wire_contract_are_copied_and_nothing_secret() -> None:
    copies = re.findall(r"^COPY (?!--from)(\S+)", DOCKERFILE, re.M)
    assert sorted(copies) == ["executor", "requirements/executor.lock", "wire"]
    assert "SOURCE_DATE_EPOCH" in DOCKERFILE
    for line in DOCKERFILE.splitlines():
        if line.startswith(("ENV", "ARG")) or line.startswith("    "):
            assert not re.search(r"(SECRET|TOKEN|PASSWORD|PRIVATE|API_KEY)\w*=", line), line
