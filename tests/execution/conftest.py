"""Fixtures for the job half of the loop: the simulator (with its market of takers), one executor in a thread,
and an MM order whose deposit is confirmed, ready to start. Modules that need another simulator (on a chain, say)
define their own `sim`, which takes precedence."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from devnet.exchange.fixtures import RunningExchange
from devnet.exchange.keys import Permission
from execution import accounts, provisioning, reports
from execution.executor_client import ExecutorClient
from execution.models import MMOrder
from mrmarket.exchanges.credentials import ExchangeCredentials
from tests.execution.executor_thread import running_executor
from tests.execution.gate_stand_in import GateStandIn
from tests.executor.harness import live_exchange
from tests.factories import user_with
from tests.fixtures.chain import chain_of_its_own
from tests.fixtures.orders import deposited_order

BALANCES = {"MMT": Decimal(3000), "USDT": Decimal(1500)}


# Each module here that needs a chain gets its own (these override the session-wide chain of tests/fixtures):
# simulators derive deposit addresses from a fixed seed, so two of them on one chain would see each other's
# deposits.
anvil, w3 = chain_of_its_own()


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningExchange]:
    with live_exchange() as ex:
        yield ex


@pytest.fixture(scope="module")
def executor(sim: RunningExchange, request: pytest.FixtureRequest) -> Iterator[tuple[str, dict[str, Any]]]:
    """One executor per module; a module sets `EXECUTOR_STREAMS = False` to have its jobs poll by REST."""
    holder: dict[str, Any] = {}
    streams = getattr(request.module, "EXECUTOR_STREAMS", True)
    with running_executor(sim.base_url, holder=holder, streams=streams) as url:
        yield url, holder


@pytest.fixture
def gate_stand_in(monkeypatch: pytest.MonkeyPatch) -> GateStandIn:
    """Stands in for the trust gate: the test executors here run no TD, so their keys cannot be attested. The
    executor's announced keys pass provisioning when it obeys our controller key, and reports signed by them pass
    ingestion while the registry has not withdrawn its trust (`tests/execution/gate_stand_in.py`).

    Explicit, per module or test, never by default: production has one path, `attestation.gate.attested_identity`,
    which tests/attestation (and the end-to-end loop tests) exercise for real; a test without this fixture meets
    the real gate, which refuses these executors."""
    stand_in = GateStandIn()
    monkeypatch.setattr(provisioning, "attested_identity", stand_in.identity)
    monkeypatch.setattr(reports, "signing_key_attested", stand_in.signing_key_attested)
    return stand_in


@pytest.fixture
def make_order(
    settings, sim: RunningExchange, executor: tuple[str, dict[str, Any]]
) -> Iterator[Callable[..., MMOrder]]:
    settings.EXCHANGE_API_URLS = {"binance": sim.base_url}
    settings.EXECUTOR_URLS = [executor[0]]
    settings.CUSTODY_ASSETS = {
        "USDT": {"token": "0x" + "ab" * 20, "decimals": 6},
        "MMT": {"token": "0x" + "cd" * 20, "decimals": 18},
    }

    made: list[int] = []

    def make(balances: dict[str, Decimal] = BALANCES) -> MMOrder:
        funded = {asset: amount for asset, amount in balances.items() if amount > 0}
        key = sim.sim.create_account(permissions=frozenset({Permission.TRADE}), balances=funded)
        account = accounts.exchange_account_enrol(
            owner_id=user_with().pk,
            exchange="binance",
            label="mm",
            role="trading",
            credentials=ExchangeCredentials(key.key, key.secret),
        )
        holdings = {"MMT": int(balances["MMT"] * 10**18), "USDT": int(balances["USDT"] * 10**6)}
        created = deposited_order(account, funding_amount=1_000 * 10**6, holdings=holdings)
        made.append(created.pk)
        return created

    yield make
    # A test that failed half-way leaves its job quoting on the shared executor: stop it, so that it cannot
    # trade on (or take the faults of) the tests after it.
    for job_id in MMOrder.objects.filter(pk__in=made).exclude(job_id="").values_list("job_id", flat=True):
        with contextlib.suppress(Exception), ExecutorClient(executor[0]) as client:
            client.stop(job_id)


@pytest.fixture
def order(make_order: Callable[..., MMOrder]) -> MMOrder:
    return make_order()
