"""Delivery of alert events to the alert webhook (`ALERT_WEBHOOK_URL`), each once, signed.

Every event (raised, acknowledged, resolved) has its `AlertDelivery` row, written in the transaction of the event
(`execution.alerts`), with the body frozen. An attempt locks the row (`SELECT … FOR UPDATE SKIP LOCKED`) for the
length of one POST: a second worker finds it locked and leaves, and one that comes after finds it delivered. So
two workers never both send it; only a crash between the receiver's answer and our commit sends it again, under
the same `X-MrMarket-Delivery`, which is what a receiver dedupes on.

Signature: `X-MrMarket-Signature: sha256=<hex HMAC-SHA256 over "<timestamp>.<raw body>" with ALERT_WEBHOOK_SECRET>`,
the timestamp (Unix seconds, the attempt's own) in `X-MrMarket-Timestamp`; a receiver checks both and refuses an
old timestamp (a replay). Transport failures, 5xx and 429 are retried with doubling waits up to
`ALERT_WEBHOOK_MAX_ATTEMPTS`; any other answer than 2xx is a refusal, kept with its status, not retried.
Neither the URL (it may be a capability) nor the secret is ever logged or stored with an error.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from execution.models import AlertDelivery
from mrmarket.http import outbound_client
from mrmarket.observability.logging import get_logger
from wire.redaction import redact_text

log = get_logger(__name__)

SIGNATURE_HEADER = "X-MrMarket-Signature"
TIMESTAMP_HEADER = "X-MrMarket-Timestamp"
DELIVERY_HEADER = "X-MrMarket-Delivery"
EVENT_HEADER = "X-MrMarket-Event"
USER_AGENT = "MrMarket-Alerts/1"
MAX_BACKOFF_SECONDS = 3600  # a receiver down for hours is retried hourly until the attempts run out
MAX_RETRY_AFTER_SECONDS = 3600  # a Retry-After beyond this is read as this


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=` and the hex HMAC-SHA256 of `<timestamp>.<body>` under the secret: what the receiver recomputes."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_headers(*, delivery: AlertDelivery, secret: str, now_s: int) -> dict[str, str]:
    timestamp = str(now_s)
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        DELIVERY_HEADER: str(delivery.delivery_id),
        EVENT_HEADER: delivery.event,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(secret, timestamp, delivery.body.encode()),
    }


@dataclass(frozen=True)
class Attempt:
    """What one call did: `outcome` is delivered, failed (retry in `retry_in` seconds), abandoned, busy (another
    worker holds the row), not_due, done (delivered or abandoned before), off (no webhook configured)."""

    outcome: str
    retry_in: float | None = None


def backoff_seconds(attempts: int) -> float:
    """The wait after the n-th failed attempt: the base, doubled each time, at most an hour."""
    base = float(settings.ALERT_WEBHOOK_BACKOFF_SECONDS)
    return float(min(base * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(min(int(value), MAX_RETRY_AFTER_SECONDS)) if value.isdigit() else None


def _error_text(exc: Exception) -> str:
    # An httpx error can quote the URL, and the URL can be a capability: only the type and a redacted text.
    text = redact_text(str(exc)).replace(settings.ALERT_WEBHOOK_URL, "[webhook url]")
    return f"{type(exc).__name__}: {text}"[:300]


def alert_delivery_attempt(*, delivery_id: int, now: datetime | None = None) -> Attempt:
    """Make one attempt at delivering one alert event, unless it is delivered, given up, not due, or being sent by
    another worker right now."""
    url, secret = settings.ALERT_WEBHOOK_URL, settings.ALERT_WEBHOOK_SECRET
    if not url:
        return Attempt("off")
    with transaction.atomic():
        row = AlertDelivery.objects.select_for_update(skip_locked=True).filter(pk=delivery_id).first()
        if row is None:
            exists = AlertDelivery.objects.filter(pk=delivery_id).exists()
            return Attempt("busy" if exists else "done")
        if row.delivered_at is not None or row.abandoned_at is not None:
            return Attempt("done")
        moment = now or timezone.now()
        if row.next_attempt_at is not None and row.next_attempt_at > moment:
            return Attempt("not_due", retry_in=(row.next_attempt_at - moment).total_seconds())
        return _send(row, url=url, secret=secret, moment=moment)


def _send(row: AlertDelivery, *, url: str, secret: str, moment: datetime) -> Attempt:
    row.attempts += 1
    retry_hint: float | None = None
    try:
        with outbound_client(timeout=float(settings.ALERT_WEBHOOK_TIMEOUT_SECONDS)) as client:
            response = client.post(
                url,
                content=row.body.encode(),
                headers=signed_headers(delivery=row, secret=secret, now_s=int(time.time())),
            )
    except httpx.HTTPError as exc:
        row.last_status, row.last_error, retryable = None, _error_text(exc), True
    else:
        row.last_status = response.status_code
        if response.is_success:
            row.delivered_at, row.next_attempt_at, row.last_error = moment, None, ""
            row.save(update_fields=["attempts", "last_status", "last_error", "delivered_at", "next_attempt_at"])
            log.info(
                "alert_webhook_delivered",
                delivery_id=str(row.delivery_id),
                alert_id=row.alert_id,
                alert_event=row.event,
            )
            return Attempt("delivered")
        retryable = response.status_code >= 500 or response.status_code == 429
        row.last_error = f"HTTP {response.status_code}"
        retry_hint = _retry_after(response) if response.status_code == 429 else None
    fields = ["attempts", "last_status", "last_error", "next_attempt_at", "abandoned_at"]
    if not retryable or row.attempts >= int(settings.ALERT_WEBHOOK_MAX_ATTEMPTS):
        row.abandoned_at, row.next_attempt_at = moment, None
        row.save(update_fields=fields)
        log.error(
            "alert_webhook_abandoned",
            delivery_id=str(row.delivery_id),
            alert_id=row.alert_id,
            attempts=row.attempts,
            status=row.last_status,
        )
        return Attempt("abandoned")
    wait = max(backoff_seconds(row.attempts), retry_hint or 0.0)
    row.next_attempt_at = moment + timedelta(seconds=wait)
    row.save(update_fields=fields)
    log.warning(
        "alert_webhook_failed",
        delivery_id=str(row.delivery_id),
        alert_id=row.alert_id,
        attempts=row.attempts,
        status=row.last_status,
        retry_in=wait,
    )
    return Attempt("failed", retry_in=wait)


def alert_deliveries_due(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Deliveries neither delivered nor given up whose next attempt is due: the sweep queues them again, should the
    task that was to send them have been lost."""
    moment = now or timezone.now()
    pending = AlertDelivery.objects.filter(delivered_at__isnull=True, abandoned_at__isnull=True)
    due = pending.filter(next_attempt_at__lte=moment) | pending.filter(
        next_attempt_at__isnull=True, created_at__lte=moment - timedelta(seconds=60)
    )
    return list(due.order_by("pk").values_list("pk", flat=True)[:limit])
