"""The mutation run over the money and trust code (docs/reliability.md, section 8): `make mutation`.

    python -m tests.reliability.mutation [--sample] [--max-children N] [--json FILE] [--keep]

mutmut (configured in pyproject's `[tool.mutmut]`: which files are mutated, which pure unit tests run) is run in a
fresh copy of the checkout under a temporary directory, so its `mutants/` tree and caches never touch the worktree
and a second run starts from nothing. Afterwards every mutant's verdict is read from mutmut's own records and
printed per mutated file: mutants, killed, timeout, survived, no test, score = (killed + timeout) / mutants.

A mutant that survives (or that no selected test reaches) must be listed in `tests/reliability/equivalent_mutants.txt`
with the mutated line and the reason it cannot change behaviour; the run exits 1 when one is not, or when a listed
entry no longer matches its mutant (the code moved: look again). `--sample` runs the deterministic CI sample (the
first mutants of every function, `SAMPLE_PATTERNS`) instead of all of them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EQUIVALENTS = Path(__file__).with_name("equivalent_mutants.txt")
MUTMUT = Path(sys.executable).with_name("mutmut")
# mutmut numbers each function's mutants from 1; the sample takes the first three of every function (names match
# exactly, so `_1` does not also pick `_10`..`_19`).
SAMPLE_PATTERNS = ("*__mutmut_1", "*__mutmut_2", "*__mutmut_3")
# The exit codes mutmut records, as it names them (mutmut/stats.py).
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 36: "timeout", 24: "timeout"}
STATUS |= {-24: "timeout", 152: "timeout", 255: "timeout", 34: "skipped", 37: "type check"}
UNKILLED = ("survived", "no tests", "suspicious", "segfault")
# Money and trust code measured but whose survivors are not all triaged yet (docs/reliability.md, section 8): with
# `--pending` they are mutated too, with their tests, and their survivors are reported like the others'.
# None today: every module measured is in the gate.
PENDING: dict[str, tuple[str, ...]] = {}


@dataclass
class FileResult:
    path: str
    statuses: Counter[str] = field(default_factory=Counter)

    @property
    def mutants(self) -> int:
        return sum(self.statuses.values())

    @property
    def score(self) -> float:
        done = self.statuses["killed"] + self.statuses["timeout"]
        return 100.0 * done / self.mutants if self.mutants else 100.0


def copy_checkout(dest: Path, shared: Path) -> None:
    """The tracked and the new (not ignored) files of the checkout: what a clean checkout plus this change holds."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in listed:
        rel = raw.decode()
        src = ROOT / rel
        if not rel or rel in (".venv", "node_modules") or rel.startswith("mutants/") or not src.is_file():
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    # The Merkle test checks our tree against OpenZeppelin's JavaScript library (node_modules, not copied).
    (dest / "mutants").mkdir()
    if (ROOT / "node_modules").exists():
        (dest / "mutants" / "node_modules").symlink_to((ROOT / "node_modules").resolve())
    # The quote tests read the real TDX quote from `<checkout>/../shared/fixtures/tdx` (test_quote.py).
    if shared.exists():
        (dest / "shared").symlink_to(shared.resolve())


def only_mutate(root: Path = ROOT) -> list[str]:
    import tomllib

    return list(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["mutmut"]["only_mutate"])


def add_pending(work: Path, only: list[str]) -> None:
    """The copy's `[tool.mutmut]` with the PENDING files and their tests added (or just `only` of them)."""
    path = work / "pyproject.toml"
    text = path.read_text()
    pending = {f: t for f, t in PENDING.items() if not only or f in only}
    files = "".join(f'    "{f}",\n' for f in pending)
    tests = "".join(f'    "{t}",\n' for t in sorted({t for listed in pending.values() for t in listed}))
    if only:  # just these files: the gated ones not named are left out
        start = text.index("only_mutate = [\n")
        end = text.index("]\n", start)
        kept = "".join(f'    "{f}",\n' for f in only_mutate() if f in only)
        text = text[:start] + "only_mutate = [\n" + kept + text[end:]
    text = text.replace("only_mutate = [\n", "only_mutate = [\n" + files, 1)
    selection = "pytest_add_cli_args_test_selection = [\n"
    text = text.replace(selection, selection + tests, 1)
    path.write_text(text)


def read_results(work: Path, names: list[str] | None) -> tuple[dict[str, FileResult], dict[str, tuple[str, str]]]:
    """Per file, the verdicts; and every unkilled mutant's (file, status)."""
    results: dict[str, FileResult] = {}
    unkilled: dict[str, tuple[str, str]] = {}
    for path in only_mutate(work):
        meta = json.loads((work / "mutants" / (path + ".meta")).read_text())
        result = results.setdefault(path, FileResult(path))
        for name, code in meta["exit_code_by_key"].items():
            if names is not None and name not in names:
                continue
            status = STATUS.get(code, "suspicious") if code is not None else "not checked"
            result.statuses[status] += 1
            if status in UNKILLED or status == "not checked":
                unkilled[name] = (path, status)
    return results, unkilled


def mutated_line(work: Path, name: str) -> str:
    """The `+` line of mutmut's diff of this mutant, stripped: what the entry in the list must quote."""
    diff = subprocess.run([str(MUTMUT), "show", name], cwd=work, capture_output=True, text=True, check=True).stdout
    added = [line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    return " / ".join(added) if added else "(line removed)"


def load_equivalents() -> dict[str, tuple[str, str]]:
    """`name | mutated line | why it is equivalent`, one a line; `#` starts a comment line."""
    entries: dict[str, tuple[str, str]] = {}
    for number, line in enumerate(EQUIVALENTS.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [part.strip() for part in line.split(" | ")]
        if len(parts) != 3 or not all(parts):
            raise SystemExit(f"{EQUIVALENTS.name}:{number}: expected `name | mutated line | reason`")
        entries[parts[0]] = (parts[1], parts[2])
    return entries


def sampled_names(work: Path) -> list[str]:
    import fnmatch

    names = []
    for path in only_mutate(work):
        meta = json.loads((work / "mutants" / (path + ".meta")).read_text())
        names += [n for n in meta["exit_code_by_key"] if any(fnmatch.fnmatchcase(n, p) for p in SAMPLE_PATTERNS)]
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", action="store_true", help="the CI sample: the first 3 mutants of every function")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--json", type=Path, help="write the per-file figures and the unexplained survivors here")
    parser.add_argument("--pending", action="store_true", help="mutate the PENDING files too (not yet triaged)")
    parser.add_argument("--only", nargs="+", default=[], help="mutate just these files (gated or pending)")
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared", help="where ../shared is (fixtures)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy (to `mutmut show` in it)")
    args = parser.parse_args(argv)

    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="mrmarket-mutation-"))
    env = dict(os.environ)
    # The selected tests are pure: nothing may reach a Redis (an unreachable one fails loudly) or the embedded one.
    env.setdefault("REDIS_URL", "redis://127.0.0.1:1/0")
    env["DJANGO_SETTINGS_MODULE"] = "mrmarket.settings.test"
    env.pop("MUTANT_UNDER_TEST", None)
    try:
        copy_checkout(work, args.shared)
        if args.pending or args.only:
            add_pending(work, args.only)
        command = [str(MUTMUT), "run", "--max-children", str(args.max_children)]
        if args.sample:
            command += list(SAMPLE_PATTERNS)
        print("mutation:", " ".join(command), "in", work, flush=True)
        run = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, check=False)
        if run.returncode != 0 or not (work / "mutants" / "mutmut-stats.json").exists():
            print(run.stdout[-5000:], run.stderr[-5000:], sep="\n")
            print(f"mutation: mutmut failed (exit {run.returncode})")
            return 2
        names = sampled_names(work) if args.sample else None
        results, unkilled = read_results(work, names)
        equivalents = load_equivalents()

        print(f"{'file':44} {'mutants':>7} {'killed':>6} {'timeout':>7} {'survived':>8} {'no test':>7} {'score':>7}")
        for result in results.values():
            s = result.statuses
            print(
                f"{result.path:44} {result.mutants:7} {s['killed']:6} {s['timeout']:7} {s['survived']:8} "
                f"{s['no tests']:7} {result.score:6.1f}%"
            )
        unexplained = []
        for name, (path, status) in sorted(unkilled.items()):
            line = mutated_line(work, name)
            listed = equivalents.get(name)
            if listed is not None and listed[0] == line:
                print(f"  equivalent {name}: {line}")
                continue
            why = "not listed" if listed is None else f"listed as `{listed[0]}`, now `{line}`"
            unexplained.append({"name": name, "file": path, "status": status, "line": line, "why": why})
            print(f"  UNEXPLAINED {status} {name} | {line} ({why})")
        elapsed = time.monotonic() - started
        print(f"mutation: {len(unkilled)} not killed, {len(unexplained)} unexplained, {elapsed:.0f} s")
        if args.json:
            figures = {r.path: {"mutants": r.mutants, **r.statuses, "score": r.score} for r in results.values()}
            args.json.write_text(json.dumps({"files": figures, "unexplained": unexplained, "seconds": elapsed}))
        return 1 if unexplained else 0
    finally:
        if args.keep:
            print("mutation: kept", work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
