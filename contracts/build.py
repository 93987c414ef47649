"""Compile `contracts/src/*.sol` with the pinned solcjs (npm `solc`, offline, via contracts/solc-compile.cjs) and
pinned settings.

    python -m contracts.build            # write contracts/artifacts/<Name>.json
    python -m contracts.build --check    # exit 1, naming the contracts, when the committed artifacts differ

Settings are part of the artifact; `bytecodeHash: none` keeps file paths and metadata out of the bytecode, so
a compile on any machine gives the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "contracts" / "src"
ARTIFACTS = ROOT / "contracts" / "artifacts"
SOLCJS = ROOT / "node_modules" / ".bin" / "solcjs"
WRAPPER = ROOT / "contracts" / "solc-compile.cjs"
SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "viaIR": False,
    "metadata": {"bytecodeHash": "none"},
    # metadata is requested only to learn each contract's own sources; it is not embedded (bytecodeHash none).
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "metadata"]}},
}


class CompileError(RuntimeError):
    pass


def compiler_version() -> str:
    out = subprocess.run(
        ["node", "-e", "process.stdout.write(require('solc').version())"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.strip()


def _resolve(source: str) -> Path:
    for base in (ROOT, ROOT / "node_modules"):
        if (base / source).is_file():
            return base / source
    raise CompileError(f"source {source} not found")


def compile_all() -> dict[str, str]:
    """Artifact file name → its exact JSON text, for every contract defined in contracts/src."""
    if not SOLCJS.exists():
        raise CompileError("node_modules/.bin/solcjs is missing: run `npm ci`")
    sources = {str(p.relative_to(ROOT)): {"content": p.read_text()} for p in sorted(SRC.glob("*.sol"))}
    request = {"language": "Solidity", "sources": sources, "settings": SETTINGS}
    with tempfile.TemporaryDirectory() as tmp:
        out_file = Path(tmp) / "out.json"
        proc = subprocess.run(  # noqa: S603 - fixed argv
            ["node", str(WRAPPER), str(out_file)],  # noqa: S607
            input=json.dumps(request),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0 or not out_file.exists():
            raise CompileError(f"solc failed: {proc.stderr.strip() or proc.stdout.strip()}")
        output = json.loads(out_file.read_text())
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise CompileError("\n".join(e.get("formattedMessage", e.get("message", "")) for e in errors))
    version = compiler_version()
    artifacts: dict[str, str] = {}
    for source in sources:
        for name, compiled in sorted(output["contracts"].get(source, {}).items()):
            bytecode = compiled["evm"]["bytecode"]["object"]
            if not bytecode:
                continue  # interfaces and abstract contracts
            document = {
                "contractName": name,
                "sourceName": source,
                "abi": compiled["abi"],
                "bytecode": "0x" + bytecode,
                "deployedBytecode": "0x" + compiled["evm"]["deployedBytecode"]["object"],
                "compiler": version,
                "settings": SETTINGS,
                "sourceHashes": {
                    name: hashlib.sha256(_resolve(name).read_bytes()).hexdigest()
                    for name in sorted(json.loads(compiled["metadata"])["sources"])
                },
            }
            artifacts[f"{name}.json"] = json.dumps(document, indent=2, sort_keys=True) + "\n"
    return artifacts


def check(artifacts: dict[str, str]) -> list[str]:
    differing = [
        name
        for name, text in artifacts.items()
        if not (ARTIFACTS / name).is_file() or (ARTIFACTS / name).read_text() != text
    ]
    stale = [p.name for p in ARTIFACTS.glob("*.json") if p.name not in artifacts]
    return sorted(differing + stale)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m contracts.build")
    parser.add_argument("--check", action="store_true", help="compare with the committed artifacts")
    args = parser.parse_args(argv)
    try:
        artifacts = compile_all()
    except CompileError as exc:
        print(f"compile error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        problems = check(artifacts)
        if problems:
            print(f"contract artifacts differ from a fresh compile: {', '.join(problems)} (run make contracts)")
            return 1
        print(f"contract artifacts match a fresh compile ({len(artifacts)} contracts)")
        return 0
    ARTIFACTS.mkdir(exist_ok=True)
    for stale in ARTIFACTS.glob("*.json"):
        if stale.name not in artifacts:
            stale.unlink()
    for name, text in artifacts.items():
        (ARTIFACTS / name).write_text(text)
    print(f"wrote {len(artifacts)} artifact(s) to {ARTIFACTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
