"""Acceptance, against the exchange simulator: the simulator's market makers on one side stop quoting; the oracle's
recorder (its real loop, ccxt.pro's stream) stores one-sided samples; the beat's alert rules raise `side_missing`
for the operator with a running job on the campaign within ALERT_SIDE_MISSING_SAMPLES samples of the stop, and the
webhook receives it once, signed. When the makers quote again, the alert clears and its resolution is delivered."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connections

from campaigns.models import Campaign
from devnet.exchange.fixtures import RunningExchange
from execution import alerts, tasks
from execution.models import Alert
from mrmarket.roles import Role
from payouts import tasks as payouts_tasks
from payouts.models import BookSnapshot
from payouts.recorder import GapReason, Recorder, now_ms
from tests.factories import user_with
from tests.fixtures.orders import running_order
from tests.fixtures.webhook_receiver import Receiver, webhook_receiver
from tests.payouts.conftest import SYMBOL

pytestmark = pytest.mark.django_db(transaction=True)  # the recorder writes from its own database thread
SECRET = "acceptance-secret-0123456789"
SAMPLES = 3


@pytest.fixture
def receiver(settings, sim: RunningExchange, redis_clean: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    settings.EXCHANGE_API_URLS = {"binance": sim.base_url}
    settings.RECORDER_REFRESH_SECONDS = 0.5
    settings.ALERT_SIDE_MISSING_SAMPLES = SAMPLES
    # A worker, inline: each committed alert event is delivered by the task as a worker would run it.
    monkeypatch.setattr(alerts, "_queue_delivery", lambda delivery_id: tasks.deliver_alert_webhook(delivery_id))
    with webhook_receiver() as running:
        settings.ALERT_WEBHOOK_URL, settings.ALERT_WEBHOOK_SECRET = running.url, SECRET
        yield running
    sim.admin("POST", "/_devnet/market/makers", {"symbol": SYMBOL, "side": "SELL", "quoting": True})


def one_sided_since(campaign: Campaign, since_ms: int) -> int:
    return BookSnapshot.objects.filter(campaign=campaign, t_ms__gte=since_ms, gap_reason=GapReason.ONE_SIDED).count()


def test_stopping_one_sides_makers_raises_side_missing_within_the_samples_and_the_webhook_gets_it_once(
    sim: RunningExchange, make_campaign: Callable[..., Campaign], receiver: Receiver
) -> None:
    start = now_ms() - 10_300
    campaign = make_campaign(start_ms=start, end_ms=start + 600_000, sample_seconds=1, max_spread_bps=40)
    operator = user_with(Role.OPERATOR, Role.STAFF)
    running_order(operator, campaign=campaign)
    seen: dict[str, Any] = {}

    def scenario() -> None:
        try:
            time.sleep(2.5)  # two-sided samples first
            seen["before"] = Alert.objects.filter(kind="side_missing").count()
            seen["stopped_ms"] = now_ms()
            sim.admin("POST", "/_devnet/market/makers", {"symbol": SYMBOL, "side": "SELL", "quoting": False})
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and "raised_after" not in seen:
                payouts_tasks.evaluate_alert_rules()  # beat, more often than the samples
                if Alert.objects.filter(kind="side_missing", resolved_at__isnull=True).exists():
                    seen["raised_after"] = one_sided_since(campaign, seen["stopped_ms"])
                time.sleep(0.2)
            sim.admin("POST", "/_devnet/market/makers", {"symbol": SYMBOL, "side": "SELL", "quoting": True})
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and "cleared" not in seen:
                payouts_tasks.evaluate_alert_rules()
                if not Alert.objects.filter(kind="side_missing", resolved_at__isnull=True).exists():
                    seen["cleared"] = True
                time.sleep(0.2)
        finally:
            seen["done"] = True
            connections.close_all()

    async def main() -> None:
        recorder = Recorder(shard=0, shards=1)

        async def drive() -> None:
            try:
                await asyncio.sleep(0.2)
                await asyncio.to_thread(scenario)
            finally:
                recorder.stop()

        driver = asyncio.ensure_future(drive())
        await recorder.run()
        await driver

    asyncio.run(main())
    assert seen.get("before") == 0, seen  # nothing while both sides quoted
    # Raised at the N-th one-sided sample, never before; the rule is run every 0.2 s against 1 s samples, so a
    # slow machine may let one more sample land before the run that sees the N-th (exactly N: test_alert_rules).
    assert SAMPLES <= seen.get("raised_after", 0) <= SAMPLES + 1, seen
    assert seen.get("cleared") is True, seen
    (alert,) = Alert.objects.filter(kind="side_missing")
    assert alert.owner_id == operator.pk
    assert alert.resolved_at is not None
    got = receiver.wait_for(2)
    assert [r.json["event"] for r in got] == ["raised", "resolved"]  # each once
    assert all(r.json["alert_id"] == alert.pk for r in got)
    assert all(r.signature_valid(SECRET) for r in got)
    assert len(set(receiver.deliveries())) == 2
