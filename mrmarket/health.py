"""Dependency checks behind /readyz, the admin status page and the `mrmarket_dependency_up` metric.

Each check is bounded by HEALTHCHECK_TIMEOUT_SECONDS and returns a CheckResult instead of raising, so one
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

import httpx
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection, connections
from prometheus_client import Gauge

from mrmarket import heartbeats
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


def _timeout() -> float:
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


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = redact_text(_URL.sub(_origin_only, text))
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


def check_database() -> tuple[State, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok", f"{connection.vendor} reachable"


def check_redis() -> tuple[State, str]:
    get_redis(timeout=_timeout()).ping()
    return "ok", "PING answered"


def check_broker() -> tuple[State, str]:
    from mrmarket.celery_app import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=max(1, round(_timeout())))
    return "ok", f"connected to {redact_url(settings.CELERY_BROKER_URL).split('@')[-1]}"


def check_channel_layer() -> tuple[State, str]:
    layer = get_channel_layer()
    if layer is None:
        return "fail", "no channel layer configured"

    async def roundtrip() -> None:
        channel = await layer.new_channel(prefix="health")
        marker = uuid.uuid4().hex
        await layer.send(channel, {"type": "health.ping", "marker": marker})
        message = await asyncio.wait_for(layer.receive(channel), timeout=_timeout())
        if message.get("marker") != marker:
            raise RuntimeError("channel layer returned another message")

    async_to_sync(roundtrip)()
    return "ok", "send/receive round trip"


def check_chain_rpc() -> tuple[State, str]:
    url = settings.CHAIN_RPC_URL
    if not url:
        return "not_configured", "CHAIN_RPC_URL is not set"
    with outbound_client(timeout=_timeout()) as client:
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


def check_beat() -> tuple[State, str]:
    now = _now()
    beat = next((b for b in heartbeats.all_heartbeats() if b.component == "beat"), None)
    if beat is None:
        return "fail", "no beat heartbeat yet"
    age = beat.age(now).total_seconds()
    return ("ok" if beat.is_fresh(now) else "fail"), f"last heartbeat {age:.0f}s ago"


def queue_depth() -> int:
    # kombu's Redis transport keeps a queue as lists: the plain name plus one per priority step.
    r = get_redis(timeout=_timeout())
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


def check_executors() -> tuple[State, str]:
    """Configured executors, those in the registry (not revoked) and, when EasyEnclave is set, those it lists."""
    from attestation.easyenclave import EasyEnclaveError, discovered_executor_urls
    from attestation.models import ExecutorRecord

    known = ExecutorRecord.objects.exclude(state=ExecutorRecord.State.REVOKED).values_list("url", flat=True)
    try:
        discovered = discovered_executor_urls()
    except EasyEnclaveError as exc:
        return "fail", f"discovery refused: {exc.message}"
    urls = list(dict.fromkeys([*settings.EXECUTOR_URLS, *known, *discovered]))
    if not urls:
        return "not_configured", "no executors yet"
    failures = []
    with outbound_client(timeout=_timeout()) as client:
        for url in urls:
            try:
                client.get(url.rstrip("/") + "/v1/health").raise_for_status()
            except httpx.HTTPError as exc:
                failures.append(f"{url}: {_error_text(exc)}")
    if failures:
        return "fail", "; ".join(failures)
    return "ok", f"{len(urls)} executor(s) healthy"


def check_exchanges() -> tuple[State, str]:
    """Each exchange the deployment trades on answers its public clock through ccxt (no key needed)."""
    from execution.exchanges import exchange_client
    from execution.models import ExchangeAccount

    exchanges = sorted(
        set(settings.EXCHANGE_API_URLS)
        | set(ExchangeAccount.objects.filter(status=ExchangeAccount.Status.ACTIVE).values_list("exchange", flat=True))
    )
    if not exchanges:
        return "not_configured", "no exchange configured or enrolled yet"
    failures = []
    for exchange_id in exchanges:
        try:
            client = exchange_client(exchange_id)
            client.timeout = int(_timeout() * 1000)
            client.fetch_time()
        except Exception as exc:  # any failure of one exchange is reported, not raised
            failures.append(f"{exchange_id}: {_error_text(exc)}")
    if failures:
        return "fail", "; ".join(failures)
    return "ok", f"{', '.join(exchanges)} answering"


def check_alerts() -> tuple[State, str]:
    from execution.models import Alert

    open_alerts = Alert.objects.filter(resolved_at__isnull=True)
    count = open_alerts.count()
    if not count:
        return "ok", "no open alerts"
    latest = open_alerts.order_by("-id").first()
    return "fail", f"{count} open alert(s); latest: {latest.message if latest else ''}"


def check_easyenclave() -> tuple[State, str]:
    if not settings.EASYENCLAVE_URL:
        return "not_configured", "EasyEnclave is not configured yet"
    from attestation.easyenclave import EasyEnclaveClient, EasyEnclaveError

    try:
        verdict = EasyEnclaveClient().ensure_verified()
    except EasyEnclaveError as exc:
        return "fail", exc.message
    attested = "hardware-attested" if verdict.hardware_attested else "NOT hardware-attested (dev root)"
    return "ok", f"control plane verified ({attested}, MRTD {verdict.mrtd[:16]}…, TCB {verdict.tcb_status})"


CHECKS: dict[str, Callable[[], tuple[State, str]]] = {
    "database": check_database,
    "redis": check_redis,
    "broker": check_broker,
    "channel_layer": check_channel_layer,
    "chain_rpc": check_chain_rpc,
    "workers": check_workers,
    "beat": check_beat,
    "queue": check_queue,
    "executors": check_executors,
    "exchanges": check_exchanges,
    "alerts": check_alerts,
    "easyenclave": check_easyenclave,
}
# Checks that only read our own database run on the caller's connection (and see its transaction).
IN_CALLER_THREAD = frozenset({"database", "alerts"})
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
        state, detail = "fail", _error_text(exc)
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
