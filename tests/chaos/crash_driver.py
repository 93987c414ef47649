"""A worker that dies by SIGKILL at the N-th state transition it applies (the crash tests' subprocess).

    python -m tests.chaos.crash_driver   # then one JSON request a line on stdin: flow, kill_at, when, ...

The parent imports Django and the flows once and forks a fresh worker per request. The database and Redis come
from the environment, the settings that name the devnet (chain, exchange, custody) and the flow's ids from the
request; the test process shares the same PostgreSQL database, committed across processes.

The hook lives here, not in product code: the functions that apply a transition are wrapped by monkeypatching,
and the N-th real transition either kills the process just before it is applied (its transaction dies with the
process) or right after the transaction that wrote it committed (`transaction.on_commit`). `kill_at` 0 runs the
flow to its end: the census of its transitions.

Each transition applied is printed as one JSON line (`{"n", "machine", "event"}`), so the test knows where the
worker died and how many transitions the flow has.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import django


def _die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


class Hook:
    def __init__(self, kill_at: int, when: str) -> None:
        self.kill_at, self.when, self.count = kill_at, when, 0

    def step(self, machine: str, event: str, apply: Callable[[], Any]) -> Any:
        from django.db import transaction

        self.count += 1
        n = self.count
        if n == self.kill_at and self.when == "before":
            print(json.dumps({"n": n, "machine": machine, "event": event, "killed": "before"}), flush=True)
            _die()
        result = apply()
        print(json.dumps({"n": n, "machine": machine, "event": event}), flush=True)
        if n == self.kill_at and self.when == "after":
            transaction.on_commit(_die)  # at once when no transaction is open around it
        return result


def _install(hook: Hook) -> None:
    from execution import services, withdrawals
    from execution.models import MMOrderTransition
    from payouts import closing, paying
    from payouts.models import TransitionRecord

    order_transition = services.mm_order_transition

    def mm_order_transition(*, order_id: int, event: Any, key: str, **kwargs: Any) -> Any:
        if MMOrderTransition.objects.filter(order_id=order_id, key=key).exists():
            return order_transition(order_id=order_id, event=event, key=key, **kwargs)  # a no-op, not a step
        return hook.step(
            "mm_order", event.value, lambda: order_transition(order_id=order_id, event=event, key=key, **kwargs)
        )

    services.mm_order_transition = mm_order_transition

    withdrawal_apply = withdrawals._apply

    def apply(row: Any, event: Any, **kwargs: Any) -> Any:
        return hook.step("withdrawal", event.value, lambda: withdrawal_apply(row, event, **kwargs))

    withdrawals._apply = apply

    for module, machine in ((closing, "epoch_close"), (paying, "epoch_payout")):
        real = module.transition_once

        def transition_once(
            row: Any,
            records: type[TransitionRecord],
            owner: str,
            *,
            key: str,
            event: str,
            _real: Any = real,
            _machine: str = machine,
            **kwargs: Any,
        ) -> bool:
            if records.objects.filter(**{owner: row}, key=key).exists():
                return bool(_real(row, records, owner, key=key, event=event, **kwargs))
            return bool(hook.step(_machine, event, lambda: _real(row, records, owner, key=key, event=event, **kwargs)))

        module.transition_once = transition_once  # type: ignore[attr-defined]

    note = paying._note

    def payout_note(payout: Any, *, key: str, event: str, detail: dict[str, Any]) -> None:
        # A step of the payout that changes no state (a batch signed, paid): a kill point too.
        if payout.transitions.filter(key=key).exists():
            return note(payout, key=key, event=event, detail=detail)
        return hook.step("epoch_payout", event, lambda: note(payout, key=key, event=event, detail=detail))

    paying._note = payout_note


def _mine() -> None:
    from django.conf import settings

    from mrmarket.chain import get_web3

    if settings.CHAIN_RPC_URL:  # a flow on the devnet chain: its blocks come one a pass
        get_web3().provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def _until(done: Callable[[], bool], step: Callable[[], Any], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"crash driver: {what} did not happen in {timeout} s")
        step()
        _mine()
        time.sleep(0.1)


def mm_money(args: dict[str, Any]) -> None:
    """The order's money flow as the worker runs it: funded (fund_order), tracked to the exchange (the
    track_deposits beat), stopped (the operator), brought home (withdraw_back), tracked home (track_withdrawals)."""
    from execution import homeward, outbound, services
    from execution.models import MMOrder

    order_id, treasury_id = int(args["order"]), int(args["treasury"])

    def state() -> str:
        return str(MMOrder.objects.get(pk=order_id).state)

    outbound.mm_order_fund(order_id=order_id)
    _until(
        lambda: state() == "deposit_confirmed", lambda: outbound.mm_order_track_deposit(order_id=order_id), "deposit"
    )
    services.mm_order_stop(order_id=order_id)
    homeward.mm_order_withdraw_back(order_id=order_id, treasury_account_id=treasury_id)
    _until(
        lambda: state() == "settled", lambda: homeward.mm_order_track_withdrawal(order_id=order_id), "the return leg"
    )


def mm_job(args: dict[str, Any]) -> None:
    """The order's job leg as the worker runs it: started on the executor (start_job), followed (sync_job), stopped
    (the operator) and wound down (wind_down). The test executor runs no TD: its keys pass through the same gate
    stand-in the job tests use (tests/execution/gate_stand_in.py), set here in the worker's process."""
    from execution import jobs, provisioning, reports, services
    from execution.models import MMOrder
    from tests.execution.gate_stand_in import GateStandIn

    stand_in = GateStandIn()
    provisioning.attested_identity = stand_in.identity
    reports.signing_key_attested = stand_in.signing_key_attested
    order_id = int(args["order"])
    jobs.mm_order_start_job(order_id=order_id)
    jobs.mm_order_sync_job(order_id=order_id)
    services.mm_order_stop(order_id=order_id)
    _until(
        lambda: MMOrder.objects.get(pk=order_id).job_id == "",
        lambda: jobs.mm_order_wind_down(order_id=order_id),
        "the wind-down",
    )


def _chain_now() -> Any:
    from datetime import UTC, datetime

    from mrmarket.chain import get_web3

    return datetime.fromtimestamp(get_web3().eth.get_block("latest")["timestamp"], tz=UTC)


def epoch_close(args: dict[str, Any]) -> None:
    """One close as the close_epoch task runs it, pass after pass, until its results are recorded on chain."""
    from payouts import closing
    from payouts.models import EpochClose

    close_id = int(args["close"])
    _until(
        lambda: EpochClose.objects.get(pk=close_id).state == "recorded",
        lambda: closing.epoch_close_advance(close_id=close_id, worker="crash-driver", now=_chain_now()),
        "the close",
    )


def epoch_payout(args: dict[str, Any]) -> None:
    """One payout as the pay_epoch task runs it, pass after pass, until every leaf is paid."""
    from payouts import paying
    from payouts.models import EpochPayout

    payout_id = int(args["payout"])
    _until(
        lambda: EpochPayout.objects.get(pk=payout_id).state == "paid",
        lambda: paying.epoch_payout_advance(payout_id=payout_id),
        "the payout",
    )


def epoch_close_settled(args: dict[str, Any]) -> None:
    """One close as the close_epoch task runs it, pass after pass, until it is recorded or failed (a failed close
    waits for a person: the task has nothing more to do)."""
    from payouts import closing
    from payouts.models import EpochClose

    close_id = int(args["close"])
    _until(
        lambda: EpochClose.objects.get(pk=close_id).state in ("recorded", "failed"),
        lambda: closing.epoch_close_advance(close_id=close_id, worker="crash-driver", now=_chain_now()),
        "the close",
    )


def epoch_close_retry(args: dict[str, Any]) -> None:
    """The operator's retry of a failed close, as the admin's action calls it (a web process that can die too)."""
    from payouts import closing

    closing.epoch_close_retry(close_id=int(args["close"]))


def epoch_payout_settled(args: dict[str, Any]) -> None:
    """One payout as the pay_epoch task runs it, pass after pass, until it is paid, empty or failed."""
    from payouts import paying
    from payouts.models import EpochPayout

    payout_id = int(args["payout"])
    _until(
        lambda: EpochPayout.objects.get(pk=payout_id).state in ("paid", "empty", "failed"),
        lambda: paying.epoch_payout_advance(payout_id=payout_id),
        "the payout",
    )


def epoch_payout_retry(args: dict[str, Any]) -> None:
    """The operator's retry of a failed payout, as the admin's action calls it."""
    from payouts import paying

    paying.epoch_payout_retry(payout_id=int(args["payout"]))


def _job_gate(order_id: int) -> None:
    """The gate stand-in of the job tests (tests/execution/gate_stand_in.py) in this process, vouching for the key
    the test process's provisioning already accepted for the order's executor (it is the same executor)."""
    from execution import provisioning, reports
    from execution.models import MMOrder
    from tests.execution.gate_stand_in import GateStandIn

    stand_in = GateStandIn()
    provisioning.attested_identity = stand_in.identity
    reports.signing_key_attested = stand_in.signing_key_attested
    order = MMOrder.objects.get(pk=order_id)
    if order.executor_signing_key:
        stand_in.vouch(order.executor_signing_key, url=order.executor_url)


def mm_job_paused(args: dict[str, Any]) -> None:
    """A running order whose job the executor reports ended (the exchange refused its key): the sync_jobs beat
    pauses it with an alert, then the operator stops it and wind_down releases the job."""
    from execution import jobs, services
    from execution.models import MMOrder

    order_id = int(args["order"])
    _job_gate(order_id)
    _until(
        lambda: MMOrder.objects.get(pk=order_id).state == "paused",
        lambda: jobs.mm_order_sync_job(order_id=order_id),
        "the pause",
    )
    services.mm_order_stop(order_id=order_id)
    _until(
        lambda: MMOrder.objects.get(pk=order_id).job_id == "",
        lambda: jobs.mm_order_wind_down(order_id=order_id),
        "the wind-down",
    )


def mm_job_spec_refused(args: dict[str, Any]) -> None:
    """An order whose strategy no longer makes a job spec the executor accepts: the drive_jobs beat's start records
    the start and fails it (one transaction), sending nothing anywhere."""
    from execution import jobs
    from execution.models import MMOrder

    order_id = int(args["order"])
    _until(
        lambda: MMOrder.objects.get(pk=order_id).state == "failed",
        lambda: jobs.mm_order_start_job(order_id=order_id),
        "the refused start",
    )


def mm_job_lost(args: dict[str, Any]) -> None:
    """A running order whose executor no longer knows its job (it restarted): the sync_jobs beat records the job
    lost and starts its successor, until the order runs that new job."""
    from execution import jobs
    from execution.models import MMOrder

    order_id, lost = int(args["order"]), str(args["lost"])
    _job_gate(order_id)

    def replaced() -> bool:
        order = MMOrder.objects.get(pk=order_id)
        return order.state == "running" and order.job_id != lost

    _until(replaced, lambda: jobs.mm_order_sync_job(order_id=order_id), "the new job")


def _withdraw_back_task(order_id: int, treasury_id: int) -> None:
    """The withdraw_back task as the worker runs it (its refusals alerted, not raised)."""
    from execution import homeward

    homeward.mm_order_withdraw_back_queued(order_id=order_id, treasury_account_id=treasury_id)


def _tracked_until(order_id: int, states: tuple[str, ...]) -> None:
    from execution import homeward
    from execution.models import MMOrder

    _until(
        lambda: MMOrder.objects.get(pk=order_id).state in states,
        lambda: homeward.mm_order_track_withdrawal(order_id=order_id),
        f"the order {' or '.join(states)}",
    )


def mm_withdrawal_refused(args: dict[str, Any]) -> None:
    """A stopped order's withdraw_back task, which the exchange refuses (alerted); the operator asks again, and
    the track_withdrawals beat brings it home."""
    order_id, treasury_id = int(args["order"]), int(args["treasury"])
    _withdraw_back_task(order_id, treasury_id)
    _withdraw_back_task(order_id, treasury_id)
    _tracked_until(order_id, ("settled",))


def mm_withdrawal_failed(args: dict[str, Any]) -> None:
    """A stopped order's withdraw_back task; the exchange accepts the withdrawal, then fails it (refunded), and the
    track_withdrawals beat fails the order (alerted, its funds on the exchange); the operator stops it again (the
    API's stop) and asks for the withdraw-back again, which the beat brings home."""
    from execution import operations
    from execution.models import MMOrder

    order_id, treasury_id = int(args["order"]), int(args["treasury"])
    _withdraw_back_task(order_id, treasury_id)
    _tracked_until(order_id, ("failed",))
    operations.mm_order_stop_request(owner_id=MMOrder.objects.get(pk=order_id).owner_id, order_id=order_id)
    _withdraw_back_task(order_id, treasury_id)
    _tracked_until(order_id, ("settled",))


def mm_transfer_reverted(args: dict[str, Any]) -> None:
    """An order funded (fund_order) whose custody transfer reverts on chain: the track_deposits beat books the
    funds back into custody and fails the order."""
    from execution import outbound
    from execution.models import MMOrder

    order_id = int(args["order"])
    outbound.mm_order_fund(order_id=order_id)
    _until(
        lambda: MMOrder.objects.get(pk=order_id).state == "failed",
        lambda: outbound.mm_order_track_deposit(order_id=order_id),
        "the revert",
    )


def mm_transfer_reverted_refunded(args: dict[str, Any]) -> None:
    """The reverted transfer's failed order (its funds booked back into custody), then the operator's refund of
    it, as the API's operation runs it in a web process."""
    from execution import outbound

    mm_transfer_reverted(args)
    outbound.mm_order_refund(order_id=int(args["order"]))


def mm_job_resumed(args: dict[str, Any]) -> None:
    """The operator's resume of an order paused on its job's kill switch, as the API's operation runs it in a web
    process: the executor resumes the job, then the order records the resume."""
    from execution import jobs

    order_id = int(args["order"])
    _job_gate(order_id)
    jobs.mm_order_resume_job(order_id=order_id)


FLOWS: dict[str, Callable[[dict[str, Any]], None]] = {
    "mm_money": mm_money,
    "mm_job": mm_job,
    "epoch_close": epoch_close,
    "epoch_payout": epoch_payout,
    "epoch_close_settled": epoch_close_settled,
    "epoch_close_retry": epoch_close_retry,
    "epoch_payout_settled": epoch_payout_settled,
    "epoch_payout_retry": epoch_payout_retry,
    "mm_job_paused": mm_job_paused,
    "mm_job_lost": mm_job_lost,
    "mm_job_spec_refused": mm_job_spec_refused,
    "mm_withdrawal_refused": mm_withdrawal_refused,
    "mm_withdrawal_failed": mm_withdrawal_failed,
    "mm_transfer_reverted": mm_transfer_reverted,
    "mm_transfer_reverted_refunded": mm_transfer_reverted_refunded,
    "mm_job_resumed": mm_job_resumed,
}


def _run_child(request: dict[str, Any]) -> None:
    """In the forked child: its own output file, settings, hook and database connection; the flow; exit."""
    out = open(request["out"], "w", buffering=1)  # noqa: SIM115 - closed by the exit
    os.dup2(out.fileno(), 1)
    os.dup2(out.fileno(), 2)
    sys.stdout = sys.stderr = out
    code = 0
    try:
        from django.conf import settings

        for name, value in request["settings"].items():
            setattr(settings, name, value)
        _install(Hook(int(request["kill_at"]), str(request["when"])))
        FLOWS[request["flow"]](request["args"])
        print(json.dumps({"done": True}), flush=True)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        out.flush()
        os._exit(code)


def serve() -> None:
    """Import everything once, then fork one worker per request read from stdin (as Celery's prefork pool forks
    its children from a parent that imported the app): each child opens its own database connection. Answers
    each request with one line: the child's exit status (-9 when it was killed)."""
    django.setup()
    from execution import homeward, outbound, services, withdrawals  # noqa: F401 - imported before the fork
    from payouts import closing, paying  # noqa: F401

    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _run_child(request)
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        print(json.dumps({"returncode": code}), flush=True)


if __name__ == "__main__":
    serve()
