"""How the executor's process runs, for every job in it: one event loop, uvloop's, and a garbage collector tuned
for latency (docs/executor-streams.md, "Hot path").

ccxt allocates a few dicts per message, so CPython's cyclic collector, on its default thresholds, runs a young
collection every 700 allocations and a full one over the whole heap (every job's books, orders and ccxt's
caches) every hundred of those: pauses of tens of milliseconds in the middle of a requote. Objects that live as
long as the process (modules, ccxt's classes and market tables) are moved out of the collector's sight once
(`gc.freeze`), and the thresholds are raised so that young collections are rarer and full ones far rarer.
Reference counting still frees almost everything at once; only reference cycles wait for a collection.
"""

from __future__ import annotations

import asyncio
import gc

import uvloop

GC_THRESHOLDS = (50_000, 20, 100)
_tuned = False


def settled() -> None:
    """A job started: its ccxt client, the market tables it loaded and its state live as long as the job. Out of
    the collector's sight too, so that a full collection never walks every job's heap in the middle of a requote.
    They are still freed by reference counting when the job ends; only a reference cycle alive at this moment would
    outlive it, uncollected. A no-op unless `configure` tuned the collector."""
    if _tuned:
        gc.freeze()


def configure(*, loop: str = "uvloop", tune_gc: bool = True) -> None:
    """Before the event loop starts: the loop policy and the collector's settings."""
    if loop == "uvloop":
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    global _tuned
    if tune_gc:
        _tuned = True
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
