"""The executor process's runtime settings (executor/runtime.py), checked in a fresh interpreter: they are
process-wide, and the test process must keep its own."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import asyncio, gc, json
from executor import runtime
runtime.configure()
print(json.dumps({
    "thresholds": gc.get_threshold(),
    "frozen": gc.get_freeze_count(),
    "policy": type(asyncio.get_event_loop_policy()).__module__,
}))
"""


def test_the_process_runs_uvloop_with_the_long_lived_heap_frozen() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60)
    seen = json.loads(out.stdout)
    assert tuple(seen["thresholds"]) == (50_000, 20, 100)
    assert seen["frozen"] > 1_000, "the objects alive at start (modules, classes) are out of the collector's sight"
    assert seen["policy"].startswith("uvloop")
