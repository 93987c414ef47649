"""Alerts: raised once per fact with the operator they concern; acknowledged and resolved by a person, recorded who
and when, every bad request refused typed with nothing changed; and execution's rules (report gap, executor down,
attestation failure, kill switch), each raising once and clearing when its condition does."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.db.models import Q
from django.test import Client

from attestation.models import AttestationRecord, ExecutorRecord
from execution import alert_rules, alerts, jobs, services
from execution.domain import mm_order as mm
from execution.errors import AlertAlreadyAcknowledged, AlertAlreadyResolved, AlertNotYours, AlertUnknown
from execution.models import Alert, MMOrder
from mrmarket.roles import Role
from tests.factories import user_with
from tests.fixtures.orders import running_order, store_report
from tests.payouts.page_tree import parse

pytestmark = pytest.mark.django_db


def snapshot(alert: Alert) -> tuple[Any, ...]:
    alert.refresh_from_db()
    return (alert.acknowledged_at, alert.acknowledged_by_id, alert.resolved_at, alert.resolved_by_id)


@pytest.fixture
def operator() -> Any:
    return user_with(Role.OPERATOR, Role.STAFF)


def raised(owner: Any = None, dedup: str = "fact:1") -> Alert:
    assert alerts.alert_raise("test", "something happened", dedup=dedup, detail={"n": 1}, owner_id=owner and owner.pk)
    return Alert.objects.get(dedup_key=dedup, resolved_at__isnull=True)


# --- raising, acknowledging, resolving ------------------------------------------------------------------------


def test_an_alert_is_raised_once_per_fact_with_its_operator_and_severity(operator: Any) -> None:
    assert services.alert_raise("x", "m", dedup="d", detail={}, owner_id=operator.pk, severity="info")
    assert not services.alert_raise("x", "m again", dedup="d", detail={}, owner_id=operator.pk)
    (alert,) = Alert.objects.all()
    assert (alert.owner_id, alert.severity, alert.message) == (operator.pk, "info", "m")
    with pytest.raises(ValueError, match="severity"):
        services.alert_raise("x", "m", dedup="e", detail={}, severity="loud")
    assert Alert.objects.count() == 1


def test_the_operator_acknowledges_then_resolves_their_alert_recorded_who_and_when(operator: Any) -> None:
    alert = raised(operator)
    alerts.alert_acknowledge(alert_id=alert.pk, user=operator)
    acknowledged_at, by, resolved_at, _ = snapshot(alert)
    assert by == operator.pk
    assert acknowledged_at is not None
    assert resolved_at is None
    alerts.alert_resolve(alert_id=alert.pk, user=operator)
    _, _, resolved_at, resolved_by = snapshot(alert)
    assert resolved_by == operator.pk
    assert resolved_at is not None
    # The fact happening again is a new alert: the resolved one stays as history.
    assert alerts.alert_raise("test", "again", dedup="fact:1", detail={}, owner_id=operator.pk)
    assert Alert.objects.filter(dedup_key="fact:1").count() == 2


def test_bad_acknowledgements_and_resolutions_are_typed_and_change_nothing(operator: Any) -> None:
    alert = raised(operator)
    other = user_with(Role.OPERATOR, Role.STAFF)
    with pytest.raises(AlertUnknown):
        alerts.alert_resolve(alert_id=alert.pk + 1000, user=operator)
    with pytest.raises(AlertNotYours):
        alerts.alert_acknowledge(alert_id=alert.pk, user=other)
    with pytest.raises(AlertNotYours):
        alerts.alert_resolve(alert_id=alert.pk, user=other)
    assert snapshot(alert) == (None, None, None, None)
    alerts.alert_acknowledge(alert_id=alert.pk, user=operator)
    before = snapshot(alert)
    with pytest.raises(AlertAlreadyAcknowledged):
        alerts.alert_acknowledge(alert_id=alert.pk, user=operator)
    assert snapshot(alert) == before
    alerts.alert_resolve(alert_id=alert.pk, user=operator)
    before = snapshot(alert)
    with pytest.raises(AlertAlreadyResolved):
        alerts.alert_resolve(alert_id=alert.pk, user=operator)
    with pytest.raises(AlertAlreadyResolved):
        alerts.alert_acknowledge(alert_id=alert.pk, user=operator)
    assert snapshot(alert) == before


def test_a_system_alert_is_handled_by_whoever_may_change_alerts_not_by_an_operator(operator: Any) -> None:
    alert = raised(None)
    with pytest.raises(AlertNotYours):
        alerts.alert_resolve(alert_id=alert.pk, user=operator)
    ops = user_with(Role.STAFF)
    ops.user_permissions.add(Permission.objects.get(codename="change_alert"))
    ops = type(ops).objects.get(pk=ops.pk)  # permissions are cached per instance
    alerts.alert_resolve(alert_id=alert.pk, user=ops)
    assert snapshot(alert)[3] == ops.pk


def test_the_admin_actions_acknowledge_and_resolve_through_the_service() -> None:
    root = user_with(Role.STAFF, is_superuser=True)
    first, second = raised(None, "a"), raised(None, "b")
    alerts.alert_resolve(alert_id=second.pk, user=root)
    client = Client()
    client.force_login(root)
    url = f"/admin/{Alert._meta.app_label}/alert/"
    for action in ("acknowledge", "resolve"):
        response = client.post(url, {"action": action, ACTION_CHECKBOX_NAME: [first.pk, second.pk]})
        assert response.status_code == 302
    assert snapshot(first)[1] == root.pk
    assert snapshot(first)[3] == root.pk
    # The one resolved before was refused (typed) by both actions and kept as it was.
    assert snapshot(second)[0] is None
    page = parse(client.get(f"{url}{first.pk}/change/").content)
    assert root.username in page.one("div", class_="field-acknowledged_by").text()
    assert root.username in page.one("div", class_="field-resolved_by").text()


def test_a_rule_opens_its_findings_once_and_resolves_only_what_it_judged() -> None:
    finding = alerts.Finding(kind="k", dedup="k:1", message="m")
    assert alerts.alert_rule_apply(kinds=["k"], findings=[finding]) == alerts.RuleOutcome(1, 0)
    assert alerts.alert_rule_apply(kinds=["k"], findings=[finding]) == alerts.RuleOutcome(0, 0)
    alerts.alert_raise("k", "other scope", dedup="k:2", detail={})
    assert alerts.alert_rule_apply(kinds=["k"], findings=[], scope=Q(dedup_key="k:1")) == alerts.RuleOutcome(0, 1)
    assert list(Alert.objects.filter(resolved_at__isnull=True).values_list("dedup_key", flat=True)) == ["k:2"]
    with pytest.raises(ValueError, match="its own kinds"):
        alerts.alert_rule_apply(kinds=["k"], findings=[alerts.Finding(kind="z", dedup="z", message="m")])


# --- execution's rules --------------------------------------------------------------------------------------


def open_of(kind: str) -> list[Alert]:
    return list(Alert.objects.filter(kind=kind, resolved_at__isnull=True))


def test_report_overdue_raises_once_and_clears_when_a_report_covers_the_gap(operator: Any) -> None:
    order = running_order(operator, started_ago=timedelta(minutes=10))
    now = int(time.time() * 1000)
    assert alert_rules.rule_report_gap(now_ms=now).raised == 1
    assert alert_rules.rule_report_gap(now_ms=now).raised == 0
    (gap,) = open_of("report_gap")
    assert (gap.owner_id, gap.severity, gap.detail["job_id"]) == (operator.pk, "critical", order.job_id)
    store_report(order, 0, window_start_ms=now - 60_000)  # the report arrives
    alert_rules.order_report_gap_check(order, now_ms=now)  # the pull's own check clears it at once
    assert open_of("report_gap") == []
    gap.refresh_from_db()
    assert gap.resolved_at is not None
    assert gap.resolved_by is None


def test_report_overdue_clears_when_the_order_stops_running(operator: Any) -> None:
    order = running_order(operator, started_ago=timedelta(minutes=10))
    alert_rules.rule_report_gap()
    assert len(open_of("report_gap")) == 1
    MMOrder.objects.filter(pk=order.pk).update(state=mm.State.STOPPING)
    assert alert_rules.rule_report_gap().resolved == 1


def executor(url: str, state: str) -> ExecutorRecord:
    return ExecutorRecord.objects.create(url=url, state=state, build_version="1.0")


def test_executor_down_raises_once_per_operator_and_clears_when_it_answers(operator: Any) -> None:
    record = executor("http://exec-a", ExecutorRecord.State.UNREACHABLE)
    running_order(operator, job_id="j1")
    running_order(operator, job_id="j2")
    bystander = user_with(Role.OPERATOR)
    running_order(bystander, job_id="j3", executor_url="http://exec-b")
    executor("http://exec-b", ExecutorRecord.State.VERIFIED)
    assert alert_rules.rule_executor_down().raised == 1
    assert alert_rules.rule_executor_down().raised == 0
    (down,) = open_of("executor_down")
    assert down.owner_id == operator.pk
    assert len(down.detail["orders"]) == 2
    ExecutorRecord.objects.filter(pk=record.pk).update(state=ExecutorRecord.State.VERIFIED)
    assert alert_rules.rule_executor_down().resolved == 1


def test_attestation_failure_stays_open_after_the_job_is_wound_down_until_the_executor_verifies(
    operator: Any,
) -> None:
    record = executor("http://exec-a", ExecutorRecord.State.FAILED)
    AttestationRecord.objects.create(executor=record, nonce="n", ok=False, reason="measurement_not_allowed")
    order = running_order(operator)
    assert alert_rules.rule_attestation_failed().raised == 1
    (failed,) = open_of("attestation_failed")
    assert "measurement_not_allowed" in failed.message
    assert failed.severity == "critical"
    MMOrder.objects.filter(pk=order.pk).update(state=mm.State.SETTLED, job_id="")  # wound down, funds home
    outcome = alert_rules.rule_attestation_failed()
    assert (outcome.raised, outcome.resolved) == (0, 0)
    ExecutorRecord.objects.filter(pk=record.pk).update(state=ExecutorRecord.State.VERIFIED)
    assert alert_rules.rule_attestation_failed().resolved == 1


class HaltedExecutor:
    def __init__(self, status: dict[str, Any]) -> None:
        self._status = status

    def status(self, job_id: str) -> dict[str, Any]:
        return dict(self._status, job_id=job_id)


@pytest.fixture
def halted(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The executor's own status of a job its kill switch halted (`executor.engine.runner._kill_switch`)."""
    status = {"state": "halted", "reason": "kill switch: loss limit: net PnL -51 ≤ −50", "halted_at_ms": 1234}

    @contextlib.contextmanager
    def client_for(order: MMOrder) -> Iterator[HaltedExecutor]:
        yield HaltedExecutor(status)

    monkeypatch.setattr(jobs, "client_for", client_for)
    monkeypatch.setattr(jobs, "mm_order_pull_reports", lambda *, order_id: 0)
    monkeypatch.setattr(jobs, "executor_lost_trust", lambda order: False)
    return status


def test_the_kill_switch_raises_once_from_the_sync_and_clears_when_the_order_runs_again(
    operator: Any, halted: dict[str, Any]
) -> None:
    order = running_order(operator)
    assert jobs.mm_order_sync_job(order_id=order.pk).state == mm.State.PAUSED
    (tripped,) = open_of("kill_switch")
    assert tripped.owner_id == operator.pk
    assert "loss limit" in tripped.message
    assert alert_rules.rule_kill_switch().raised == 0  # the beat rule finds the same fact open
    services.mm_order_transition(order_id=order.pk, event=mm.Event.RESUME, key=f"o{order.pk}-resume-1")
    assert alert_rules.rule_kill_switch().resolved == 1
    assert open_of("kill_switch") == []


def test_a_pause_that_is_not_the_kill_switch_raises_no_kill_switch_alert(operator: Any, halted: dict[str, Any]) -> None:
    halted["reason"] = "credentials refused by the exchange"
    order = running_order(operator)
    jobs.mm_order_sync_job(order_id=order.pk)
    assert open_of("kill_switch") == []
    assert [a.kind for a in Alert.objects.all()] == ["job_halted"]
    assert alert_rules.rule_kill_switch().raised == 0
