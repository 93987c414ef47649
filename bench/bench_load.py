"""Load: the API under concurrent users, report ingestion with several executors, and the close of an epoch with
1,000 participants, on PostgreSQL (a throwaway database of the bench's own) and Redis, everything on loopback.

- `api_p50_under_load_ms`, `api_p99_under_load_ms` and `api_rps_under_load` — locust (headless, its own
  process) drives `USERS` users for `SECONDS` against the Django app served by uvicorn (`manage.py serve`, one
  worker, production-like settings: DEBUG off, database connections closed after each request as Django requires
  under ASGI — `BENCH_LOAD_DB_CONN_MAX_AGE=60` serves with the default instead), with the mix of
  `bench/load_locustfile.py`: the campaign list and detail, the public campaign page (depth) and stability page,
  the epochs list, and the operator's MM orders and `/me` with an API token. Percentiles are locust's, over every
  request of the run; `api_failed_requests_under_load` counts non-2xx answers (expected 0).
- `report_ingestion_reports_per_second_<N>_executors_<M>_jobs` — `N` real executors (each its own process, the
  executor app as `python -m executor` serves it) run `M` MM orders' jobs quoting the exchange simulator (its own
  process); each job signs a report a second (the report window shortened in the executors' processes only, so a
  backlog builds in seconds, not minutes). Once each job holds `BACKLOG` reports the jobs stop, and one Django
  worker drains them through `execution.jobs.mm_order_pull_reports`, the beat's path: fetched over HTTP,
  signature, hash chain and spec checked, stored once, fills booked in the ledger. Reports stored over the drain's
  wall time.
- `epoch_close_<P>_participants_seconds` — see `close_epoch`.

Sizes come from the environment (`BENCH_LOAD_USERS`, `_SECONDS`, `_EXECUTORS`, `_JOBS`, `_BACKLOG`,
`_PARTICIPANTS`; `BENCH_LOAD_PARTS=api,ingestion,close` picks parts) so the smoke test runs it small. The
PostgreSQL server is the one `DATABASE_URL` names when it is PostgreSQL, else `BENCH_POSTGRES_URL` (default the
local server as user postgres); the bench creates its own database there and drops it at the end.
`BENCH_PROFILE=DIR` writes a cProfile of each measured window of this process (`python -m pstats FILE`).

Prints `BENCH <name> <value> <unit>` lines.
"""

from __future__ import annotations

import contextlib
import cProfile
import csv
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mrmarket.settings.test")
os.environ.setdefault("LOG_LEVEL", "WARNING")  # measure the work, not the terminal

PARTS = tuple(p.strip() for p in os.environ.get("BENCH_LOAD_PARTS", "api,ingestion,close").split(",") if p.strip())
USERS = int(os.environ.get("BENCH_LOAD_USERS", "25"))  # each in-flight request holds a connection of a shared server
SECONDS = int(os.environ.get("BENCH_LOAD_SECONDS", "30"))
EXECUTORS = int(os.environ.get("BENCH_LOAD_EXECUTORS", "4"))
JOBS = int(os.environ.get("BENCH_LOAD_JOBS", "20"))
BACKLOG = int(os.environ.get("BENCH_LOAD_BACKLOG", "30"))  # reports each job holds before the drain
PARTICIPANTS = int(os.environ.get("BENCH_LOAD_PARTICIPANTS", "1000"))
SEED = 20261203
CAMPAIGNS = 30
OPERATOR_ORDERS = 20


def bench(name: str, value: float, unit: str, digits: int = 2) -> None:
    print(f"BENCH {name} {value:.{digits}f} {unit}", flush=True)


def note(text: str) -> None:
    print(f"# {text}", flush=True)


@contextlib.contextmanager
def profiled(name: str) -> Iterator[None]:
    """A cProfile of the block when BENCH_PROFILE names a directory."""
    where = os.environ.get("BENCH_PROFILE")
    if not where:
        yield
        return
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        Path(where).mkdir(parents=True, exist_ok=True)
        profile.dump_stats(str(Path(where) / f"{name}.prof"))


# ---------------------------------------------------------------------------------------------- the environment


def postgres_server_url() -> str:
    current = os.environ.get("DATABASE_URL", "")
    if current.startswith(("postgres://", "postgresql://")):
        return current
    return os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@contextlib.contextmanager
def own_database() -> Iterator[str]:
    """A fresh database on the PostgreSQL server, dropped at the end (its connections closed first)."""
    import psycopg

    server = postgres_server_url()
    name = f"bench_load_{os.getpid()}"
    admin = with_database(server, "postgres")
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        raise SystemExit(f"bench_load needs PostgreSQL (DATABASE_URL or BENCH_POSTGRES_URL): {exc}") from None
    try:
        yield with_database(server, name)
    finally:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def own_redis() -> Iterator[str]:
    from devnet.redis import EmbeddedRedis

    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    redis = EmbeddedRedis().start()
    try:
        yield redis.url
    finally:
        redis.stop()


class Child:
    """A child process in its own process group, stopped (SIGTERM, then SIGKILL) at the end."""

    def __init__(self, argv: list[str], *, env: dict[str, str] | None = None, stdout: Any = None) -> None:
        # Its stderr goes to a file, never to a pipe nobody reads (a full pipe would stall it mid-measurement).
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=stdout if stdout is not None else self.log,
            stderr=self.log,
            text=True,
            start_new_session=True,
        )

    def stderr(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def readline(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(20)
        if self.process.stdin is not None:
            self.process.stdin.close()
        if self.process.stdout is not None:
            self.process.stdout.close()


def wait_until(predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench_load: {what} did not happen within {timeout:.0f} s")
        time.sleep(0.1)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def main() -> None:
    with own_database() as database_url, own_redis() as redis_url:
        os.environ["DATABASE_URL"] = database_url
        os.environ["REDIS_URL"] = redis_url
        os.environ["REDIS_KEY_PREFIX"] = f"bench-load-{os.getpid()}"  # nothing of another process's cache is read
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connections

        call_command("migrate", verbosity=0)
        try:
            if "api" in PARTS:
                api_under_load()
            if "ingestion" in PARTS:
                report_ingestion()
            if "close" in PARTS:
                close_epoch()
        finally:
            connections.close_all()


# ---------------------------------------------------------------------------------------------- the API under load


def seed_api() -> dict[str, Any]:
    """Campaigns (with their metadata and two hours of the recorder's books each), one operator with MM orders and
    an API token; what the locustfile asks for."""
    from django.utils import timezone
    from knox.models import AuthToken

    from campaigns.domain.metadata import metadata_hash
    from campaigns.domain.templates import build_metadata
    from campaigns.models import CampaignMetadata
    from execution.domain import mm_order as mm
    from execution.models import ExchangeAccount, MMOrder
    from mrmarket.roles import Role
    from payouts.models import BookSnapshot
    from tests.campaigns.test_api import TOKEN, CampaignFactory
    from tests.factories import user_with

    rng = random.Random(SEED)
    now = timezone.now().replace(microsecond=0)
    start = now - timedelta(hours=2)
    end = start + timedelta(days=7)
    campaigns = []
    for i in range(CAMPAIGNS):
        metadata = build_metadata(
            template_id="stable_depth",
            chain_id=31337,
            reward_token={"address": TOKEN, "symbol": "USDT", "decimals": 6},
            exchange="binance",
            pair="MMT/USDT",
            start=int(start.timestamp()),
            end=int(end.timestamp()),
            budget=10**12 + i,
            epoch_seconds=86_400,
            title=f"Load {i}",
        )
        digest = "0x" + metadata_hash(metadata).hex()
        CampaignMetadata.objects.get_or_create(hash=digest, defaults={"document": metadata})
        campaign = CampaignFactory.create(
            start=start, end=end, budget=10**12 + i, metadata_hash=digest, epoch_seconds=86_400
        )
        sample_ms = int(metadata["scoring"]["sample_seconds"]) * 1000
        t0 = int(start.timestamp()) * 1000
        books = []
        for k in range(0, 2 * 3600 * 1000 // sample_ms):
            mid = 10_000 + rng.randint(-20, 20)
            book = {
                "bids": [[f"0.{mid - 3 - j:05d}", str(rng.randint(100, 5000))] for j in range(10)],
                "asks": [[f"0.{mid + 3 + j:05d}", str(rng.randint(100, 5000))] for j in range(10)],
            }
            t = t0 + k * sample_ms
            books.append(BookSnapshot(campaign=campaign, t_ms=t, book=book, exchange_ts_ms=t, recorded_ms=t + 5))
        BookSnapshot.objects.bulk_create(books)
        campaigns.append(f"{campaign.chain_id}/{campaign.address}")
    operator = user_with(Role.OPERATOR)
    account = ExchangeAccount.objects.create(owner=operator, exchange="binance", label="mm", role="trading")
    for i in range(OPERATOR_ORDERS):
        MMOrder.objects.create(
            owner=operator,
            exchange_account=account,
            symbol="MMT/USDT",
            funding_asset="USDT",
            funding_amount=(1_000 + i) * 10**6,
            state=mm.State.RUNNING if i % 2 else mm.State.SETTLED,
        )
    _, token = AuthToken.objects.create(operator)
    return {"campaigns": campaigns, "token": token}


def locust_stats(prefix: Path) -> list[dict[str, str]]:
    with open(f"{prefix}_stats.csv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def api_in_process(targets: dict[str, Any]) -> None:
    """What one request of each kind costs alone, in this process through Django's test client (no server, no
    contention): its time and its database queries — where the profile of the load points."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    auth = {"Authorization": f"Token {targets['token']}"}
    c = targets["campaigns"][0]
    paths: tuple[tuple[str, dict[str, str]], ...] = (
        ("/api/v1/campaigns/", {}),
        (f"/api/v1/campaigns/{c}", {}),
        (f"/campaigns/{c}/", {}),
        (f"/campaigns/{c}/stability", {}),
        (f"/api/v1/payouts/{c}/epochs", {}),
        ("/api/v1/execution/mm-orders", auth),
        ("/api/v1/me", auth),
    )
    for path, headers in paths:
        client.get(path, headers=headers)  # warm
        times = []
        for _ in range(5):
            with CaptureQueriesContext(connection) as queries:
                t0 = time.perf_counter()
                response = client.get(path, headers=headers)
                times.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, (path, response.status_code)
        note(f"alone, in-process: {path}: {min(times):.1f} ms, {len(queries.captured_queries)} queries")


def api_under_load() -> None:
    from django.db import transaction

    from devnet.ports import free_port

    with transaction.atomic():
        targets = seed_api()
    api_in_process(targets)
    with tempfile.TemporaryDirectory() as work:
        target_file = Path(work) / "targets.json"
        target_file.write_text(json.dumps(targets))
        port = free_port()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "mrmarket.settings.dev",
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            "CHAIN_RPC_URL": "",  # the pages say the chain is unreachable at once, rather than time out on one
            # Under ASGI every request runs in a thread of its own: a connection kept past the request (the default
            # 60 s) is never reused and piles up until PostgreSQL refuses more ("too many clients already"). Django
            # says to close them under ASGI; the bench does, unless told otherwise (docs/reliability.md, section 6).
            "DB_CONN_MAX_AGE": os.environ.get("BENCH_LOAD_DB_CONN_MAX_AGE", "0"),
        }
        server = Child([sys.executable, "manage.py", "serve", "--port", str(port)], env=env)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until(lambda: answers(base + "/healthz"), timeout=60, what="the API server answering")
            for path in ("/api/v1/campaigns/", f"/campaigns/{targets['campaigns'][0]}/"):
                answers(base + path)  # warm-up: templates compiled, connections open
            prefix = Path(work) / "locust"
            locust = Child(
                [
                    str(Path(sys.executable).parent / "locust"),
                    "-f",
                    str(ROOT / "bench" / "load_locustfile.py"),
                    "--headless",
                    "--users",
                    str(USERS),
                    "--spawn-rate",
                    str(max(1, USERS // 2)),
                    "--run-time",
                    f"{SECONDS}s",
                    "--host",
                    base,
                    "--csv",
                    str(prefix),
                    "--only-summary",
                    "--loglevel",
                    "WARNING",
                    "--stop-timeout",
                    "5",
                ],
                env={**os.environ, "LOAD_TARGETS": str(target_file), "LOAD_SEED": str(SEED)},
            )
            try:
                code = locust.process.wait(SECONDS + 120)
            finally:
                locust.stop()
            if code not in (0, 1):  # 1: some requests failed; counted below
                raise SystemExit(f"locust exited {code}: {locust.stderr()[-2000:]}")
            rows = locust_stats(prefix)
            with open(f"{prefix}_failures.csv", encoding="utf-8", newline="") as f:
                failures = list(csv.DictReader(f))
        finally:
            server.stop()
        for failure in failures:
            note(f"failed: {failure['Name']}: {failure['Occurrences']} x {failure['Error'][:200]}")
        if failures:
            note("the server's log ends: " + " | ".join(server.stderr().strip().splitlines()[-5:])[-1500:])
    total = next(r for r in rows if r["Name"] == "Aggregated")
    for row in rows:
        if row["Name"] != "Aggregated":
            note(
                f"{row['Name']}: {row['Request Count']} requests, p50 {row['50%']} ms, p99 {row['99%']} ms, "
                f"{row['Failure Count']} failed"
            )
    note(f"{USERS} users for {SECONDS} s, {total['Request Count']} requests")
    bench("api_p50_under_load_ms", float(total["50%"]), "ms", 0)
    bench("api_p99_under_load_ms", float(total["99%"]), "ms", 0)
    bench("api_rps_under_load", float(total["Requests/s"]), "req/s", 1)
    bench("api_failed_requests_under_load", int(total["Failure Count"]), "requests", 0)


# ---------------------------------------------------------------------------------------------- report ingestion


REPORT_MS = 1000  # each job signs a report a second (the bench's executors only: bench/load_children.py)
SAMPLE_MS = 100  # ten book samples a report, as a job on 10 s reports sampling every second carries
BALANCES = {"MMT": "3000", "USDT": "1500"}


def start_child(*args: str) -> tuple[Child, str]:
    child = Child([sys.executable, str(ROOT / "bench" / "load_children.py"), *args], stdout=subprocess.PIPE)
    url = child.readline()
    if not url.startswith("http://"):
        child.stop()
        raise SystemExit(f"bench_load: {args[0]} did not start: {child.stderr()[-2000:]}")
    return child, url


def admin(base_url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        base_url + path, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


def ingestion_orders(exchange_url: str, executor_urls: list[str]) -> list[int]:
    """`JOBS` MM orders, each on its own simulator account (enrolled, its holdings booked), started through the job
    service on the executors in turn (`settings.EXECUTOR_URLS` one at a time, so the jobs spread evenly)."""
    from decimal import Decimal

    from django.conf import settings

    from execution import accounts, jobs
    from execution.domain import mm_order as mm
    from mrmarket.exchanges.credentials import ExchangeCredentials
    from mrmarket.roles import Role
    from tests.factories import user_with
    from tests.fixtures.orders import deposited_order

    settings.EXCHANGE_API_URLS = {"binance": exchange_url}
    settings.CUSTODY_ASSETS = {
        "USDT": {"token": "0x" + "ab" * 20, "decimals": 6},
        "MMT": {"token": "0x" + "cd" * 20, "decimals": 18},
    }
    decimals = {"MMT": 18, "USDT": 6}
    ids = []
    for i in range(JOBS):
        key = admin(exchange_url, "/_devnet/accounts", {"permissions": ["read", "trade"], "balances": BALANCES})
        account = accounts.exchange_account_enrol(
            owner_id=user_with(Role.OPERATOR).pk,
            exchange="binance",
            label=f"mm{i}",
            role="trading",
            credentials=ExchangeCredentials(key["api_key"], key["secret"]),
        )
        holdings = {asset: int(Decimal(amount) * 10 ** decimals[asset]) for asset, amount in BALANCES.items()}
        order = deposited_order(account, funding_amount=1_000 * 10**6, holdings=holdings)
        settings.EXECUTOR_URLS = [executor_urls[i % len(executor_urls)]]
        started = jobs.mm_order_start_job(order_id=order.pk)
        if started.state != mm.State.RUNNING:
            raise SystemExit(f"bench_load: order {order.pk} did not start ({started.state})")
        ids.append(order.pk)
    settings.EXECUTOR_URLS = list(executor_urls)
    return ids


def latest_sequence(order: Any) -> int:
    from execution.executor_client import ExecutorClient

    with ExecutorClient(order.executor_url) as client:
        latest = client.reports(order.job_id, after=None, limit=1)["latest_sequence"]
    return -1 if latest is None else int(latest)


def report_ingestion() -> None:
    from execution import jobs, provisioning, reports
    from execution.executor_client import ExecutorClient
    from execution.models import ExecutionReport, MMOrder
    from mrmarket.controller import controller_key
    from tests.execution.gate_stand_in import GateStandIn

    # The executors here run no TD: their keys pass provisioning and ingestion by the tests' stand-in for the
    # trust gate (tests/execution/gate_stand_in.py). Everything after the gate is the product's path.
    stand_in = GateStandIn()
    provisioning.attested_identity = stand_in.identity
    reports.signing_key_attested = stand_in.signing_key_attested
    children: list[Child] = []
    try:
        exchange, exchange_url = start_child("exchange")
        children.append(exchange)
        executor_urls = []
        for _ in range(EXECUTORS):
            child, url = start_child(
                "executor", controller_key().public_hex, str(REPORT_MS), str(SAMPLE_MS), exchange_url, str(JOBS)
            )
            children.append(child)
            executor_urls.append(url)
        ids = ingestion_orders(exchange_url, executor_urls)
        orders = list(MMOrder.objects.filter(pk__in=ids))
        wait_until(
            lambda: all(latest_sequence(o) + 1 >= BACKLOG for o in orders),
            timeout=BACKLOG * REPORT_MS / 1000 + 120,
            what=f"{BACKLOG} reports from every job",
        )
        # The jobs stop (each signs its last window) so that the drain measures Django's side only: on this one
        # machine, running executors would take CPU from it that real ones, elsewhere, do not.
        for order in orders:
            with ExecutorClient(order.executor_url) as client:
                client.stop(order.job_id)

        def stopped(order: Any) -> bool:
            with ExecutorClient(order.executor_url) as client:
                return client.status(order.job_id)["state"] in ("stopped", "failed")

        wait_until(lambda: all(stopped(o) for o in orders), timeout=60, what="every job stopping")
        targets = {o.pk: latest_sequence(o) + 1 for o in orders}
        pulled = dict.fromkeys(targets, 0)
        with profiled("ingestion"):
            t0 = time.perf_counter()
            while pending := sorted(k for k, n in targets.items() if pulled[k] < n):
                for order_id in pending:  # one worker's beat: every order's page (100 reports at most) in turn
                    pulled[order_id] += jobs.mm_order_pull_reports(order_id=order_id)
            elapsed = time.perf_counter() - t0
        stored = ExecutionReport.objects.filter(order_id__in=ids).count()
        if stored != sum(targets.values()):
            raise SystemExit(f"bench_load: stored {stored} reports, the executors hold {sum(targets.values())}")
        fills = sum(ExecutionReport.objects.filter(order_id__in=ids).values_list("fills", flat=True))
    finally:
        for child in reversed(children):
            child.stop()
    note(
        f"{EXECUTORS} executors, {JOBS} jobs: {stored} reports ({fills} fills) drained in {elapsed:.2f} s by one worker"
    )
    bench(f"report_ingestion_reports_per_second_{EXECUTORS}_executors_{JOBS}_jobs", stored / elapsed, "reports/s", 1)


# ---------------------------------------------------------------------------------------------- the epoch close


EPOCH_SECONDS = 600  # the campaign's epochs: ten minutes, sampled every 10 s (60 sample times)
SAMPLE_SECONDS = 10
REPORT_WINDOW_MS = 60_000  # each job's reports: one a minute (the default interval), a book sample every 10 s
BUDGET = 10**12  # 1,000,000 USDT (6 decimals) over two epochs


def timed(module: Any, name: str, spent: dict[str, float]) -> None:
    """Add the time every call of `module.name` takes to `spent[name]` (the bench's own wrapper, nothing changed)."""
    real = getattr(module, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - t0

    setattr(module, name, wrapper)


def close_campaign(w3: Any, start: int) -> Any:
    """A funded campaign of two epochs from `start`, created through the factory on Anvil, its metadata stored and
    the factory indexed (as tests/payouts/test_closing.py opens one)."""
    from campaigns.domain.metadata import metadata_hash
    from campaigns.domain.templates import build_metadata
    from campaigns.indexer import chain_index
    from campaigns.models import Campaign, CampaignMetadata
    from devnet.chain import deploy_dev_token, dev_accounts, mint, token
    from devnet.protocol import CampaignParams, call, create_campaign, deploy_factory, factory

    deployer, creator, recorder = dev_accounts()[:3]
    tok = deploy_dev_token(w3, sender=deployer)
    mint(w3, tok, creator.address, BUDGET, sender=deployer)
    factory_address = deploy_factory(w3, sender=deployer)
    end = start + 2 * EPOCH_SECONDS
    metadata = build_metadata(
        template_id="stable_depth",
        chain_id=w3.eth.chain_id,
        reward_token={"address": tok, "symbol": "USDT", "decimals": 6},
        exchange="binance",
        pair="MMT/USDT",
        start=start,
        end=end,
        budget=BUDGET,
        epoch_seconds=EPOCH_SECONDS,
        scoring_overrides={"sample_seconds": SAMPLE_SECONDS},
        dispute_window_seconds=3600,
    )
    digest = metadata_hash(metadata)
    CampaignMetadata.objects.get_or_create(hash="0x" + digest.hex(), defaults={"document": metadata})
    params = CampaignParams(
        tok, recorder.address, recorder.address, recorder.address, start, end, EPOCH_SECONDS, 3600, BUDGET, 0, digest
    )
    salt = b"\x00" * 32
    predicted = factory(w3, factory_address).functions.predictCampaignAddress(params.as_tuple(), creator.address, salt)
    call(w3, token(w3, tok).functions.approve(predicted.call(), BUDGET), creator)
    address, _ = create_campaign(w3, factory_address, params, creator=creator, salt=salt, fund_now=True)
    chain_index(w3=w3, factory=factory_address, confirmations=0)
    return Campaign.objects.get(address=address.lower())


def close_books(campaign: Any, accounts: list[dict[str, Any]], start: int) -> None:
    """The recorder's book at every sample time of epoch 0: every participant's orders, at their levels."""
    from decimal import Decimal

    from payouts.models import BookSnapshot

    levels: dict[str, dict[str, Decimal]] = {"buy": {}, "sell": {}}
    for account in accounts:
        for o in account["orders"]:
            side = levels[o["side"]]
            side[o["price"]] = side.get(o["price"], Decimal(0)) + Decimal(o["amount"])
    book = {
        "bids": [[p, str(a)] for p, a in sorted(levels["buy"].items(), key=lambda kv: -Decimal(kv[0]))],
        "asks": [[p, str(a)] for p, a in sorted(levels["sell"].items(), key=lambda kv: Decimal(kv[0]))],
    }
    rows = []
    for k in range(EPOCH_SECONDS // SAMPLE_SECONDS):
        t_ms = (start + k * SAMPLE_SECONDS) * 1000
        rows.append(
            BookSnapshot(
                campaign=campaign, t_ms=t_ms, book=book, exchange_ts_ms=t_ms, recorded_ms=t_ms + 5, source="ws"
            )
        )
    BookSnapshot.objects.bulk_create(rows)


def job_reports(job_id: str, spec_digest: str, orders: list[dict[str, Any]], start: int) -> list[Any]:
    """The signed report chain a job quoting `orders` from their placement to the epoch's end sends: a report a
    minute, each with its book samples, the placements in the window they happened in (tests/wire/builders.py's
    report, filled in)."""
    from tests.wire.builders import KEY, report
    from wire.reports import SignedReport, sign_report

    chain: list[SignedReport] = []
    placed_ms = max(o["time_ms"] for o in orders)
    for sequence in range(EPOCH_SECONDS * 1000 // REPORT_WINDOW_MS):
        w0 = start * 1000 + sequence * REPORT_WINDOW_MS
        doc = report(sequence, prev_digest=chain[-1].digest if chain else None, job_id=job_id)
        doc.update(
            window_start_ms=w0,
            window_end_ms=w0 + REPORT_WINDOW_MS,
            job_spec_digest=spec_digest,
            symbol="MMT/USDT",
            fills=[],
            order_events=[
                {
                    "ts_ms": o["time_ms"] + 2,
                    "exchange_ts_ms": o["time_ms"],
                    "event": "placed",
                    "client_order_id": o["client_order_id"],
                    "exchange_order_id": o["id"],
                    "side": o["side"],
                    "price": o["price"],
                    "amount": o["amount"],
                    "reason": None,
                }
                for o in orders
                if w0 <= o["time_ms"] + 2 < w0 + REPORT_WINDOW_MS
            ],
            book_samples=[
                {
                    "ts_ms": t,
                    "best_bid": "0.499",
                    "best_ask": "0.501",
                    "resting": [
                        {
                            "client_order_id": o["client_order_id"],
                            "side": o["side"],
                            "price": o["price"],
                            "remaining": o["amount"],
                            "placed_at_ms": o["time_ms"],
                        }
                        for o in orders
                        if t >= placed_ms
                    ],
                }
                for t in range(w0, w0 + REPORT_WINDOW_MS, SAMPLE_SECONDS * 1000)
            ],
        )
        chain.append(sign_report(doc, KEY))
    return chain


def close_participants(campaign: Any, accounts: list[dict[str, Any]], start: int) -> None:
    """Each account a participant: a user, the exchange account (its key enrolled), an MM order running its job,
    the order linked to the participant's reward address, and the job's verified reports stored (as ingestion
    stores them)."""
    from django.utils import timezone
    from eth_account import Account

    from execution import accounts as exchange_accounts
    from execution.domain import mm_order as mm
    from execution.models import ExchangeAccount, ExecutionReport, MMOrder
    from mrmarket.exchanges.credentials import ExchangeCredentials
    from mrmarket.roles import Role
    from payouts.models import Participant, ParticipantOrder
    from tests.factories import user_with
    from tests.wire.builders import KEY
    from wire.canonical import canonical_bytes, digest

    first = accounts[0]
    permissions = exchange_accounts.probe_permissions(
        "binance", ExchangeCredentials(first["api_key"], first["secret"])
    )  # every account's key has the same permissions: asked once
    rows: list[ExecutionReport] = []
    for i, a in enumerate(accounts):
        owner = user_with(Role.OPERATOR)
        account = exchange_accounts.exchange_account_store(
            owner_id=owner.pk,
            exchange="binance",
            label="mm",
            role=ExchangeAccount.Role.TRADING,
            credentials=ExchangeCredentials(a["api_key"], a["secret"]),
            permissions=permissions,
        )
        spec = {"job_id": f"bench-close-{i}", "symbol": "MMT/USDT"}
        order = MMOrder.objects.create(
            owner=owner,
            exchange_account=account,
            symbol="MMT/USDT",
            funding_asset="USDT",
            funding_amount=1_000 * 10**6,
            state=mm.State.RUNNING,
            job_id=spec["job_id"],
            job_spec=spec,
            executor_url="http://executor.bench",
            executor_signing_key=KEY.public_hex,
        )
        participant = Participant.objects.create(
            campaign=campaign,
            reward_address=Account.from_key((i + 1).to_bytes(32, "big")).address.lower(),
            owner=owner,
            joined_at=timezone.now(),
            siwe_message="bench",
            siwe_signature="bench",
        )
        ParticipantOrder.objects.create(participant=participant, mm_order=order)
        for signed in job_reports(order.job_id, digest(spec), a["orders"], start):
            r = signed.report
            rows.append(
                ExecutionReport(
                    order=order,
                    job_id=r["job_id"],
                    sequence=r["sequence"],
                    digest=signed.digest,
                    prev_digest=r["prev_digest"] or "",
                    signing_key=r["executor"]["signing_key"],
                    window_start_ms=r["window_start_ms"],
                    window_end_ms=r["window_end_ms"],
                    envelope=canonical_bytes(signed.as_json()).decode(),
                    fills=0,
                )
            )
        if len(rows) >= 2000:
            ExecutionReport.objects.bulk_create(rows)
            rows = []
    ExecutionReport.objects.bulk_create(rows)


def close_epoch() -> None:
    """`epoch_close_<P>_participants_seconds`: the close of one epoch of a campaign with `P` participants, end to
    end as the beat runs it (`payouts.closing.epoch_close_advance` until the row is recorded): the inputs built from
    the database (the recorder's 60 books, each participant's 10 stored reports of 60 s read and normalized), every
    participant's orders, fills and link keys cross-checked with the exchange simulator on its own key (its own
    process, P accounts each resting a bid and an ask), the inputs and bundle scored and stored, the payout
    manifest built and stored, and `recordResults` signed, sent and mined on Anvil."""
    from datetime import UTC, datetime

    from django.conf import settings
    from django.db import transaction
    from django.test.utils import override_settings
    from web3 import Web3

    from devnet.chain import Anvil, deploy_dev_token, dev_accounts
    from devnet.protocol import travel_to
    from payouts import closing, crosscheck
    from payouts.domain.epochs import CloseState
    from payouts.selectors import ARTIFACT_STORAGE, epoch_artifact

    with tempfile.TemporaryDirectory() as work, Anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 120}))
        deployer, recorder, hot = dev_accounts()[0], dev_accounts()[2], dev_accounts()[9]
        usdt = deploy_dev_token(w3, sender=deployer)
        mmt = deploy_dev_token(w3, sender=deployer, name="Mr.Market Token", symbol="MMT", decimals=18)
        exchange, exchange_url = start_child(
            "close-exchange",
            str(PARTICIPANTS),
            str(SEED),
            node.url,
            json.dumps({"USDT": usdt, "MMT": mmt}),
            hot.private_key,
        )
        try:
            accounts = json.loads(exchange.readline())
            # override_settings, not assignment: it tells the storage handler, which may already hold the artifact
            # storage's default backend (the API part's pages open it).
            overrides = override_settings(
                CHAIN_RPC_URL=node.url,
                RECORDING_ORACLE_PRIVATE_KEY=recorder.private_key,
                REPUTATION_ORACLE_PRIVATE_KEY=recorder.private_key,
                RECORDING_ORACLE_RETIRED_KEYS=[],
                ORACLE_REPORT_GRACE_SECONDS=0,
                # Anvil mines only on a transaction: recordResults, the close's last one, would never be buried
                # CHAIN_CONFIRMATIONS deep (its settling is the chaos matrix's, not this bench's, to measure).
                CHAIN_CONFIRMATIONS=1,
                ORACLE_PUBLIC_BASE_URL="https://oracle.bench",
                EXCHANGE_API_URLS={"binance": exchange_url},
                STORAGES={
                    **settings.STORAGES,
                    ARTIFACT_STORAGE: {
                        "BACKEND": "django.core.files.storage.FileSystemStorage",
                        "OPTIONS": {"location": str(Path(work) / "oracle")},
                    },
                },
            )
            overrides.enable()
            # The epoch started before the first order rested; it ends (on the chain's clock too) before the close.
            start = min(o["time_ms"] for a in accounts for o in a["orders"]) // 1000 - 30
            campaign = close_campaign(w3, start)
            close_books(campaign, accounts, start)
            t0 = time.perf_counter()
            with profiled("epoch_close_seed"), transaction.atomic():
                close_participants(campaign, accounts, start)
            note(f"{PARTICIPANTS} participants seeded in {time.perf_counter() - t0:.1f} s")
            end = start + EPOCH_SECONDS
            travel_to(w3, end + 1)
            close = closing.epoch_close_ensure(campaign=campaign, epoch=0)
            spent: dict[str, float] = {}
            timed(closing, "build_inputs", spent)
            timed(closing, "scored_documents", spent)
            timed(closing, "_record", spent)
            for name in ("confirm_orders", "confirm_fills", "link_keys"):
                timed(crosscheck, name, spent)
            at = datetime.fromtimestamp(end + 1, tz=UTC)
            with profiled("epoch_close"):
                t0 = time.perf_counter()
                for _ in range(50):  # a pass per beat; with Anvil mining at once, the first pass usually finishes
                    close = closing.epoch_close_advance(close_id=close.pk, worker="bench", now=at)
                    if close.state in (CloseState.RECORDED, CloseState.FAILED):
                        break
                elapsed = time.perf_counter() - t0
            if close.state != CloseState.RECORDED:
                raise SystemExit(
                    f"bench_load: the close ended {close.state}: {close.failure_reason or close.last_error}"
                )
            bundle = json.loads(epoch_artifact(close=close, kind="bundle") or b"{}")
            overrides.disable()
        finally:
            exchange.stop()
    paid = sum(1 for p in bundle.get("participants", []) if int(p["amount"]) > 0)
    if close.participants != PARTICIPANTS or paid != PARTICIPANTS:
        raise SystemExit(
            f"bench_load: {close.participants} participants scored, {paid} paid, of {PARTICIPANTS} ({close.notes[:3]})"
        )
    check = sum(spent.get(n, 0.0) for n in ("confirm_orders", "confirm_fills", "link_keys"))
    note(
        f"epoch close of {PARTICIPANTS} participants: inputs {spent['build_inputs']:.2f} s (of which the exchange "
        f"cross-check {check:.2f} s), scoring and bundle {spent['scored_documents']:.2f} s, recordResults "
        f"{spent['_record']:.2f} s"
    )
    bench(f"epoch_close_{PARTICIPANTS}_participants_seconds", elapsed, "s")


if __name__ == "__main__":
    main()
