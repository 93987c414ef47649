"""A worker killed (SIGKILL) at every state transition of the MM order's money flow and of its withdrawal, just
before the transition is written and just after it committed; then the system resumes by itself (the task
redelivered, the beats, the operator asking again) and nothing is lost or done twice: one transfer on the chain,
one deposit credited, one withdrawal on the exchange, every step once in the timeline, the ledger balanced and the
custody wallet on the chain where the ledger says."""

# The fixtures are imported from a module of this package (a conftest here would override the matrix tests'
# own devnet): pytest takes them from the module namespace, ruff sees the arguments as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import pytest
from web3 import Web3

from devnet.exchange.fixtures import RunningExchange
from execution.models import MMOrder, MMOrderTransition
from tests.chaos.crash_fixtures import (  # noqa: F401 (fixtures)
    CUSTODY,
    CUSTODY_SEED,
    FUNDING,
    Flow,
    anvil,
    flow,
    sim,
    usdt,
    w3,
)
from tests.chaos.crash_invariants import assert_money_flow_settled, resume_money_flow
from tests.chaos.driver_plugin import Driver, DriverRun
from tests.plugins.require import require_postgresql

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.slow,
    pytest.mark.chain,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(240),
]

# The flow's transitions in the order the worker applies them (the census test checks it): the order's seven,
# and its one withdrawal's two (requesting → sent → confirmed) on the return leg.
TRANSITIONS = [
    ("mm_order", "fund"),
    ("mm_order", "transfer_sent"),
    ("mm_order", "transfer_mined"),
    ("mm_order", "deposit_confirmed"),
    ("mm_order", "stop"),
    ("withdrawal", "accepted"),
    ("mm_order", "orders_settled"),
    ("withdrawal", "arrived"),
    ("mm_order", "withdrawal_arrived"),
]


def _check(flow: Flow, sim: RunningExchange, w3: Web3, usdt: str) -> None:
    assert_money_flow_settled(flow, sim=sim, w3=w3, usdt=usdt)


def _driver(driver: Driver, flow: Flow, kill_at: int, when: str) -> DriverRun:
    args = {"order": flow.order.pk, "treasury": flow.treasury.pk}
    return driver.run("mm_money", kill_at, when, settings=flow.settings, args=args)


def test_the_census_counts_every_transition_of_the_flow(
    crash_driver: Driver, flow: Flow, sim: RunningExchange, w3: Web3, usdt: str
) -> None:
    require_postgresql("the driver and the test share one database across processes")
    run = _driver(crash_driver, flow, 0, "after")
    assert run.returncode == 0, run.output
    assert run.done, run.output
    assert [(s["machine"], s["event"]) for s in run.steps] == TRANSITIONS
    _check(flow, sim, w3, usdt)


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("kill_at", range(1, len(TRANSITIONS) + 1), ids=[f"{m}-{e}" for m, e in TRANSITIONS])
def test_a_worker_killed_at_a_transition_resumes_and_nothing_is_lost_or_doubled(
    crash_driver: Driver, flow: Flow, sim: RunningExchange, w3: Web3, usdt: str, kill_at: int, when: str
) -> None:
    require_postgresql("the driver and the test share one database across processes")
    run = _driver(crash_driver, flow, kill_at, when)
    assert run.killed, f"the driver was not killed (rc {run.returncode}): {run.output}"
    machine, event = TRANSITIONS[kill_at - 1]
    assert (run.steps[-1]["machine"], run.steps[-1]["event"]) == (machine, event)
    if machine == "mm_order":
        # Before: the dying transaction took the step with it. After: it committed, once.
        recorded = MMOrderTransition.objects.filter(order_id=flow.order.pk, event=event).count()
        assert recorded == (1 if when == "after" else 0)
    resumed = resume_money_flow(flow.order.pk, flow.treasury.pk, w3)
    assert resumed.state == "settled", (resumed.state, resumed.failure_reason)
    _check(flow, sim, w3, usdt)
    assert MMOrder.objects.get(pk=flow.order.pk).state == "settled"
