"""A worker killed (SIGKILL) at every transition of the MM order's job leg (deposit_confirmed → starting → running →
stopping), just before it is written and just after it committed; then the drive_jobs beat (start_job, wind_down)
and the operator's stop asked again take it on: one job on the executor, no client order id on the exchange twice,
every report stored once in a gapless chain, every trade one booked fill, each step once in the timeline. The
executor, the simulator and the order are tests/execution/conftest.py's."""

# The fixtures are imported from another module (a conftest here would override the matrix tests' own devnet):
# pytest takes them from the module namespace, ruff sees the arguments as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from execution import jobs, services
from execution.domain import mm_order as mm
from execution.models import MMOrder
from tests.chaos import invariants
from tests.chaos.crash_invariants import wait
from tests.chaos.driver_plugin import Driver
from tests.execution.conftest import executor, gate_stand_in, make_order, sim  # noqa: F401 (fixtures)
from tests.execution.executor_thread import manager_of
from tests.execution.gate_stand_in import GateStandIn
from tests.plugins.require import require_postgresql

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(180),
]

EXECUTOR_STREAMS = False  # the jobs poll by REST, as the loop-fault tests' do
TRANSITIONS = ["start", "job_running", "stop"]
SETTINGS = ["EXCHANGE_API_URLS", "EXECUTOR_URLS", "CUSTODY_ASSETS", "CHAIN_RPC_URL"]


def resume(order_id: int, stand_in: GateStandIn) -> None:
    """The drive_jobs beat (start_job while deposit_confirmed or starting, wind_down while stopping) and the
    operator, whose stop failed with the worker, asking again."""

    def tick() -> None:
        order = MMOrder.objects.get(pk=order_id)
        if order.executor_signing_key:  # what the worker's provisioning vouched for, in its own process
            stand_in.vouch(order.executor_signing_key, url=order.executor_url)
        if order.state in (mm.State.DEPOSIT_CONFIRMED, mm.State.STARTING):
            jobs.mm_order_start_job(order_id=order_id)
        elif order.state == mm.State.RUNNING:
            services.mm_order_stop(order_id=order_id)
        elif order.state == mm.State.STOPPING and order.job_id:
            jobs.mm_order_wind_down(order_id=order_id)

    def released() -> bool:
        order = MMOrder.objects.get(pk=order_id)
        return order.state == mm.State.STOPPING and order.job_id == ""

    wait(released, "the job stopped and released", 90, tick)


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("kill_at", range(1, len(TRANSITIONS) + 1), ids=TRANSITIONS)
def test_a_worker_killed_at_a_job_transition_resumes_with_one_job_and_nothing_twice(
    crash_driver: Driver,
    make_order: Callable[..., MMOrder],
    executor: tuple[str, dict[str, Any]],
    gate_stand_in: GateStandIn,
    settings: Any,
    kill_at: int,
    when: str,
) -> None:
    require_postgresql("the driver and the test share one database across processes")
    order = make_order()
    chosen = json.loads(json.dumps({name: getattr(settings, name) for name in SETTINGS}))
    run = crash_driver.run("mm_job", kill_at, when, settings=chosen, args={"order": order.pk})
    assert run.killed, f"the driver was not killed (rc {run.returncode}): {run.output}"
    assert run.steps[-1]["event"] == TRANSITIONS[kill_at - 1]
    done = list(MMOrder.objects.get(pk=order.pk).transitions.order_by("pk").values_list("event", flat=True))
    assert done == TRANSITIONS[: kill_at if when == "after" else kill_at - 1]

    resume(order.pk, gate_stand_in)
    stopped = MMOrder.objects.get(pk=order.pk)
    assert list(stopped.transitions.order_by("pk").values_list("event", flat=True)) == TRANSITIONS
    job_id = stopped.transitions.get(event="start").detail["job_id"]
    assert [j for j in manager_of(executor[1]).jobs if j.startswith(f"mmo{order.pk}-")] == [job_id], "a second job"
    invariants.assert_exchange_orders_once(stopped.exchange_account, "MMT/USDT")  # nothing rests, no id twice
    invariants.assert_no_duplicates([stopped])  # reports gapless per job, every reported fill booked once
    invariants.assert_ledger_balanced()
