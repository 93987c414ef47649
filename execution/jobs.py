"""MM orders on executors, the job lifecycle: start the job once the deposit is confirmed, pull its reports
(`execution.reports` verifies and books them), follow its state, resume a halted one, restart a job its executor
lost, and wind it down on stop or revoke.

Every step is idempotent and resumable from the database: a job id is chosen once, at START (`mmo<pk>-<random>`), the
executor makes `start` idempotent by job id, the START and JOB_RUNNING transitions are keyed, reports are
stored once by digest and chained by sequence, and ledger entries are keyed by trade id. A worker killed
between any two lines leaves a state the next beat picks up.

Provisioning: the executor's sealing and signing keys come from `provisioning_identity`, the single gate in
front of credential delivery (the attestation app's verified identity, in every profile).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from attestation.easyenclave import EasyEnclaveError, discovered_executor_urls
from execution import accounts, services
from execution.alert_rules import KILL_SWITCH, is_kill_switch, kill_switch_dedup
from execution.domain import mm_order as mm
from execution.errors import (
    ExecutorRefused,
    ExecutorUnavailable,
    InvalidOrderTransition,
    JobNotHalted,
    OrderNotResumable,
    ReportRejected,
)
from execution.jobspec import build_job_spec, order_mid
from execution.lost_job import lost_job_book_fills, lost_job_cancel_orders
from execution.models import ExecutionReport, MMOrder, MMOrderTransition
from execution.provisioning import client_for, executor_lost_trust, pick_executor, provisioning_identity
from execution.reports import ingest_reports, reports_check_overdue
from mrmarket.observability.logging import get_logger
from wire.canonical import digest
from wire.errors import WireError

log = get_logger(__name__)


# --- start ---------------------------------------------------------------------------------------------------


def mm_order_start_job(*, order_id: int) -> MMOrder:
    """deposit_confirmed → starting → running. Safe to repeat at any point; resumes a half-done start."""
    order = MMOrder.objects.select_related("exchange_account").get(pk=order_id)
    if order.state == mm.State.DEPOSIT_CONFIRMED:
        with transaction.atomic():
            locked = MMOrder.objects.select_for_update().get(pk=order_id)
            if locked.state == mm.State.DEPOSIT_CONFIRMED and locked.job_spec is None:
                locked.executor_url = pick_executor(exchange=order.exchange_account.exchange)
                try:
                    locked.job_spec = build_job_spec(order, mid=order_mid(order))
                except WireError as exc:
                    return _refuse_spec(order_id, exc)
                locked.job_id = locked.job_spec["job_id"]
                locked.save(update_fields=["executor_url", "job_spec", "job_id", "updated_at"])
            order = services.mm_order_transition(
                order_id=order_id,
                event=mm.Event.START,
                key=f"o{order_id}-start",
                detail={"executor": locked.executor_url, "job_id": locked.job_id},
            )
        order = MMOrder.objects.select_related("exchange_account").get(pk=order_id)
    if order.state != mm.State.STARTING or order.job_spec is None:
        return order
    with client_for(order) as client:
        identity = provisioning_identity(client)
        client.address_to(identity.signing_key)  # start and credentials go to the attested identity only
        if order.executor_signing_key and order.executor_signing_key != identity.signing_key:
            # The executor restarted (new keys): its earlier job is gone; the same job id starts again.
            log.warning("executor_identity_changed", order_id=order_id)
        MMOrder.objects.filter(pk=order_id).update(executor_signing_key=identity.signing_key)
        try:
            status = client.start(order.job_spec)
        except ExecutorRefused as exc:
            return _fail_start(order, exc)
        if status["state"] == "pending_credentials":
            credentials = accounts.exchange_account_credentials(account=order.exchange_account)
            try:
                client.deliver_credentials(
                    order.job_id,
                    sealing_key=identity.sealing_key,
                    job_spec_digest=digest(order.job_spec),
                    credentials={
                        "api_key": credentials.api_key,
                        "secret": credentials.secret,
                        **({"password": credentials.password} if credentials.password else {}),
                    },
                )
            except ExecutorRefused as exc:
                if (exc.extra or {}).get("executor_code") != "credentials_not_expected":
                    return _fail_start(order, exc)
            status = client.status(order.job_id)
    if status["state"] in ("running", "starting"):
        return services.mm_order_transition(
            order_id=order_id,
            event=mm.Event.JOB_RUNNING,
            key=f"o{order_id}-job-running-{order.job_id}",  # each job (a lost one's successor too) once
            detail={"executor": order.executor_url, "signing_key": identity.signing_key, "attested": identity.attested},
        )
    if status["state"] in ("failed", "revoked", "stopped"):
        return services.mm_order_transition(
            order_id=order_id,
            event=mm.Event.FAIL,
            key=f"o{order_id}-start-failed",
            detail={"reason": f"the job ended {status['state']}: {status.get('reason') or ''}"[:400]},
        )
    return order


def _refuse_spec(order_id: int, exc: WireError) -> MMOrder:
    """The order's strategy no longer makes a job spec the executor would accept (an order stored before a bound
    was tightened): the start is recorded and fails with the reason, nothing sent anywhere; the funds are on the
    exchange, and stopping the order brings them home."""
    services.mm_order_transition(order_id=order_id, event=mm.Event.START, key=f"o{order_id}-start", detail={})
    return services.mm_order_transition(
        order_id=order_id,
        event=mm.Event.FAIL,
        key=f"o{order_id}-spec-refused",
        detail={"reason": f"the job spec would be refused: {exc}"[:400], "code": exc.code},
    )


def _fail_start(order: MMOrder, exc: ExecutorRefused) -> MMOrder:
    return services.mm_order_transition(
        order_id=order.pk,
        event=mm.Event.FAIL,
        key=f"o{order.pk}-start-refused",
        detail={"reason": f"the executor refused the job: {exc.message}"[:400]},
    )


# --- reports -------------------------------------------------------------------------------------------------


def mm_order_pull_reports(*, order_id: int) -> int:
    """Fetch reports after the last stored one and ingest them; alert when the newest is overdue."""
    order = MMOrder.objects.get(pk=order_id)
    if not order.job_id or not order.executor_url or not order.executor_signing_key:
        return 0
    last = ExecutionReport.objects.filter(order=order, job_id=order.job_id).order_by("-sequence").first()
    with client_for(order) as client:
        page = client.reports(order.job_id, after=last.sequence if last else None)
    stored = ingest_reports(order, page.get("reports") or [])
    reports_check_overdue(order)
    return stored


# --- while running, and stop ---------------------------------------------------------------------------------


def mm_order_sync_job(*, order_id: int) -> MMOrder:
    """Pull reports and follow the job: a halted or failed job, or one the executor no longer knows (it
    restarted), pauses the order with an alert; the halted job of a paused order that quotes again (resumed on
    the executor) resumes the order."""
    order = MMOrder.objects.get(pk=order_id)
    if order.state not in (mm.State.RUNNING, mm.State.PAUSED) or not order.job_id:
        return order
    if executor_lost_trust(order):
        return mm_order_revoke_job(order_id=order_id)  # its revocation event was lost, or has not run yet
    try:
        mm_order_pull_reports(order_id=order_id)
        with client_for(order) as client:
            status = client.status(order.job_id)
    except ExecutorRefused as exc:
        if (exc.extra or {}).get("executor_code") != "unknown_job" and _executor_still_listed(order):
            raise
        return _restart_lost_job(order)
    except ExecutorUnavailable:
        if _executor_still_listed(order):
            raise  # an outage: the job holds on its own risk limits and the next beat asks again
        return _restart_lost_job(order)
    if order.state == mm.State.RUNNING and status["state"] in ("halted", "failed", "revoked", "stopped"):
        return _pause_ended_job(order, status)
    if order.state == mm.State.PAUSED and status["state"] == "running":
        return _adopt_resume(order)
    return order


@transaction.atomic
def _pause_ended_job(order: MMOrder, status: dict[str, Any]) -> MMOrder:
    """The job of a running order halted, failed or ended: alert and pause. Under the row lock, and only if the
    order is still running that job: a stop (or a lost job's replacement) that moved it on while the executor was
    asked is why the job ended, not news — another worker's wind-down stops the job it stopped."""
    locked = MMOrder.objects.select_for_update().get(pk=order.pk)
    if locked.state != mm.State.RUNNING or locked.job_id != order.job_id:
        return locked
    order_id = order.pk
    reason, halted_at = status.get("reason") or "", status.get("halted_at_ms")
    # The executor's kill switch halts the job with a reason that names it: that alert has its own kind, and the
    # beat rule keeps it open while the order stays paused by it (`alert_rules.rule_kill_switch`).
    tripped = status["state"] == "halted" and is_kill_switch(reason)
    services.alert_raise(
        KILL_SWITCH if tripped else "job_" + status["state"],
        f"order {order_id}: job {order.job_id} is {status['state']}: {reason}",
        dedup=kill_switch_dedup(order.job_id, halted_at)
        if tripped
        else f"job:{order.job_id}:{status['state']}:{halted_at}",
        detail={"order": order_id, "job_id": order.job_id, "reason": reason},
        owner_id=order.owner_id,
    )
    return services.mm_order_transition(
        order_id=order_id,
        event=mm.Event.PAUSE,
        key=f"o{order_id}-pause-{status['state']}-{halted_at or 0}",
        detail={"reason": reason or status["state"], "job_id": order.job_id, "halted_at_ms": halted_at},
    )


# --- resume --------------------------------------------------------------------------------------------------

# The pauses of `_pause_ended_job` are keyed by the state the executor reported; those of a job that ended, and the
# pause of a lost job that could not be replaced (`_restart_lost_job`), name what no executor can undo.
_ENDED_JOB_STATES = ("failed", "stopped", "revoked")


def mm_order_resume_job(*, order_id: int) -> MMOrder:
    """paused → running, on the operator's word: the executor resumes the halted job (its kill switch tripped; it
    resets the counters and quotes again), then the order records RESUME, once per pause. Refused, typed and with
    nothing changed: an order not paused, without a job, paused for what resume cannot undo, on an executor that lost
    its standing or whose job has ended since (`not_resumable`), or whose executor refuses (`job_not_halted`: the
    job runs, else `executor_refused`) or does not answer. A job its executor no longer knows (it restarted) is not
    resumed there: the order runs again and the next sync replaces the job, as for any running order whose job was
    lost. Two resumes at once, or a resume and the sync seeing the job quote again, make one transition: they share
    the pause's key and apply it under the row lock."""
    order = MMOrder.objects.get(pk=order_id)
    if order.state != mm.State.PAUSED:
        raise InvalidOrderTransition(
            f"order {order_id} is {order.state}; only a paused order can be resumed",
            extra={"state": order.state, "event": mm.Event.RESUME.value},
        )
    pause = _latest_pause(order_id)
    if not order.job_id or not order.executor_url:
        raise OrderNotResumable(f"order {order_id} has no job to resume; stop it instead", extra={"state": order.state})
    why = _not_resumable(order_id, pause)
    if not why and executor_lost_trust(order):
        why = "its executor lost its standing (failed its verification, or revoked); the sync stops its job"
    if why:
        raise OrderNotResumable(
            f"order {order_id} cannot be resumed: {why}; stop it instead", extra={"state": order.state, "reason": why}
        )
    lost = False
    with client_for(order) as client:
        try:
            client.resume(order.job_id)
        except ExecutorRefused as exc:
            code = (exc.extra or {}).get("executor_code")
            if code == "not_halted" and (ended := client.status(order.job_id)["state"]) in _ENDED_JOB_STATES:
                raise OrderNotResumable(
                    f"order {order_id} cannot be resumed: its job {ended} since it paused; stop it instead",
                    extra={"state": order.state, "reason": f"its job {ended}"},
                ) from exc
            if code == "not_halted":
                raise JobNotHalted(
                    f"order {order_id}: the executor refused to resume job {order.job_id}: {exc.message}",
                    extra={"state": order.state, "executor_code": code},
                ) from exc
            if code != "unknown_job":
                raise
            lost = True
    detail = {"by": "operator", "job_id": order.job_id, **({"job_lost": True} if lost else {})}
    resumed = _apply_resume(order, pause, detail=detail)
    log.info("mm_order_resumed", order_id=order_id, job_id=order.job_id, job_lost=lost)
    return resumed


def _adopt_resume(order: MMOrder) -> MMOrder:
    """The executor reports the job of a paused order running: it was halted and someone resumed it on the
    executor (`POST /v1/jobs/{id}/resume`). The order runs again, so Django never shows paused while the job
    quotes. Only a pause of that very job's halt: an order paused in Django while its job went on (reconciliation,
    an operator) stays paused."""
    pause = _latest_pause(order.pk)
    if (
        pause is None
        or not pause.key.startswith(f"o{order.pk}-pause-halted-")
        or pause.detail.get("job_id") != order.job_id
    ):
        return order
    try:
        return _apply_resume(order, pause, detail={"by": "executor", "job_id": order.job_id})
    except InvalidOrderTransition:
        return MMOrder.objects.get(pk=order.pk)  # stopped (or resumed) meanwhile: nothing to adopt


@transaction.atomic
def _apply_resume(order: MMOrder, pause: MMOrderTransition | None, *, detail: dict[str, Any]) -> MMOrder:
    """RESUME under the row lock, keyed by the pause it ends, and only if that pause is still the order's last
    and its job the same: a stop, or another pause, that came while the executor was asked wins."""
    locked = MMOrder.objects.select_for_update().get(pk=order.pk)
    key = f"o{order.pk}-resume-{pause.pk if pause else 0}"
    if MMOrderTransition.objects.filter(order=locked, key=key).exists():
        return locked  # resumed already (the other request, or the sync): no second step
    latest = _latest_pause(order.pk)
    if locked.job_id != order.job_id or (latest.pk if latest else None) != (pause.pk if pause else None):
        raise InvalidOrderTransition(
            f"order {order.pk} changed while its job was resumed; it is {locked.state}",
            extra={"state": locked.state, "event": mm.Event.RESUME.value},
        )
    return services.mm_order_transition(order_id=order.pk, event=mm.Event.RESUME, key=key, detail=detail)


def _latest_pause(order_id: int) -> MMOrderTransition | None:
    return MMOrderTransition.objects.filter(order_id=order_id, event=mm.Event.PAUSE.value).order_by("-id").first()


def _not_resumable(order_id: int, pause: MMOrderTransition | None) -> str:
    """Why the order's last pause is one resume cannot undo, or "" when the executor may resume it."""
    if pause is None:
        return ""
    for state in _ENDED_JOB_STATES:
        if pause.key.startswith(f"o{order_id}-pause-{state}-"):
            return f"its job {state} ({pause.detail.get('reason') or state})"
    if pause.key.endswith("-spec-refused"):
        return "its lost job cannot be replaced, the job spec would be refused"
    return ""


def _executor_still_listed(order: MMOrder) -> bool:
    """Whether the order's executor URL is still one of those configured or discovered for its exchange. An
    executor that came back elsewhere (another port, another host) is registered under its new URL; whatever
    answers, or does not, at the old one no longer runs the job. When discovery cannot tell, assume listed."""
    if order.executor_url in settings.EXECUTOR_URLS:
        return True
    try:
        return order.executor_url in discovered_executor_urls(exchange=order.exchange_account.exchange)
    except EasyEnclaveError:
        return True


def _restart_lost_job(order: MMOrder) -> MMOrder:
    """The executor at the order's URL answers that it has no such job: it restarted (a TD keeps its keys and
    jobs in memory only) or was replaced. A running order gets a new job, with a new id (the lost job's report
    chain ends at its last stored report), on an executor routed and attested afresh like the first; the
    funds never left the exchange. A paused order stays paused: the operator paused it, and resuming it is
    theirs to decide (stopping works, the wind-down knows the job is gone)."""
    lost = order.job_id
    if order.state != mm.State.RUNNING:
        services.alert_raise(
            "job_lost",
            f"order {order.pk}: the executor no longer knows job {lost}; the order stays {order.state}",
            dedup=f"job-lost:{lost}",
            detail={"order": order.pk, "job_id": lost},
            owner_id=order.owner_id,
        )
        return order
    cancelled = lost_job_cancel_orders(order, lost_job_id=lost)
    booked = lost_job_book_fills(order, lost_job_id=lost)
    executor_url = pick_executor(exchange=order.exchange_account.exchange)
    try:
        spec = build_job_spec(order, mid=order_mid(order))
    except WireError as exc:
        # No new job can run this order's strategy: it pauses (its orders are cancelled, its fills booked) and
        # the operator decides; stopping it brings the funds home.
        services.alert_raise(
            "job_spec_refused",
            f"order {order.pk}: its lost job cannot be replaced, the job spec would be refused: {exc}",
            dedup=f"job-spec-refused:{lost}",
            detail={"order": order.pk, "job_id": lost, "code": exc.code},
            owner_id=order.owner_id,
        )
        return services.mm_order_transition(
            order_id=order.pk,
            event=mm.Event.PAUSE,
            key=f"o{order.pk}-job-lost-{lost}-spec-refused",
            detail={"reason": f"the job spec would be refused: {exc}"[:400], "lost_job_id": lost},
        )
    with transaction.atomic():
        locked = MMOrder.objects.select_for_update().get(pk=order.pk)
        if locked.state != mm.State.RUNNING or locked.job_id != lost:
            return locked  # another worker handled it meanwhile
        locked.executor_url = executor_url
        locked.job_spec = spec
        locked.job_id = spec["job_id"]
        locked.executor_signing_key = ""
        locked.save(update_fields=["executor_url", "job_spec", "job_id", "executor_signing_key", "updated_at"])
        services.mm_order_transition(
            order_id=order.pk,
            event=mm.Event.JOB_LOST,
            key=f"o{order.pk}-job-lost-{lost}",
            detail={
                "lost_job_id": lost,
                "job_id": spec["job_id"],
                "executor": executor_url,
                "orders_cancelled": cancelled,
                "fills_booked": booked,
            },
        )
    log.warning(
        "job_lost", order_id=order.pk, lost_job_id=lost, job_id=spec["job_id"], executor=executor_url, fills=booked
    )
    return mm_order_start_job(order_id=order.pk)


def mm_order_wind_down(*, order_id: int) -> MMOrder:
    """stopping: have the executor cancel everything and stop, book its last reports, then release the job so
    the funds can be withdrawn back. Safe to repeat until it reports `stopped`."""
    order = MMOrder.objects.get(pk=order_id)
    if order.state != mm.State.STOPPING or not order.job_id:
        return order
    if order.executor_url and order.executor_signing_key:
        with client_for(order) as client:
            try:
                status = client.stop(order.job_id)
            except ExecutorRefused as exc:
                if (exc.extra or {}).get("executor_code") != "unknown_job":
                    raise
                status = {"state": "stopped"}  # the executor never had it, or lost it when it restarted
            if status["state"] not in ("stopped", "revoked", "failed"):
                status = client.status(order.job_id)
            if status["state"] not in ("stopped", "revoked", "failed"):
                return order  # still cancelling; the next beat looks again
        if status.get("job_id"):
            try:
                mm_order_pull_reports(order_id=order_id)
            except ReportRejected as exc:
                # The executor lost its standing (revoked, or failed re-verification): its last reports are
                # refused and alerted, and the job is released all the same so the funds can come back.
                if (exc.extra or {}).get("reason_code") != "unattested_signing_key":
                    raise
    MMOrder.objects.filter(pk=order_id, job_id=order.job_id).update(job_id="")
    log.info("job_released", order_id=order_id)
    return MMOrder.objects.get(pk=order_id)


def mm_order_revoke_job(*, order_id: int) -> MMOrder:
    """The order's key was revoked: the executor wipes it at once (cancelling what rests while the key still
    works) and the order stops; wind-down then books the last reports and releases the job."""
    order = MMOrder.objects.get(pk=order_id)
    if not order.job_id or not order.executor_url:
        return order
    with client_for(order) as client:
        try:
            client.revoke(order.job_id)
        except ExecutorRefused as exc:
            if (exc.extra or {}).get("executor_code") != "unknown_job":
                raise
    if order.state in (mm.State.STARTING, mm.State.RUNNING, mm.State.PAUSED, mm.State.DEPOSIT_CONFIRMED):
        order = services.mm_order_stop(order_id=order_id, reason="exchange key revoked")
    return mm_order_wind_down(order_id=order_id)
