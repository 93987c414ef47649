"""Benchmarks: each bench_*.py prints `BENCH <name> <value> <unit>` lines (make bench)."""
