"""The execution app's health checks (registered from ExecutionConfig.ready()): the exchanges it trades on,
and the alerts still open. Both only read."""

from __future__ import annotations

from django.conf import settings

from execution.models import Alert, ExchangeAccount
from mrmarket import health
from mrmarket.exchanges.client import exchange_client


def check_exchanges() -> tuple[health.State, str]:
    """Each exchange the deployment trades on answers its public clock through ccxt (no key needed)."""
    exchanges = sorted(
        set(settings.EXCHANGE_API_URLS)
        | set(ExchangeAccount.objects.filter(status=ExchangeAccount.Status.ACTIVE).values_list("exchange", flat=True))
    )
    if not exchanges:
        return "not_configured", "no exchange configured or enrolled yet"
    failures = []
    for exchange_id in exchanges:
        try:
            client = exchange_client(exchange_id)
            client.timeout = int(health.check_timeout() * 1000)
            client.fetch_time()
        except Exception as exc:  # any failure of one exchange is reported, not raised
            failures.append(f"{exchange_id}: {health.error_text(exc)}")
    if failures:
        return "fail", "; ".join(failures)
    return "ok", f"{', '.join(exchanges)} answering"


def check_alerts() -> tuple[health.State, str]:
    open_alerts = Alert.objects.filter(resolved_at__isnull=True)
    count = open_alerts.count()
    if not count:
        return "ok", "no open alerts"
    latest = open_alerts.order_by("-id").first()
    return "fail", f"{count} open alert(s); latest: {latest.message if latest else ''}"


def register_checks() -> None:
    health.register("exchanges", check_exchanges)
    health.register("alerts", check_alerts, in_caller_thread=True)
