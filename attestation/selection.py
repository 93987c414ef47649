"""Choosing an executor for a job, behind one interface: `select_executor(candidates)`.

Candidates are executors that are reachable (from `EXECUTOR_URLS` or EasyEnclave discovery). Revoked and
failed executors are never chosen, nor ones the last check could not reach. An executor whose reported orders the
oracle's own book does not show, or whose fills the exchange does not show, beyond the tolerance
(`selectors.Behaviour.deviating`) goes after every other. Among the rest, the one with the most free capacity wins,
ties broken by reputation — least deviation, fewest verification failures, then best uptime (share of scheduled
checks passed), then fewest refused reports, then most accepted reports — and then round-robin, so that with no
information the choice is plain round-robin — one rotation for the whole deployment (a counter in Redis), not one
per worker process: with a rotation per process, every worker's first job after a (re)start went to the same
executor.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import redis

from attestation.models import FULL_UPTIME_PERMILLE, ExecutorRecord
from attestation.selectors import Behaviour, executor_behaviour
from mrmarket.redis import get_redis, key

_turn = itertools.count()  # only when Redis does not answer: routing goes on, rotating within this process


def _next_turn() -> int:
    try:
        turn: int = get_redis().incr(key("executor-selection-turn"))  # type: ignore[assignment]  # sync client
        return turn
    except redis.RedisError:
        return next(_turn)


class NoExecutorAvailable(Exception):
    pass


def select_executor(urls: Sequence[str]) -> str:
    if not urls:
        raise NoExecutorAvailable("no executor is configured or discovered")
    known = {r.url: r for r in ExecutorRecord.objects.filter(url__in=list(urls))}
    usable = [u for u in urls if u not in known or known[u].state not in ("revoked", "failed", "unreachable")]
    if not usable:
        raise NoExecutorAvailable("every executor is revoked, failed its last verification or is unreachable")
    behaviour = executor_behaviour(r.pk for r in known.values())
    offset = _next_turn()
    rotated = [usable[(offset + i) % len(usable)] for i in range(len(usable))]

    def rank(url: str) -> tuple[int, ...]:
        record = known.get(url)
        if record is None:
            return (0, 0, 0, 0, -FULL_UPTIME_PERMILLE, 0, 0)  # nothing known is held against it
        capacity = record.capacity_available if record.capacity_available is not None else 0
        seen = behaviour.get(record.pk, Behaviour())
        return (
            int(seen.deviating),
            -capacity,
            seen.deviation_permille,
            record.verification_failures,
            -record.uptime_permille,
            record.reports_refused,
            -record.reports_accepted,
        )

    return min(rotated, key=rank)  # min is stable: equal ranks keep the round-robin order
