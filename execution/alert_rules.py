"""The execution app's alert rules, each a function of the database evaluated by beat (`tasks.evaluate_alert_rules`)
and applied by `alerts.alert_rule_apply`: idempotent by dedup key, and resolving its alerts once their condition
clears (docs/operators.md, "Alert rules"). Each alert names the operator it concerns (the order's owner).

- `report_gap` — a running job sent no report for longer than its interval plus EXECUTOR_REPORT_GRACE_SECONDS;
  clears when a report covers the gap, or the order is no longer running.
- `executor_down` — the executor of an operator's job (running, paused or starting) is unreachable in the registry;
  clears when it answers its checks again, or the operator has no job left on it.
- `attestation_failed` — the executor of an operator's job failed a verification or was revoked (its build left the
  allowlist); stays open, even once the job is wound down, until the executor verifies again or a person resolves it.
- `kill_switch` — an operator's job tripped its kill switch (loss, drawdown or rejects limit: the executor halts it
  and the sync pauses the order); clears when the order runs again or is stopped.

Reconciliation mismatches are raised and cleared by reconciliation itself (`execution.reconciliation`): it is the
one pass that asks the exchanges. The rules that read the oracle's book snapshots live in `payouts.alert_rules`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable

from django.conf import settings
from django.db.models import Q

from attestation.models import AttestationRecord, ExecutorRecord
from execution.alerts import Finding, RuleOutcome, Severity, alert_rule_apply
from execution.domain import mm_order as mm
from execution.models import Alert, ExecutionReport, MMOrder, MMOrderTransition

REPORT_GAP = "report_gap"
EXECUTOR_DOWN = "executor_down"
ATTESTATION_FAILED = "attestation_failed"
KILL_SWITCH = "kill_switch"
KILL_SWITCH_REASON_PREFIX = "kill switch"  # how the executor words a halt by its kill switch (`executor.engine`)

WITH_JOB = (mm.State.STARTING, mm.State.RUNNING, mm.State.PAUSED)


# --- report overdue -------------------------------------------------------------------------------------------


def report_gap_finding(order: MMOrder, *, now_ms: int) -> Finding | None:
    """The gap alert of a running job that has sent no report for longer than its interval and the grace."""
    if order.state != mm.State.RUNNING or order.job_spec is None or not order.job_id:
        return None
    last = ExecutionReport.objects.filter(order=order, job_id=order.job_id).order_by("-sequence").first()
    started = order.transitions.filter(event=mm.Event.JOB_RUNNING.value).values_list("created_at", flat=True).last()
    if started is None:
        return None
    since_ms = last.window_end_ms if last else int(started.timestamp() * 1000)
    allowed = (order.job_spec["report_interval_seconds"] + settings.EXECUTOR_REPORT_GRACE_SECONDS) * 1000
    if now_ms - since_ms <= allowed:
        return None
    return Finding(
        kind=REPORT_GAP,
        dedup=f"report-gap:{order.job_id}:{since_ms}",
        message=f"order {order.pk}: no report from job {order.job_id} since {since_ms} ms",
        detail={"order": order.pk, "job_id": order.job_id, "since_ms": since_ms},
        severity=Severity.CRITICAL,
        owner_id=order.owner_id,
    )


def rule_report_gap(*, now_ms: int | None = None) -> RuleOutcome:
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    findings = [
        f
        for order in MMOrder.objects.filter(state=mm.State.RUNNING).exclude(job_id="")
        if (f := report_gap_finding(order, now_ms=now)) is not None
    ]
    return alert_rule_apply(kinds=[REPORT_GAP], findings=findings)


def order_report_gap_check(order: MMOrder, *, now_ms: int | None = None) -> RuleOutcome:
    """The same rule for one order, after its reports were pulled: a new gap opens at once, a closed one clears."""
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    finding = report_gap_finding(order, now_ms=now)
    scope = Q(dedup_key__startswith=f"report-gap:{order.job_id}:") if order.job_id else Q(pk__in=[])
    return alert_rule_apply(kinds=[REPORT_GAP], findings=[finding] if finding else [], scope=scope)


# --- the executor of a job ------------------------------------------------------------------------------------


def _jobs_by_executor_and_owner() -> dict[tuple[str, int], list[MMOrder]]:
    jobs: dict[tuple[str, int], list[MMOrder]] = defaultdict(list)
    orders = MMOrder.objects.exclude(job_id="").exclude(executor_url="").order_by("pk")
    for order in orders.filter(state__in=WITH_JOB).only("pk", "owner_id", "executor_url", "job_id"):
        jobs[(order.executor_url, order.owner_id)].append(order)
    return jobs


def _executor_finding(
    kind: str, executor: ExecutorRecord, owner_id: int, orders: Iterable[MMOrder], text: str
) -> Finding:
    ids = [o.pk for o in orders]
    return Finding(
        kind=kind,
        dedup=f"{kind.replace('_', '-')}:{executor.url}:u{owner_id}",
        message=f"executor {executor.url} {text} (orders {', '.join(map(str, ids)) or 'wound down'})",
        detail={"executor": executor.url, "state": executor.state, "orders": ids},
        severity=Severity.CRITICAL,
        owner_id=owner_id,
    )


def rule_executor_down() -> RuleOutcome:
    jobs = _jobs_by_executor_and_owner()
    executors = {e.url: e for e in ExecutorRecord.objects.filter(url__in={url for url, _ in jobs})}
    findings = [
        _executor_finding(EXECUTOR_DOWN, executors[url], owner, orders, "is unreachable: it does not answer its checks")
        for (url, owner), orders in jobs.items()
        if url in executors and executors[url].state == ExecutorRecord.State.UNREACHABLE
    ]
    return alert_rule_apply(kinds=[EXECUTOR_DOWN], findings=findings)


def rule_attestation_failed() -> RuleOutcome:
    lost = (ExecutorRecord.State.FAILED, ExecutorRecord.State.REVOKED)
    jobs = _jobs_by_executor_and_owner()
    # Still open for an operator whose job there has since been wound down: the alert says what happened to it.
    for alert in Alert.objects.filter(kind=ATTESTATION_FAILED, resolved_at__isnull=True, owner__isnull=False):
        url = str(alert.detail.get("executor", ""))
        if url and alert.owner_id is not None:
            jobs.setdefault((url, alert.owner_id), [])
    executors = {e.url: e for e in ExecutorRecord.objects.filter(url__in={url for url, _ in jobs}, state__in=lost)}
    findings = []
    for (url, owner), orders in jobs.items():
        executor = executors.get(url)
        if executor is None:
            continue
        failed = AttestationRecord.objects.filter(executor=executor, ok=False).order_by("-id").first()
        why = f"failed its verification ({failed.reason})" if failed is not None else "failed its verification"
        text = "was revoked: its build left the allowlist" if executor.state == ExecutorRecord.State.REVOKED else why
        findings.append(_executor_finding(ATTESTATION_FAILED, executor, owner, orders, text))
    return alert_rule_apply(kinds=[ATTESTATION_FAILED], findings=findings)


# --- the kill switch ------------------------------------------------------------------------------------------


def kill_switch_dedup(job_id: str, halted_at_ms: object) -> str:
    return f"kill-switch:{job_id}:{halted_at_ms or 0}"


def is_kill_switch(reason: object) -> bool:
    return str(reason or "").startswith(KILL_SWITCH_REASON_PREFIX)


def rule_kill_switch() -> RuleOutcome:
    """An order paused because its job's kill switch tripped (the sync records the executor's reason and halt time
    in the pause): open while the order stays paused by it."""
    findings = []
    for order in MMOrder.objects.filter(state=mm.State.PAUSED).exclude(job_id="").order_by("pk"):
        pause = MMOrderTransition.objects.filter(order=order, to_state=mm.State.PAUSED.value).order_by("-id").first()
        if pause is None or not is_kill_switch(pause.detail.get("reason")):
            continue
        findings.append(
            Finding(
                kind=KILL_SWITCH,
                dedup=kill_switch_dedup(
                    str(pause.detail.get("job_id") or order.job_id), pause.detail.get("halted_at_ms")
                ),
                message=f"order {order.pk}: job {order.job_id} halted, {pause.detail.get('reason')}",
                detail={"order": order.pk, "job_id": order.job_id, "reason": str(pause.detail.get("reason"))},
                severity=Severity.CRITICAL,
                owner_id=order.owner_id,
            )
        )
    return alert_rule_apply(kinds=[KILL_SWITCH], findings=findings)


RULES: tuple[Callable[[], RuleOutcome], ...] = (
    rule_report_gap,
    rule_executor_down,
    rule_attestation_failed,
    rule_kill_switch,
)
