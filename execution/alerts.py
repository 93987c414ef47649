"""Alerts: raised once per fact, acknowledged and resolved by a person (recorded who and when), or resolved by the
rule that raised them once their condition cleared; every one of those events queued for the alert webhook in
the same database transaction (`execution.alert_webhook` delivers it).

A rule is a function that looks at the database and returns the alerts that should be open now (`Finding`s);
`alert_rule_apply` opens the new ones and resolves the open ones of the rule's kinds it no longer finds. Opening is
idempotent by `dedup_key` (unique among open alerts), so a rule run twice, or by two workers, opens one alert.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from execution.errors import AlertAlreadyAcknowledged, AlertAlreadyResolved, AlertNotYours, AlertUnknown
from execution.models import Alert, AlertDelivery
from mrmarket.observability.logging import get_logger

log = get_logger(__name__)

Severity = Alert.Severity
User = Any  # a user (request.user: the user model, or AnonymousUser)


@dataclass(frozen=True)
class Finding:
    """An alert a rule says should be open now."""

    kind: str
    dedup: str
    message: str
    detail: dict[str, Any] = field(default_factory=dict)
    severity: str = Severity.WARNING
    owner_id: int | None = None


@dataclass(frozen=True)
class RuleOutcome:
    raised: int
    resolved: int


# --- raising ---------------------------------------------------------------------------------------------------


def alert_raise(
    kind: str,
    message: str,
    *,
    dedup: str,
    detail: dict[str, Any],
    warning: bool = False,
    severity: str | None = None,
    owner_id: int | None = None,
) -> bool:
    """Open an alert for a fact, once while it is open (`dedup` is unique among open alerts); True when this call
    opened it. Critical unless `warning` or another `severity` is given; `owner_id` is the operator it concerns."""
    level = severity or (Severity.WARNING if warning else Severity.CRITICAL)
    if level not in Severity.values:
        raise ValueError(f"unknown alert severity {level!r}")
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                kind=kind, severity=level, message=message[:500], detail=detail, dedup_key=dedup, owner_id=owner_id
            )
            _record_event(alert, AlertDelivery.Event.RAISED, at=alert.created_at, by=None)
    except IntegrityError:
        return False  # already open for this fact
    logger = log.error if level == Severity.CRITICAL else log.warning if level == Severity.WARNING else log.info
    fields = {(k if k != "event" else "detail_event"): str(v) for k, v in detail.items()}
    logger(kind, **{**fields, "alert_id": alert.pk, "owner_id": owner_id})
    return True


# --- a person acknowledges or resolves ----------------------------------------------------------------------------


def alert_may_handle(*, user: User, alert: Alert) -> bool:
    """Whoever may change every alert (the admin's change permission; a superuser), or the operator it concerns."""
    if not user.is_authenticated or not user.is_active:
        return False
    return bool(user.has_perm("execution.change_alert")) or (alert.owner_id is not None and alert.owner_id == user.pk)


def _locked_for(alert_id: int, user: User) -> Alert:
    alert = Alert.objects.select_for_update().filter(pk=alert_id).first()
    if alert is None:
        raise AlertUnknown(f"no alert {alert_id}", extra={"alert_id": alert_id})
    if not alert_may_handle(user=user, alert=alert):
        raise AlertNotYours("this alert concerns another operator", extra={"alert_id": alert_id})
    if alert.resolved_at is not None:
        raise AlertAlreadyResolved(
            f"alert {alert_id} was resolved at {alert.resolved_at.isoformat()}", extra={"alert_id": alert_id}
        )
    return alert


@transaction.atomic
def alert_acknowledge(*, alert_id: int, user: User) -> Alert:
    """Someone is on it: recorded with who and when. Refused (typed, nothing changed) for an unknown alert, one the
    user may not handle, or one already acknowledged or resolved."""
    alert = _locked_for(alert_id, user)
    if alert.acknowledged_at is not None:
        raise AlertAlreadyAcknowledged(
            f"alert {alert_id} was acknowledged at {alert.acknowledged_at.isoformat()}", extra={"alert_id": alert_id}
        )
    alert.acknowledged_at = timezone.now()
    alert.acknowledged_by_id = user.pk
    alert.save(update_fields=["acknowledged_at", "acknowledged_by"])
    _record_event(alert, AlertDelivery.Event.ACKNOWLEDGED, at=alert.acknowledged_at, by=user)
    log.info("alert_acknowledged", alert_id=alert.pk, kind=alert.kind, user_id=user.pk)
    return alert


@transaction.atomic
def alert_resolve(*, alert_id: int, user: User) -> Alert:
    """A person says the fact is gone: recorded with who and when. Refused (typed, nothing changed) for an unknown
    alert, one the user may not handle, or one already resolved. Should the fact still hold, its rule opens a new
    alert at its next run."""
    alert = _locked_for(alert_id, user)
    alert.resolved_at = timezone.now()
    alert.resolved_by_id = user.pk
    alert.save(update_fields=["resolved_at", "resolved_by"])
    _record_event(alert, AlertDelivery.Event.RESOLVED, at=alert.resolved_at, by=user)
    log.info("alert_resolved", alert_id=alert.pk, kind=alert.kind, user_id=user.pk)
    return alert


# --- a rule resolves what cleared ---------------------------------------------------------------------------------


@transaction.atomic
def alerts_resolve_cleared(*, where: Q) -> int:
    """Resolve the open alerts matching `where` because their condition cleared (no person: `resolved_by` empty).
    Locked in id order, so two rules resolving the same alerts take turns; each resolution is delivered once."""
    now = timezone.now()
    resolved = 0
    # Skipping a locked one: whoever holds it is resolving it (or acknowledging it; the next run sees it again).
    for alert in (
        Alert.objects.filter(where, resolved_at__isnull=True).select_for_update(skip_locked=True).order_by("pk")
    ):
        alert.resolved_at = now
        alert.save(update_fields=["resolved_at"])
        _record_event(alert, AlertDelivery.Event.RESOLVED, at=now, by=None)
        log.info("alert_cleared", alert_id=alert.pk, kind=alert.kind, dedup=alert.dedup_key)
        resolved += 1
    return resolved


def alerts_resolve_keys(dedup_keys: Iterable[str]) -> int:
    """Resolve the open alerts of these facts: the facts are no longer true."""
    keys = list(dedup_keys)
    return alerts_resolve_cleared(where=Q(dedup_key__in=keys)) if keys else 0


def alert_rule_apply(*, kinds: Iterable[str], findings: Iterable[Finding], scope: Q | None = None) -> RuleOutcome:
    """Make the open alerts of a rule's `kinds` (within `scope`, when the rule only judged part of them) exactly its
    `findings`: open each finding not open yet, resolve each open alert it no longer finds."""
    wanted = {f.dedup: f for f in findings}
    kinds = list(kinds)
    if any(f.kind not in kinds for f in wanted.values()):
        raise ValueError("a rule's findings are of its own kinds")
    raised = sum(
        alert_raise(f.kind, f.message, dedup=f.dedup, detail=f.detail, severity=f.severity, owner_id=f.owner_id)
        for f in wanted.values()
    )
    cleared = Q(kind__in=kinds) & ~Q(dedup_key__in=list(wanted))
    resolved = alerts_resolve_cleared(where=cleared & scope if scope is not None else cleared)
    return RuleOutcome(raised=raised, resolved=resolved)


def alert_rules_run(rules: Iterable[Callable[[], RuleOutcome]]) -> None:
    """Run each rule on its own: one that fails is logged, and the others still run."""
    for rule in rules:
        try:
            outcome = rule()
        except Exception as exc:  # one broken rule must not silence the others
            log.exception("alert_rule_failed", rule=rule.__name__, error_type=type(exc).__name__)
            continue
        if outcome.raised or outcome.resolved:
            log.info("alert_rule_applied", rule=rule.__name__, raised=outcome.raised, resolved=outcome.resolved)


# --- the webhook's outbox -----------------------------------------------------------------------------------------


def webhook_body(alert: Alert, event: str, *, at: datetime, by: User | None) -> str:
    """The JSON body of one alert event, as it is signed and sent (docs/operators.md, "The alert webhook")."""
    document = {
        "alert_id": alert.pk,
        "kind": alert.kind,
        "severity": alert.severity,
        "message": alert.message,
        "detail": alert.detail,
        "operator_id": alert.owner_id,
        "event": event,
        "at": at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "by": by.get_username() if by is not None and by.is_authenticated else None,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _record_event(alert: Alert, event: str, *, at: datetime, by: User | None) -> None:
    """Queue the event for the webhook, in the transaction that made it: it is delivered if and only if the event
    committed. Nothing when no webhook is configured."""
    if not settings.ALERT_WEBHOOK_URL:
        return
    delivery = AlertDelivery.objects.create(alert=alert, event=event, body=webhook_body(alert, event, at=at, by=by))
    transaction.on_commit(functools.partial(_queue_delivery, delivery.pk))


def _queue_delivery(delivery_id: int) -> None:
    # Imported when called: the tasks module imports the flows, which import this module.
    from execution.tasks import deliver_alert_webhook  # noqa: PLC0415

    deliver_alert_webhook.delay(delivery_id)
