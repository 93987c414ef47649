"""`bench/bench_load.py` end to end at toy sizes: it runs from a clean start (its own database, its own server,
executor and exchange processes, Anvil), prints every figure it promises as a `BENCH` line, the values are sane
(no request failed, percentiles ordered, every report drained) and its database is dropped at the end. No figure
is held to a time: the machine's speed is not what this checks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from devnet.chain import ANVIL
from tests.plugins.require import require, require_postgresql

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^BENCH (\S+) (-?\d+(?:\.\d+)?) (\S+)$")

pytestmark = [pytest.mark.slow, pytest.mark.chain, pytest.mark.timeout(600)]

SIZES = {
    "BENCH_LOAD_USERS": "4",
    "BENCH_LOAD_SECONDS": "3",
    "BENCH_LOAD_EXECUTORS": "2",
    "BENCH_LOAD_JOBS": "3",
    "BENCH_LOAD_BACKLOG": "3",
    "BENCH_LOAD_PARTICIPANTS": "3",
}


def database_exists(server: str, name: str) -> bool:
    with psycopg.connect(server, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def test_the_load_bench_prints_every_figure_with_sane_values() -> None:
    require_postgresql("the bench runs on PostgreSQL")
    require("Anvil (node_modules/.bin/anvil)", ANVIL.exists(), "npm ci")
    parts = urlsplit(os.environ["DATABASE_URL"])  # PostgreSQL: the bench makes its own database on that server
    server = urlunsplit((parts.scheme, parts.netloc, "/postgres", "", ""))
    bench = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "bench_load.py")],
        cwd=ROOT,
        env={**os.environ, **SIZES, "DJANGO_SETTINGS_MODULE": "mrmarket.settings.test"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = bench.communicate(timeout=540)
    finally:
        bench.kill()
    assert bench.returncode == 0, stdout[-3000:] + stderr[-3000:]
    figures = {}
    for line in stdout.splitlines():
        if line.startswith("BENCH "):
            match = LINE.match(line)
            assert match, f"not a BENCH line: {line!r}"
            name, value, unit = match.groups()
            figures[name] = (float(value), unit)
    assert set(figures) == {
        "api_p50_under_load_ms",
        "api_p99_under_load_ms",
        "api_rps_under_load",
        "api_failed_requests_under_load",
        "report_ingestion_reports_per_second_2_executors_3_jobs",
        "epoch_close_3_participants_seconds",
    }
    p50, p99 = figures["api_p50_under_load_ms"], figures["api_p99_under_load_ms"]
    assert p50[1] == p99[1] == "ms"
    assert 0 < p50[0] <= p99[0]
    assert figures["api_rps_under_load"][0] > 0
    assert figures["api_failed_requests_under_load"] == (0.0, "requests")
    assert figures["report_ingestion_reports_per_second_2_executors_3_jobs"][1] == "reports/s"
    assert figures["report_ingestion_reports_per_second_2_executors_3_jobs"][0] > 0
    assert figures["epoch_close_3_participants_seconds"][1] == "s"
    assert figures["epoch_close_3_participants_seconds"][0] > 0
    # Every report the executors held was stored (the bench refuses otherwise), and the note says how many.
    drained = re.search(r"^# 2 executors, 3 jobs: (\d+) reports", stdout, re.MULTILINE)
    assert drained
    assert int(drained.group(1)) >= 3 * 3
    assert not database_exists(server, f"bench_load_{bench.pid}"), "the bench's database is dropped at the end"
