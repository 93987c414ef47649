"""More than one of everything (docs/reliability.md §5): two web processes, two Celery workers, one beat and two
executors on PostgreSQL + Redis, with Anvil (a block a second) and the exchange simulator (a busy market), run
the demo's flow for two orders at once — create and fund through the API, deposit confirmed, job started,
running with reports, stop, withdraw back — while one of each is killed with SIGKILL mid-flow: a web process, a
worker, and the executor running the first order's job (restarted on its port, as its supervisor would: a TD keeps
its jobs in memory only, so the job is lost and the order gets a new one, docs/runbook.md).

Then nothing happened twice: one custody transfer and one exchange deposit per order, at most one exchange
withdrawal per order and asset, no client order id twice on the exchange, every report stored once (the registry
counted each once), every trade on the exchange one ledger entry, the ledger balanced and equal to the chain, and
both orders settled."""

from __future__ import annotations

import itertools
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from django.db import connection
from knox.models import AuthToken
from web3 import Web3

from attestation.models import ExecutorRecord
from devnet.chain import ANVIL, Anvil, token
from devnet.exchange.fixtures import RunningExchange, make_ccxt
from devnet.ports import free_port
from execution import accounts, selectors
from execution.domain.ledger import asset_totals
from execution.models import Alert, CustodyTransfer, ExchangeAccount, ExecutionReport, LedgerTransaction, MMOrder
from mrmarket.celery_app import app as celery_app
from mrmarket.controller import controller_key
from mrmarket.roles import Role
from tests.execution.test_mm_loop_e2e import keys, seed_custody
from tests.execution.test_withdraw_back import on_exchange
from tests.factories import user_with
from tests.plugins.require import require, require_postgresql
from tests.reliability import processes
from tests.reliability.conftest import CUSTODY, USDT
from tests.reliability.processes import Process

pytestmark = [pytest.mark.chain, pytest.mark.slow, pytest.mark.timeout(240)]
STRATEGY = {
    "params": {"bid_spread": "0.001", "ask_spread": "0.001", "order_amount": "200", "levels": 2},
    "report_interval_seconds": 10,
    "sample_seconds": 1,
}


@pytest.fixture(scope="module")
def anvil() -> Iterator[Anvil]:
    require("Anvil (node_modules/.bin/anvil)", ANVIL.exists(), "npm ci")
    with Anvil(block_time=1) as node:  # like a real chain (and the demo): confirmations advance on their own
        yield node


class System:
    """The processes and the settings they share with this test."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.webs = [processes.web(f"web{i}", free_port(), env, logs) for i in (1, 2)]
        self.workers = [processes.worker(f"worker{i}", env, logs) for i in (1, 2)]
        self.beat = processes.beat(env, logs)
        ports = [int(url.rsplit(":", 1)[1]) for url in env["EXECUTOR_URLS"].split(",")]
        self.executors = [processes.executor(f"executor{i}", p, env, logs) for i, p in zip((1, 2), ports, strict=True)]
        self.restarted: list[Process] = []

    def all(self) -> list[Process]:
        return [*self.webs, *self.workers, self.beat, *self.executors, *self.restarted]

    def web_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.webs[index].port}"

    def logs_tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.tail(15)}" for p in self.all())


@pytest.fixture
def system(
    settings, transactional_db: None, tmp_path: Path, anvil: Anvil, sim: RunningExchange, tokens: dict[str, str]
) -> Iterator[System]:
    require_postgresql("the processes share one database")
    custody_assets = {"USDT": {"token": tokens["USDT"], "decimals": 6}, "MMT": {"token": tokens["MMT"], "decimals": 18}}
    executor_urls = [f"http://127.0.0.1:{free_port()}" for _ in range(2)]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mrmarket.settings.test",
        "DATABASE_URL": database_url(connection.settings_dict),
        "MRMARKET_DATA_DIR": str(tmp_path / "data"),
        "PYTHONUNBUFFERED": "1",
        "CHAIN_RPC_URL": anvil.url,
        "CHAIN_CONFIRMATIONS": "2",
        "EXCHANGE_API_URLS": json.dumps({"binance": sim.base_url}),
        "CUSTODY_ASSETS": json.dumps(custody_assets),
        "CUSTODY_PRIVATE_KEY": CUSTODY.private_key,
        "EXECUTOR_URLS": ",".join(executor_urls),
        "EASYENCLAVE_URL": "",
        # Beat's passes, short for a test (the demo's are 5 and 10 s); reconciliation is another test's subject.
        "CHAIN_INDEX_INTERVAL_SECONDS": "1",
        "EXECUTOR_SYNC_SECONDS": "2",
        "RECONCILE_INTERVAL_SECONDS": "3600",
        # The executors: this Django's controller key, the simulator (plain http, so dev mode).
        "EXECUTOR_CONTROLLER_KEY": controller_key().public_hex,
        "EXECUTOR_EXCHANGE_API_URLS": json.dumps({"binance": sim.base_url}),
        "EXECUTOR_DEV": "true",
        "EXECUTOR_TICK_MS": "250",
    }
    settings.CHAIN_RPC_URL = anvil.url
    settings.CHAIN_CONFIRMATIONS = 2
    settings.EXCHANGE_API_URLS = {"binance": sim.base_url}
    settings.CUSTODY_ASSETS = custody_assets
    settings.CUSTODY_PRIVATE_KEY = CUSTODY.private_key
    settings.EXECUTOR_URLS = executor_urls
    for url in executor_urls:  # the registry knows the configured executors (their attestation would add them)
        ExecutorRecord.objects.create(url=url)
    logs = tmp_path / "logs"
    logs.mkdir()
    running = System(env, logs)
    try:
        for process in running.all():
            process.start()
        for process in running.all():
            process.wait_ready()
        yield running
    finally:
        processes.stop_all(running.all())


def database_url(db: dict[str, Any]) -> str:
    """The URL of this test's own database (pytest-django's `test_…`), for the processes."""
    password = f":{quote(str(db['PASSWORD']), safe='')}" if db.get("PASSWORD") else ""
    user = quote(str(db.get("USER") or "postgres"), safe="")
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def until(done: Callable[[], bool], system: System, *, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}\n{system.logs_tail()}")
        time.sleep(0.3)


def api(system: System, web: int, token: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    answer = httpx.post(
        f"{system.web_url(web)}/api/v1/execution/{path}",
        json=body,
        headers={"Authorization": f"Token {token}"},
        timeout=20,
    )
    assert answer.status_code in (200, 201, 202), (path, answer.status_code, answer.text)
    result: dict[str, Any] = answer.json()
    return result


def executing(name: str) -> list[str]:
    """The tasks the worker `name` is executing now, by its own answer (Celery's remote control)."""
    active = celery_app.control.inspect(destination=[f"{name}@{socket.gethostname()}"], timeout=1.0).active()
    return [task["name"] for tasks in (active or {}).values() for task in tasks]


def order(pk: int) -> MMOrder:
    return MMOrder.objects.get(pk=pk)


def reported(pk: int, job_id: str) -> bool:
    return ExecutionReport.objects.filter(order_id=pk, job_id=job_id).exists()


def test_two_of_everything_with_one_of_each_killed_mid_flow_does_nothing_twice(
    system: System, w3: Web3, sim: RunningExchange, tokens: dict[str, str]
) -> None:
    seed_custody(w3, tokens)
    operators = [user_with(Role.OPERATOR) for _ in range(2)]
    tokens_of = [AuthToken.objects.create(operator)[1] for operator in operators]
    pairs = [keys(sim, operator.pk) for operator in operators]
    created: list[int] = []
    for web, (trading, _) in enumerate(pairs):  # one order through each web process
        api_token = tokens_of[web]
        body = {
            "exchange_account_id": trading.pk,
            "symbol": "MMT/USDT",
            "funding_asset": "USDT",
            "funding_amount": str(1_000 * USDT),
            "strategy": STRATEGY,
        }
        pk = int(api(system, web, api_token, "mm-orders", body)["id"])
        api(system, web, api_token, f"mm-orders/{pk}/fund")
        created.append(pk)
    first = created[0]

    until(
        lambda: all(order(pk).state == "running" and reported(pk, order(pk).job_id) for pk in created),
        system,
        what="both jobs running with a stored report",
        timeout=120,
    )
    # One job on each executor, whichever worker routed each: one rotation for the deployment.
    assert {order(pk).executor_url for pk in created} == set(system.env["EXECUTOR_URLS"].split(","))
    lost_job = order(first).job_id
    victim = next(e for e in system.executors if order(first).executor_url.endswith(f":{e.port}"))
    # One of each, mid-flow: web 1, worker 1 (seen executing a task), and the executor of the first order's job.
    system.webs[0].kill()
    until(lambda: bool(executing("worker1")), system, what="worker 1 to be seen executing a task")
    system.workers[0].kill()
    victim.kill()
    restarted = processes.executor(f"{victim.name}-restarted", int(victim.port or 0), system.env, system.logs)
    system.restarted.append(restarted.start())
    restarted.wait_ready()

    until(
        lambda: order(first).state == "running" and order(first).job_id not in ("", lost_job),
        system,
        what="the lost job replaced by a new one",
    )
    replacement = order(first).job_id
    until(lambda: reported(first, replacement), system, what="a report of the new job")
    assert "job_lost" in list(order(first).transitions.values_list("event", flat=True))

    for pk, api_token in zip(created, tokens_of, strict=True):  # through the web process still up
        api(system, 1, api_token, f"mm-orders/{pk}/stop")
    until(
        lambda: all(order(pk).state == "stopping" and order(pk).job_id == "" for pk in created),
        system,
        what="both jobs stopped and released",
    )
    for pk, api_token, (_, treasury) in zip(created, tokens_of, pairs, strict=True):
        api(system, 1, api_token, f"mm-orders/{pk}/withdraw-back", {"treasury_account_id": treasury.pk})
    until(lambda: all(order(pk).state == "settled" for pk in created), system, what="both orders settled")

    for pk, (trading, _) in zip(created, pairs, strict=True):
        check_once(pk, trading, sim)
    # No alert: a running order's lost job is replaced without one (docs/runbook.md), and a stop racing a sync
    # no longer alerts `job_stopped` (the regression below).
    assert list(Alert.objects.values_list("kind", flat=True)) == []
    # Each report was ingested once: the registry counted what is stored, and refused none.
    stored = ExecutionReport.objects.filter(order_id__in=created).count()
    records = ExecutorRecord.objects.filter(url__in=system.env["EXECUTOR_URLS"].split(","))
    assert sum(r.reports_accepted for r in records) == stored
    assert sum(r.reports_refused for r in records) == 0
    # The ledger is balanced per asset and agrees with the chain to the base unit.
    assert asset_totals(selectors.ledger_balances()) == {"USDT": 0, "MMT": 0}
    for asset, address in tokens.items():
        on_chain = token(w3, address).functions.balanceOf(CUSTODY.address).call()
        assert selectors.ledger_balance(account=f"custody:{asset}") == on_chain, asset


def check_once(pk: int, trading: ExchangeAccount, sim: RunningExchange) -> None:
    done = order(pk)
    events = list(done.transitions.values_list("event", flat=True))
    assert events[:4] == ["fund", "transfer_sent", "transfer_mined", "deposit_confirmed"], events
    assert events[-2:] == ["orders_settled", "withdrawal_arrived"], events
    # One custody transfer, one deposit on the exchange.
    assert CustodyTransfer.objects.filter(order_id=pk).count() == 1
    creds = accounts.exchange_account_credentials(account=trading)
    venue_key = sim.sim.keys.get(creds.api_key)
    assert venue_key is not None
    venue = venue_key.account_id
    assert sim.sim.funds is not None
    deposits = [d for d in sim.sim.funds.deposits.values() if d.account_id == venue]
    assert len(deposits) == 1, deposits
    # At most one withdrawal per asset, each the one our row names.
    for asset in ("USDT", "MMT"):
        sent = on_exchange(sim, venue, asset)
        rows = list(done.withdrawals.filter(asset=asset))
        assert len(sent) == len(rows) <= 1, (asset, sent, rows)
        assert [w.withdraw_order_id for w in sent] == [r.client_id for r in rows]
    # No client order id reached the exchange twice; every trade there is one booked fill.
    client = make_ccxt(sim.base_url, creds.api_key, creds.secret)
    assert client.fetch_open_orders("MMT/USDT") == []
    cids = [o["clientOrderId"] for o in client.fetch_orders("MMT/USDT", limit=1000)]
    assert len(cids) == len(set(cids)), "a client order id reached the exchange twice"
    trades = client.fetch_my_trades("MMT/USDT", limit=1000)
    assert LedgerTransaction.objects.filter(key__startswith=f"o{pk}-fill-").count() == len(trades)
    # Every report stored once per job, without gaps.
    for job_id in set(ExecutionReport.objects.filter(order_id=pk).values_list("job_id", flat=True)):
        sequences = list(
            ExecutionReport.objects.filter(order_id=pk, job_id=job_id)
            .order_by("sequence")
            .values_list("sequence", flat=True)
        )
        assert sequences == list(range(len(sequences))), (job_id, sequences)
    assert selectors.order_holdings(done) == {}
    assert selectors.ledger_balances(prefix=f"transit:o{pk}:") == {}


@pytest.mark.django_db
def test_the_rotation_between_equal_executors_is_one_for_every_worker_process(monkeypatch) -> None:
    """The defect the run above found: each worker process rotated on its own, so two workers' first jobs went to
    the same executor. A second process is this one with its local counter started afresh."""
    from attestation import selection

    urls = ["http://a", "http://b"]
    monkeypatch.setattr(selection, "_turn", itertools.count())
    first = selection.select_executor(urls)
    monkeypatch.setattr(selection, "_turn", itertools.count())  # "another worker", just started
    assert selection.select_executor(urls) != first


@pytest.mark.django_db
def test_a_sync_that_raced_a_stop_raises_no_alert_and_no_error(monkeypatch) -> None:
    """The defect the run above found: a worker's sync read the order running, the operator's stop and another
    worker's wind-down stopped the job meanwhile, and the sync took the executor's `stopped` for news: an error
    alert `job_stopped` on a healthy stop, then a failed task (`cannot pause an order in state stopping`)."""
    from execution import jobs, services
    from tests.fixtures.orders import running_order

    order = running_order(user_with())

    class Executor:
        """Answers as the executor does once the other worker's wind-down stopped the job."""

        def __enter__(self) -> Executor:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def status(self, job_id: str) -> dict[str, Any]:
            services.mm_order_stop(order_id=order.pk)  # lands while this sync waits for the answer
            return {"state": "stopped", "reason": "stopped by the controller", "halted_at_ms": None}

    monkeypatch.setattr(jobs, "mm_order_pull_reports", lambda *, order_id: 0)
    monkeypatch.setattr(jobs, "client_for", lambda order: Executor())
    assert jobs.mm_order_sync_job(order_id=order.pk).state == "stopping"
    assert not Alert.objects.exists()
    events = list(MMOrder.objects.get(pk=order.pk).transitions.values_list("event", flat=True))
    assert events == ["job_running", "stop"]


@pytest.mark.django_db(transaction=True)
def test_a_ledger_entry_booked_by_another_worker_while_this_one_waited_is_a_duplicate_not_an_overdraft() -> None:
    """The defect the run above found: two workers booking the same report (a sync and a wind-down pull the same
    page) — the second found the key free, waited for the accounts' lock while the first booked the fill, then
    checked the balance the first had just spent against and refused its duplicate as an overdraft: an alert
    `report_unbookable` on a report stored once and booked once."""
    from django.db import connections, transaction

    from execution import services
    from execution.domain.ledger import transfer
    from execution.errors import LedgerOverdraft

    require_postgresql("the race is between two connections' locks")
    services.ledger_record(
        tx=transfer(
            "seed", "deposit_credit", asset="USDT", amount=100, source="external:chain", target="exchange:a1:free"
        )
    )
    spend = transfer(
        "o1-fill-7", "fill_settle", asset="USDT", amount=100, source="exchange:a1:free", target="external:trades"
    )
    first_holds_lock = threading.Event()
    second_waits = threading.Event()
    outcome: dict[str, Any] = {}

    def first() -> None:
        try:
            with transaction.atomic():
                outcome["first"] = services.ledger_record(tx=spend)
                first_holds_lock.set()
                second_waits.wait(30)  # commit only once the second is blocked on the accounts' lock
        finally:
            connections.close_all()

    def second() -> None:
        try:
            first_holds_lock.wait(30)
            outcome["second"] = services.ledger_record(tx=spend)
        except LedgerOverdraft as exc:
            outcome["second"] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while not _a_backend_waits_on_a_lock():
        assert time.monotonic() < deadline, "the second booking never waited for the lock"
        time.sleep(0.05)
    second_waits.set()
    for thread in threads:
        thread.join(30)
    assert outcome == {"first": True, "second": False}
    assert selectors.ledger_balance(account="exchange:a1:free:USDT") == 0


def _a_backend_waits_on_a_lock() -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        (waiting,) = cursor.fetchone()
    return bool(waiting)
