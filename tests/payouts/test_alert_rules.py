"""The alert rules that read what the oracle sees: a side of the book missing for N samples of the recorder (raised
once, kept through an uninformative gap, cleared by a two-sided sample or the job ending), a job quoting wider than
the campaign's band; and the acceptance path at the level of the recorder's rows: one side empty for N samples
raises `side_missing` within those samples, and the webhook receives it once."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest

from campaigns.models import Campaign
from execution import alerts, tasks
from execution.domain import mm_order as mm
from execution.models import Alert, MMOrder
from mrmarket.roles import Role
from payouts import alert_rules
from payouts import tasks as payouts_tasks
from payouts.domain.book_alerts import Sides, missing_sides_text, sample_sides, spread_outside_band
from payouts.services import book_snapshot_record
from tests.factories import user_with
from tests.fixtures.orders import running_order, store_report
from tests.fixtures.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.django_db
T0 = 1_700_000_000_000
BAND = 40  # bps
TWO_SIDED = {"bids": [["0.9990", "100"], ["0.9980", "50"]], "asks": [["1.0010", "100"]]}


def record(campaign: Campaign, k: int, *, book: dict[str, Any] | None = None, gap: str = "") -> None:
    book_snapshot_record(
        campaign_id=campaign.pk,
        t_ms=T0 + k * 10_000,
        book=book,
        exchange_ts_ms=T0 + k * 10_000,
        recorded_ms=T0 + k * 10_000 + 5,
        source="ws" if book is not None else "",
        gap_reason=gap,
    )


def one_sided(campaign: Campaign, k: int) -> None:
    record(campaign, k, gap="one_sided_book")


def open_side_missing() -> list[Alert]:
    return list(Alert.objects.filter(kind="side_missing", resolved_at__isnull=True))


@pytest.fixture
def setup(make_campaign: Callable[..., Campaign], settings) -> tuple[Any, Campaign, MMOrder]:
    settings.ALERT_SIDE_MISSING_SAMPLES = 3
    campaign = make_campaign(start_ms=T0 - 60_000, end_ms=T0 + 3_600_000, sample_seconds=10, max_spread_bps=BAND)
    operator = user_with(Role.OPERATOR, Role.STAFF)
    return operator, campaign, running_order(operator, campaign=campaign)


# --- the pure part ----------------------------------------------------------------------------------------------


def test_a_sample_says_which_sides_have_a_level_inside_the_band() -> None:
    assert sample_sides(book=TWO_SIDED, gap_reason="", max_spread_bps=BAND) is Sides.BOTH
    wide = {"bids": [["0.99", "1"]], "asks": [["1.01", "1"]]}  # each 100 bps from the mid
    assert sample_sides(book=wide, gap_reason="", max_spread_bps=BAND) is Sides.NEITHER
    assert sample_sides(book=wide, gap_reason="", max_spread_bps=100) is Sides.NEITHER  # "this far" scores nothing
    assert sample_sides(book=wide, gap_reason="", max_spread_bps=101) is Sides.BOTH
    assert sample_sides(book={"bids": [], "asks": [["1", "1"]]}, gap_reason="", max_spread_bps=BAND) is Sides.NO_BIDS
    assert sample_sides(book={"bids": [["1", "1"]], "asks": []}, gap_reason="", max_spread_bps=BAND) is Sides.NO_ASKS
    assert sample_sides(book={"bids": [], "asks": []}, gap_reason="", max_spread_bps=BAND) is Sides.NEITHER
    assert sample_sides(book=None, gap_reason="one_sided_book", max_spread_bps=BAND) is Sides.ONE_SIDED
    assert sample_sides(book=None, gap_reason="exchange_unavailable", max_spread_bps=BAND) is Sides.UNKNOWN
    assert not Sides.UNKNOWN.missing
    assert not Sides.BOTH.missing
    assert missing_sides_text([Sides.NO_ASKS, Sides.ONE_SIDED]) == "the asks"
    assert missing_sides_text([Sides.NO_ASKS, Sides.NO_BIDS]) == "both sides"
    assert missing_sides_text([Sides.ONE_SIDED]) == "one side"
    assert spread_outside_band(spread_bps="80", max_spread_bps=BAND) is True
    assert spread_outside_band(spread_bps="79.99", max_spread_bps=BAND) is False
    assert spread_outside_band(spread_bps=None, max_spread_bps=BAND) is None


# --- side missing -----------------------------------------------------------------------------------------------


def test_a_side_missing_for_n_samples_raises_once_and_a_two_sided_sample_clears_it(setup) -> None:
    operator, campaign, order = setup
    record(campaign, 0, book=TWO_SIDED)
    one_sided(campaign, 1)
    one_sided(campaign, 2)
    assert alert_rules.rule_side_missing().raised == 0  # two samples: not yet
    one_sided(campaign, 3)
    assert alert_rules.rule_side_missing().raised == 1  # the third
    assert alert_rules.rule_side_missing().raised == 0  # idempotent
    (alert,) = open_side_missing()
    assert alert.owner_id == operator.pk
    assert alert.severity == "warning"
    assert alert.detail["samples"] == 3
    assert alert.detail["orders"] == [order.pk]
    assert alert.detail["from_ms"] == T0 + 10_000
    assert alert.detail["to_ms"] == T0 + 30_000
    assert "one side" in alert.message
    # A gap that says nothing about the sides (the exchange was down) neither raises again nor clears.
    record(campaign, 4, gap="exchange_unavailable")
    outcome = alert_rules.rule_side_missing()
    assert (outcome.raised, outcome.resolved) == (0, 0)
    record(campaign, 5, book=TWO_SIDED)
    assert alert_rules.rule_side_missing().resolved == 1
    alert.refresh_from_db()
    assert alert.resolved_at is not None
    assert alert.resolved_by is None


def test_quotes_beyond_the_band_on_both_sides_count_as_missing(setup) -> None:
    _, campaign, _ = setup
    for k in range(3):
        record(campaign, k, book={"bids": [["0.98", "5"]], "asks": [["1.02", "5"]]})
    alert_rules.rule_side_missing()
    (alert,) = open_side_missing()
    assert "both sides" in alert.message


def test_side_missing_concerns_only_operators_with_a_running_job_on_the_campaign(
    setup, make_campaign: Callable[..., Campaign]
) -> None:
    operator, campaign, order = setup
    elsewhere = make_campaign(start_ms=T0 - 60_000, end_ms=T0 + 3_600_000, sample_seconds=10, max_spread_bps=BAND)
    running_order(user_with(Role.OPERATOR), campaign=elsewhere, job_id="other-job")
    for k in range(3):
        one_sided(campaign, k)
    alert_rules.rule_side_missing()
    assert [a.owner_id for a in open_side_missing()] == [operator.pk]
    # The operator's job stops: the alert no longer concerns anyone running there.
    MMOrder.objects.filter(pk=order.pk).update(state=mm.State.STOPPING)
    assert alert_rules.rule_side_missing().resolved == 1
    assert open_side_missing() == []


# --- spread outside the band --------------------------------------------------------------------------------------


def test_a_job_quoting_wider_than_the_band_raises_once_and_clears_when_it_narrows(setup) -> None:
    operator, _, order = setup
    store_report(order, 0, window_start_ms=T0, spread_bps="95.5")
    assert alert_rules.rule_spread_outside_band().raised == 1
    assert alert_rules.rule_spread_outside_band().raised == 0
    (alert,) = Alert.objects.filter(kind="spread_outside_band", resolved_at__isnull=True)
    assert alert.owner_id == operator.pk
    assert alert.detail["spread_bps"] == "95.5"
    store_report(order, 1, window_start_ms=T0 + 60_000, spread_bps=None)  # one-sided all window: says nothing
    assert alert_rules.rule_spread_outside_band().resolved == 0
    store_report(order, 2, window_start_ms=T0 + 120_000, spread_bps="30")
    assert alert_rules.rule_spread_outside_band().resolved == 1


# --- acceptance, at the recorder's rows -----------------------------------------------------------------------


def test_one_side_empty_for_n_samples_raises_side_missing_within_them_and_the_webhook_receives_it_once(
    setup, settings, django_capture_on_commit_callbacks: Any
) -> None:
    operator, campaign, _ = setup
    with webhook_receiver() as receiver:
        settings.ALERT_WEBHOOK_URL, settings.ALERT_WEBHOOK_SECRET = receiver.url, "acceptance-secret-0123456789"
        record(campaign, 0, book=TWO_SIDED)
        raised_at = None
        for k in range(1, 6):  # the makers of one side stop: each sample from now on is one-sided
            one_sided(campaign, k)
            with django_capture_on_commit_callbacks(execute=False) as callbacks:
                payouts_tasks.evaluate_alert_rules()  # what beat runs after each sample
            for callback in callbacks:
                assert isinstance(callback, functools.partial)
                assert callback.func is alerts._queue_delivery
                tasks.deliver_alert_webhook(*callback.args)
            if raised_at is None and open_side_missing():
                raised_at = k
        assert raised_at == settings.ALERT_SIDE_MISSING_SAMPLES
        got = receiver.wait_for(1)
        assert len(got) == 1
        assert got[0].json["kind"] == "side_missing"
        assert got[0].json["event"] == "raised"
        assert got[0].json["operator_id"] == operator.pk
        assert got[0].signature_valid("acceptance-secret-0123456789")
