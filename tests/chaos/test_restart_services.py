"""Redis and PostgreSQL restarted mid-flow under a real Celery worker (a process of its own, never restarted):
the MM order's money flow, custody → exchange → custody, with the broker or the database going away while the
deposit is being confirmed and again while the withdrawal comes home. The beat is played by the test (it only
queues `track_deposits` and `track_withdrawals`, as often as a fast beat would; a beat tick that meets the broker
down is lost, as Celery beat loses it). After each: the flow settled by itself, with nothing lost or doubled on
the chain, on the exchange or in the ledger (`crash_invariants.assert_money_flow_settled`).

The Redis and the PostgreSQL restarted are private to the test (`private_services.py`), never the machine's."""

# The fixtures are imported from a module of this package (a conftest here would override the matrix tests'
# own devnet): pytest takes them from the module namespace, ruff sees the arguments as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections
from kombu import Connection
from web3 import Web3

from devnet.exchange.fixtures import RunningExchange
from execution import services, tasks
from execution.models import MMOrder
from mrmarket.celery_app import app as celery_app
from tests.chaos.crash_fixtures import (  # noqa: F401 (fixtures)
    CUSTODY,
    CUSTODY_SEED,
    FUNDING,
    Flow,
    Worker,
    anvil,
    celery_worker,
    flow,
    sim,
    usdt,
    w3,
)
from tests.chaos.crash_invariants import assert_money_flow_settled
from tests.chaos.driver_plugin import child_env
from tests.chaos.private_services import PrivatePostgres, PrivateRedis
from tests.plugins.require import require_postgresql

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.slow,
    pytest.mark.chain,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(300),
]


def state_of(order_id: int) -> str:
    return str(MMOrder.objects.get(pk=order_id).state)


class Beat:
    """The two beat entries of the flow, queued on `broker` (each tick: track_deposits, track_withdrawals)."""

    def __init__(self, broker: str) -> None:
        self.broker = broker
        self.lost_ticks = 0

    def send(self, task: Any, *args: Any) -> bool:
        try:
            with Connection(self.broker, connect_timeout=1, transport_options={"max_retries": 0}) as conn:
                task.apply_async(args=args, connection=conn, retry=False)
            return True
        except Exception:  # the broker is down: this tick is lost, the next one is queued again
            self.lost_ticks += 1
            return False

    def tick(self) -> None:
        self.send(tasks.track_deposits)
        self.send(tasks.track_withdrawals)


def drive(beat: Beat, w3: Web3, until: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if until():
                return
        except Exception:
            connection.close()
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not reached in {timeout} s")
        beat.tick()
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        time.sleep(0.25)


DOWN_SECONDS = 3.0  # how long the service stays down: beat ticks meet it down, the worker's connections break


def money_flow(flow: Flow, beat: Beat, w3: Web3, *, service: Any, worker: Worker) -> None:
    """Fund (queued), restart while the deposit is being confirmed, stop (the operator) and withdraw back
    (queued), restart while the withdrawal is on its way, until settled."""
    order_id = flow.order.pk

    def restart() -> None:
        connection.close()
        service.stop()
        deadline = time.monotonic() + DOWN_SECONDS
        while time.monotonic() < deadline:  # the beat keeps ticking into the outage
            beat.tick()
            time.sleep(0.25)
        service.start()

    assert beat.send(tasks.fund_order, order_id)
    drive(beat, w3, lambda: state_of(order_id) in ("withdrawing_to_exchange", "deposit_confirming"), "funding")
    restart()
    drive(beat, w3, lambda: state_of(order_id) == "deposit_confirmed", "the deposit confirmed after the restart")
    services.mm_order_stop(order_id=order_id)
    assert beat.send(tasks.withdraw_back, order_id, flow.treasury.pk)
    drive(beat, w3, lambda: state_of(order_id) == "withdrawing_back", "the withdrawal sent")
    restart()
    drive(beat, w3, lambda: state_of(order_id) == "settled", "the order settled after the restart")
    assert worker.alive(), "the worker died instead of riding out the restart"


def check(flow: Flow, sim: RunningExchange, w3: Web3, usdt: str) -> None:
    assert_money_flow_settled(flow, sim=sim, w3=w3, usdt=usdt)


# --- Redis --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("persist", [True, False], ids=["aof", "no-persistence"])
def test_redis_restarted_mid_flow_the_worker_reconnects_and_the_flow_settles_once(
    flow: Flow, sim: RunningExchange, w3: Web3, usdt: str, tmp_path: Path, persist: bool
) -> None:
    require_postgresql("the worker and the test share one database across processes")
    redis = PrivateRedis(tmp_path, persist=persist).start()
    beat = Beat(redis.url)
    try:
        env = child_env(flow.settings, REDIS_URL=redis.url, CELERY_BROKER_URL=redis.url)
        with celery_worker(env) as worker:
            money_flow(flow, beat, w3, service=redis, worker=worker)
    finally:
        redis.stop()
    assert beat.lost_ticks > 0, "no beat tick met the broker down: the restart was not mid-flow"
    check(flow, sim, w3, usdt)


# --- PostgreSQL ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres().start()
    try:
        yield pg
    finally:
        pg.destroy()


@contextlib.contextmanager
def database_on(pg: PrivatePostgres, name: str) -> Iterator[None]:
    """This test process's connection pointed at the private cluster's `name` (the test is transactional: no
    transaction is open across the switch), and back."""
    conn = connections["default"]
    conn.close()
    saved = dict(conn.settings_dict)
    conn.settings_dict.update(NAME=name, HOST="127.0.0.1", PORT=str(pg.port))
    try:
        yield
    finally:
        conn.close()
        conn.settings_dict.clear()
        conn.settings_dict.update(saved)


def test_postgresql_restarted_mid_flow_the_worker_reconnects_and_the_flow_settles_once(
    flow: Flow, sim: RunningExchange, w3: Web3, usdt: str, private_pg: PrivatePostgres
) -> None:
    require_postgresql("the flow runs on a PostgreSQL cluster of its own")
    db = connection.settings_dict
    source = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    name = f"chaos_{flow.order.pk}_{int(time.time())}"
    private_pg.create_database_from(name, source)  # the flow's rows (order, accounts, ledger seed) with the schema
    beat = Beat(celery_app.conf.broker_url)
    with database_on(private_pg, name):
        env = child_env(flow.settings, DATABASE_URL=private_pg.url(name))
        with celery_worker(env) as worker:
            money_flow(flow, beat, w3, service=private_pg, worker=worker)
            # Not a vacuous restart: tasks ran into the database down, failed, and the next beat's went through.
            assert "OperationalError" in worker.output()
        check(flow, sim, w3, usdt)
