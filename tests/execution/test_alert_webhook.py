"""The alert webhook against a local receiver: each event (raised, acknowledged, resolved) delivered exactly once,
signed, under a stable delivery id; retried after a 5xx, a 429 or a refused connection, not after another refusal,
given up after its attempts; two workers delivering at once still deliver once (PostgreSQL row locks); and neither
the secret nor the URL in any log or stored error."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from celery.exceptions import Retry
from django.utils import timezone

from execution import alert_webhook, alerts, tasks
from execution.models import Alert, AlertDelivery
from mrmarket.roles import Role
from tests.factories import user_with
from tests.fixtures.threads import at_once
from tests.fixtures.webhook_receiver import Receiver, webhook_receiver
from tests.plugins.require import require_postgresql

pytestmark = pytest.mark.django_db
SECRET = "whsec-test-0123456789abcdef"


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    with webhook_receiver() as running:
        settings.ALERT_WEBHOOK_URL = running.url
        settings.ALERT_WEBHOOK_SECRET = SECRET
        settings.ALERT_WEBHOOK_BACKOFF_SECONDS = 0.0  # a failed attempt is due again at once
        yield running


def queued(callbacks: list[Any]) -> list[int]:
    """The delivery ids the committed events queued (each callback is `partial(_queue_delivery, id)`)."""
    ids = []
    for callback in callbacks:
        assert isinstance(callback, functools.partial)
        assert callback.func is alerts._queue_delivery
        ids.append(callback.args[0])
    return ids


def raise_one(owner: Any = None) -> Alert:
    assert alerts.alert_raise(
        "side_missing", "the asks are gone", dedup="f:1", detail={"campaign": "0xabc"}, owner_id=owner and owner.pk
    )
    return Alert.objects.get(dedup_key="f:1")


def test_each_event_is_delivered_once_signed_with_a_stable_delivery_id(
    receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    operator = user_with(Role.OPERATOR, Role.STAFF)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        alert = raise_one(operator)
        alerts.alert_acknowledge(alert_id=alert.pk, user=operator)
        alerts.alert_resolve(alert_id=alert.pk, user=operator)
    ids = queued(callbacks)
    assert len(ids) == 3
    for delivery_id in ids:
        tasks.deliver_alert_webhook(delivery_id)  # the task as a worker runs it
        tasks.deliver_alert_webhook(delivery_id)  # queued twice (the sweep, a redelivery): sent once
    got = receiver.wait_for(3)
    assert len(got) == 3
    assert [r.json["event"] for r in got] == ["raised", "acknowledged", "resolved"]
    assert all(r.signature_valid(SECRET) for r in got)
    assert not got[0].signature_valid("another secret")
    rows = {str(d.delivery_id): d for d in AlertDelivery.objects.all()}
    assert sorted(receiver.deliveries()) == sorted(rows)  # one request per delivery id
    first = got[0].json
    assert first["alert_id"] == alert.pk
    assert (first["kind"], first["severity"], first["message"]) == ("side_missing", "critical", "the asks are gone")
    assert first["detail"] == {"campaign": "0xabc"}
    assert first["operator_id"] == operator.pk
    assert first["at"].endswith("Z")
    assert first["by"] is None
    assert got[2].json["by"] == operator.get_username()
    assert got[0].headers["x-mrmarket-event"] == "raised"
    assert got[0].headers["content-type"] == "application/json"
    assert all(d.delivered_at is not None and d.attempts == 1 for d in rows.values())
    # What was signed is the raw body: the same bytes the row froze.
    assert {r.body.decode() for r in got} == {d.body for d in rows.values()}


def test_no_webhook_configured_queues_nothing(settings, django_capture_on_commit_callbacks: Any) -> None:
    settings.ALERT_WEBHOOK_URL = ""
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        raise_one()
    assert callbacks == []
    assert AlertDelivery.objects.count() == 0


def test_a_500_is_retried_and_the_event_arrives_once_more_under_the_same_delivery_id(receiver: Receiver) -> None:
    receiver.statuses[:] = [500]
    raise_one()
    (delivery,) = AlertDelivery.objects.all()
    with pytest.raises(Retry):
        tasks.deliver_alert_webhook(delivery.pk)  # the task asks Celery to retry it after the backoff
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.last_status, delivery.last_error) == (1, 500, "HTTP 500")
    assert delivery.delivered_at is None
    assert delivery.next_attempt_at is not None
    assert alert_webhook.alert_deliveries_due() == [delivery.pk]  # the sweep would queue it again
    assert alert_webhook.alert_delivery_attempt(delivery_id=delivery.pk).outcome == "delivered"
    assert alert_webhook.alert_delivery_attempt(delivery_id=delivery.pk).outcome == "done"
    got = receiver.wait_for(2)
    assert len(got) == 2
    assert got[0].headers["x-mrmarket-delivery"] == got[1].headers["x-mrmarket-delivery"] == str(delivery.delivery_id)
    assert got[0].body == got[1].body
    assert all(r.signature_valid(SECRET) for r in got)
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.last_status, delivery.last_error) == (2, 200, "")
    assert alert_webhook.alert_deliveries_due() == []


def test_the_backoff_waits_and_a_429_waits_as_long_as_it_asks(receiver: Receiver, settings) -> None:
    settings.ALERT_WEBHOOK_BACKOFF_SECONDS = 2.0
    receiver.statuses[:] = [503, 429]
    raise_one()
    (delivery,) = AlertDelivery.objects.all()
    first = alert_webhook.alert_delivery_attempt(delivery_id=delivery.pk)
    assert (first.outcome, first.retry_in) == ("failed", 2.0)
    # Not due yet: nothing is sent.
    assert alert_webhook.alert_delivery_attempt(delivery_id=delivery.pk).outcome == "not_due"
    assert len(receiver.received) == 1
    later = timezone.now() + timedelta(seconds=3)
    second = alert_webhook.alert_delivery_attempt(delivery_id=delivery.pk, now=later)
    assert (second.outcome, second.retry_in) == ("failed", 4.0)  # doubled
    assert alert_webhook.backoff_seconds(30) == alert_webhook.MAX_BACKOFF_SECONDS


def test_a_refusal_other_than_5xx_or_429_is_not_retried(receiver: Receiver) -> None:
    receiver.statuses[:] = [400]
    raise_one()
    (delivery,) = AlertDelivery.objects.all()
    assert alert_webhook.alert_delivery_attempt(delivery_id=delivery.pk).outcome == "abandoned"
    assert alert_webhook.alert_delivery_attempt(delivery_id=delivery.pk).outcome == "done"
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.last_status, delivery.delivered_at) == (1, 400, None)
    assert delivery.abandoned_at is not None
    assert alert_webhook.alert_deliveries_due() == []


def test_attempts_are_bounded(receiver: Receiver, settings) -> None:
    settings.ALERT_WEBHOOK_MAX_ATTEMPTS = 3
    receiver.statuses[:] = [500, 502, 504, 200]
    raise_one()
    (delivery,) = AlertDelivery.objects.all()
    outcomes = [alert_webhook.alert_delivery_attempt(delivery_id=delivery.pk).outcome for _ in range(4)]
    assert outcomes == ["failed", "failed", "abandoned", "done"]
    assert len(receiver.received) == 3


def test_a_refused_connection_is_retried_and_neither_secret_nor_url_is_logged(settings, json_logs: Any) -> None:
    with webhook_receiver() as gone:
        url = gone.url.replace("/hook", "/hooks/T000/B000/capability-token-in-the-path")
    settings.ALERT_WEBHOOK_URL, settings.ALERT_WEBHOOK_SECRET = url, SECRET  # nothing listens there any more
    settings.ALERT_WEBHOOK_BACKOFF_SECONDS = 0.0
    raise_one()
    (delivery,) = AlertDelivery.objects.all()
    assert alert_webhook.alert_delivery_attempt(delivery_id=delivery.pk).outcome == "failed"
    delivery.refresh_from_db()
    assert delivery.last_status is None
    assert delivery.last_error.startswith("ConnectError")
    logged = json.dumps(json_logs.lines)
    assert "alert_webhook_failed" in logged
    for secret in (SECRET, "capability-token-in-the-path", url):
        assert secret not in logged
        assert secret not in delivery.last_error


@pytest.mark.django_db(transaction=True)
def test_two_workers_delivering_at_once_deliver_once(settings) -> None:
    require_postgresql("SQLite has no row locks: two workers there serialize on the database instead")
    with webhook_receiver(delay_s=1.0) as receiver:  # holds the first attempt open while the second arrives
        settings.ALERT_WEBHOOK_URL, settings.ALERT_WEBHOOK_SECRET = receiver.url, SECRET
        raise_one()
        (delivery,) = AlertDelivery.objects.all()
        attempt = functools.partial(alert_webhook.alert_delivery_attempt, delivery_id=delivery.pk)
        outcomes = sorted(o.outcome for o in at_once([attempt, attempt, attempt]))
        # One sends; the others find the row locked by it (busy) or, arriving after its commit, delivered (done).
        assert outcomes[0] == "busy"
        assert outcomes.count("delivered") == 1
        assert set(outcomes) <= {"busy", "delivered", "done"}
        # Again, two at once: neither sends (one may find the row locked by the other, which is reading it).
        assert {o.outcome for o in at_once([attempt, attempt])} <= {"done", "busy"}
        assert len(receiver.wait_for(1)) == 1
        assert receiver.deliveries() == [str(delivery.delivery_id)]
    delivery.refresh_from_db()
    assert delivery.attempts == 1
    assert delivery.delivered_at is not None
