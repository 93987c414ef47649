"""Write `requirements/executor.lock`: every wheel of the executor image (direct and transitive) pinned by
SHA-256, for linux x86_64 CPython 3.11. Run by `make executor-lock` (needs the package index, nothing else).

    python executor/lock_wheels.py            # rewrite the lock
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "any")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "-r", str(ROOT / "requirements/executor.txt")]
        command += ["-d", tmp, "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp"]
        for platform in PLATFORMS:
            command += ["--platform", platform]
        subprocess.run(command, check=True, cwd=ROOT)  # noqa: S603
        lines = [
            "# Hash-pinned wheels of the executor image (linux x86_64, CPython 3.11): `make executor-lock` rewrites",
            "# this from requirements/executor.txt. The Dockerfile installs with --require-hashes --only-binary=:all:.",
            "",
        ]
        for wheel in sorted(Path(tmp).iterdir()):
            name, version = wheel.name.split("-")[:2]
            digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
            lines.append(f"{name.replace('_', '-').lower()}=={version} \\\n    --hash=sha256:{digest}")
    (ROOT / "requirements/executor.lock").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
