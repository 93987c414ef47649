"""Dependency checks behind /readyz, the admin status page and the `mrmarket_dependency_up` metric.

A registry of named checks: the core registers its own here (database, Redis, broker, channel layer, chain RPC,
worker and beat heartbeats, queue); each app registers its own from `AppConfig.ready()` through its
`health.py`. Each check is bounded by HEALTHCHECK_TIMEOUT_SECONDS and returns a CheckResult instead of raising, so one
slow or broken dependency never hides the state of the others.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection, connections
from prometheus_client import Gauge

from mrmarket import heartbeats
from mrmarket.celery_app import app
from mrmarket.config import redact_url
from mrmarket.http import outbound_client
from mrmarket.redis import get_redis
from wire.redaction import redact_text

State = Literal["ok", "fail", "not_configured"]

DEPENDENCY_UP = Gauge("mrmarket_dependency_up", "1 when the dependency check passed, else 0", ["check"])


@dataclass(frozen=True)
class CheckResult:
    name: str
    state: State
    detail: str
    checked_at: datetime
    required: bool = False

    @property
    def ok(self) -> bool:
        # A dependency that is not configured fails only when it is required.
        return self.state == "ok" or (self.state == "not_configured" and not self.required)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        data["checked_at"] = self.checked_at.isoformat()
        return data


def _now() -> datetime:
    return datetime.now(tz=UTC)


def check_timeout() -> float:
    """The bound on one check (HEALTHCHECK_TIMEOUT_SECONDS), for the checks of every app."""
    return float(settings.HEALTHCHECK_TIMEOUT_SECONDS)


_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


def _origin_only(match: re.Match[str]) -> str:
    """A URL cut to scheme://host[:port]: providers put API keys in paths and queries (and passwords in the
    userinfo), and an error text quotes the whole URL."""
    try:
        parts = urlsplit(match.group(0))
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "[url]"
    return f"{parts.scheme}://{host}{port}/…" if host else "[url]"


def error_text(exc: BaseException) -> str:
    """An exception as one short line for a check's detail: its type, then its first line with every URL cut
    to its origin and every registered secret masked."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = redact_text(_URL.sub(_origin_only, text))
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


def check_database() -> tuple[State, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok", f"{connection.vendor} reachable"


def check_redis() -> tuple[State, str]:
    get_redis(timeout=check_timeout()).ping()
    return "ok", "PING answered"


def check_broker() -> tuple[State, str]:
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=max(1, round(check_timeout())))
    return "ok", f"connected to {redact_url(settings.CELERY_BROKER_URL).split('@')[-1]}"


def check_channel_layer() -> tuple[State, str]:
    layer = get_channel_layer()
    if layer is None:
        return "fail", "no channel layer configured"

    async def roundtrip() -> None:
        channel = await layer.new_channel(prefix="health")
        marker = uuid.uuid4().hex
        await layer.send(channel, {"type": "health.ping", "marker": marker})
        message = await asyncio.wait_for(layer.receive(channel), timeout=check_timeout())
        if message.get("marker") != marker:
            raise RuntimeError("channel layer returned another message")

    async_to_sync(roundtrip)()
    return "ok", "send/receive round trip"


def check_chain_rpc() -> tuple[State, str]:
    url = settings.CHAIN_RPC_URL
    if not url:
        return "not_configured", "CHAIN_RPC_URL is not set"
    with outbound_client(timeout=check_timeout()) as client:
        response = client.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
    response.raise_for_status()
    payload = response.json()
    if "result" not in payload:
        return "fail", f"eth_chainId returned an error: {payload.get('error')}"
    return "ok", f"chain id {int(payload['result'], 16)}"


def check_workers() -> tuple[State, str]:
    now = _now()
    workers = [b for b in heartbeats.all_heartbeats() if b.component.startswith("worker:")]
    fresh = [b for b in workers if b.is_fresh(now)]
    if fresh:
        youngest = min(b.age(now).total_seconds() for b in fresh)
        return "ok", f"{len(fresh)} alive, last heartbeat {youngest:.0f}s ago"
    if workers:
        return "fail", f"no heartbeat for {min(b.age(now).total_seconds() for b in workers):.0f}s"
    return "fail", "no worker heartbeat yet"


def shards_alive(prefix: str, what: str) -> tuple[State, str]:
    """Every shard of a sharded service (heartbeat components `prefix` + `K/N`) seen recently is alive; `what`
    names the service in the detail."""
    now = _now()
    shards = [b for b in heartbeats.all_heartbeats() if b.component.startswith(prefix)]
    if not shards:
        return "fail", f"no {what} heartbeat yet"
    stale = [b for b in shards if not b.is_fresh(now)]
    if stale:
        names = ", ".join(f"{b.component} {b.age(now).total_seconds():.0f}s ago" for b in stale)
        return "fail", f"{what} shard(s) silent: {names}"
    youngest = min(b.age(now).total_seconds() for b in shards)
    return "ok", f"{len(shards)} shard(s) alive, last heartbeat {youngest:.0f}s ago"


def check_beat() -> tuple[State, str]:
    now = _now()
    beat = next((b for b in heartbeats.all_heartbeats() if b.component == "beat"), None)
    if beat is None:
        return "fail", "no beat heartbeat yet"
    age = beat.age(now).total_seconds()
    return ("ok" if beat.is_fresh(now) else "fail"), f"last heartbeat {age:.0f}s ago"


def queue_depth() -> int:
    # kombu's Redis transport keeps a queue as lists: the plain name plus one per priority step.
    r = get_redis(timeout=check_timeout())
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    names = [queue, *(f"{queue}\x06\x16{p}" for p in range(1, 10))]
    total = 0
    for name in names:
        total += int(r.llen(name))  # type: ignore[arg-type]  # the sync client returns int
    return total


def check_queue() -> tuple[State, str]:
    if not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        return "not_configured", "queue depth is read from Redis brokers only"
    return "ok", f"{queue_depth()} task(s) waiting in {settings.CELERY_TASK_DEFAULT_QUEUE!r}"


Check = Callable[[], tuple[State, str]]

# The registry: the core's own checks below, each app's from its AppConfig.ready() (`<app>/health.py`).
CHECKS: dict[str, Check] = {}
# Checks that only read our own database run on the caller's connection (and see its transaction).
IN_CALLER_THREAD: set[str] = set()


def register(name: str, check: Check, *, in_caller_thread: bool = False) -> None:
    """Add one check under `name`. A check reads and reports, it never writes to the database (a heartbeat it
    reads is written by the component it checks); tests/core/test_health_registry.py holds every check to it."""
    if CHECKS.get(name, check) is not check:
        raise ValueError(f"health check {name!r} is already registered")
    CHECKS[name] = check
    if in_caller_thread:
        IN_CALLER_THREAD.add(name)


register("database", check_database, in_caller_thread=True)
register("redis", check_redis)
register("broker", check_broker)
register("channel_layer", check_channel_layer)
register("chain_rpc", check_chain_rpc)
register("workers", check_workers)
register("beat", check_beat)
register("queue", check_queue)

READYZ_CHECKS = ("database", "redis", "broker", "channel_layer", "chain_rpc", "workers", "beat")


_readyz_lock = threading.Lock()
_readyz_cache: tuple[float, tuple[str, ...], list[CheckResult]] | None = None


def readyz_results() -> list[CheckResult]:
    """The /readyz checks, run at most once per READYZ_CACHE_SECONDS: the endpoint is public, and a burst of
    anonymous requests must not become a burst of connections to every dependency. One run at a time; callers
    that arrive meanwhile wait for it and share its answer."""
    global _readyz_cache
    ttl = float(settings.READYZ_CACHE_SECONDS)
    required = tuple(settings.READYZ_REQUIRED)
    with _readyz_lock:
        cached = _readyz_cache
        if cached is not None and cached[1] == required and time.monotonic() - cached[0] < ttl:
            return cached[2]
        results = run_checks(READYZ_CHECKS)
        _readyz_cache = (time.monotonic(), required, results)
        return results


def run_check(name: str) -> CheckResult:
    required = name in settings.READYZ_REQUIRED
    try:
        state, detail = CHECKS[name]()
    except Exception as exc:  # a health check reports failures, it never raises them
        state, detail = "fail", error_text(exc)
    # Every detail, not just an exception's: no password or registered secret reaches a page or a log.
    result = CheckResult(name=name, state=state, detail=redact_text(detail), checked_at=_now(), required=required)
    DEPENDENCY_UP.labels(check=name).set(1 if result.state == "ok" else 0)
    return result


def _run_in_thread(name: str) -> CheckResult:
    try:
        return run_check(name)
    finally:
        connections.close_all()  # this thread's connections must not outlive it


def run_checks(names: Iterable[str] = READYZ_CHECKS) -> list[CheckResult]:
    """Run checks concurrently; the ones that only read our database run in the caller's thread."""
    names = list(names)
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise KeyError(f"unknown health checks: {', '.join(unknown)}")
    others = [n for n in names if n not in IN_CALLER_THREAD]
    with ThreadPoolExecutor(max_workers=max(1, len(others))) as pool:
        futures = {n: pool.submit(_run_in_thread, n) for n in others}
        results = {n: f.result() for n, f in futures.items()}
    for name in names:
        if name in IN_CALLER_THREAD:
            results[name] = run_check(name)
    return [results[n] for n in names]
