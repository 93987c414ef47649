"""The market-data recorder against the exchange simulator: rows at exactly the aligned sample times, levels
trimmed to the band, the stream path, the REST fallback with the stream down, gaps with the exchange down, no
second row after a restart, and shards that split the campaigns disjointly and completely."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection, connections

from campaigns.models import Campaign
from devnet.exchange.faults import Fault, FaultKind
from devnet.exchange.fixtures import RunningExchange
from mrmarket import heartbeats
from payouts import recorder as recorder_module
from payouts.domain.recorder import sample_time_at_or_after
from payouts.errors import SnapshotInvalid
from payouts.health import check_recorder
from payouts.models import BookSnapshot
from payouts.recorder import GapReason, LocalBook, Recorder, now_ms
from payouts.selectors import epoch_snapshots, recorder_campaigns
from payouts.services import book_snapshot_record
from tests.payouts.conftest import SYMBOL

pytestmark = pytest.mark.django_db(transaction=True)  # the recorder writes from its own database thread
ROOT = Path(__file__).resolve().parents[2]
MARGIN_BPS = 10


@pytest.fixture(autouse=True)
def recorder_settings(settings, sim: RunningExchange, redis_clean: None) -> Iterator[None]:
    settings.EXCHANGE_API_URLS = {"binance": sim.base_url}
    settings.RECORDER_LEVEL_MARGIN_BPS = MARGIN_BPS
    settings.RECORDER_REFRESH_SECONDS = 0.5
    sim.sim.faults.clear()
    yield
    sim.sim.faults.clear()


def run_recorder(seconds: float, *, shard: int = 0, shards: int = 1, during: Callable[[], Any] | None = None) -> None:
    """Run one recorder for `seconds`; `during` runs (sync, off the loop) once it is under way."""

    async def main() -> None:
        recorder = Recorder(shard=shard, shards=shards)
        loop = asyncio.get_running_loop()
        loop.call_later(seconds, recorder.stop)
        if during is not None:
            # In a thread of its own: the recorder's database thread must not wait on it.
            loop.call_later(0.2, lambda: asyncio.ensure_future(asyncio.to_thread(_closing(during))))
        await recorder.run()

    asyncio.run(main())


def _closing(fn: Callable[[], Any]) -> Callable[[], None]:
    def call() -> None:
        try:
            fn()
        finally:
            connections.close_all()  # this thread's connection must not outlive it

    return call


def running_campaign(make_campaign: Callable[..., Campaign], **fields: Any) -> Campaign:
    start = now_ms() - 10_300  # not on a wall-clock second: alignment is to the campaign's start
    return make_campaign(start_ms=start, end_ms=start + 600_000, **fields)


def start_ms(campaign: Campaign) -> int:
    return int(campaign.start.timestamp() * 1000)


def rows(campaign: Campaign) -> list[BookSnapshot]:
    return list(BookSnapshot.objects.filter(campaign=campaign).order_by("t_ms"))


def book_of(row: BookSnapshot) -> dict[str, list[list[str]]]:
    assert row.book is not None, f"a gap at {row.t_ms}: {row.gap_reason}"
    return row.book


def assert_aligned_and_consecutive(campaign: Campaign, got: list[BookSnapshot], *, sample_ms: int = 1000) -> None:
    times = [r.t_ms for r in got]
    assert all((t - start_ms(campaign)) % sample_ms == 0 for t in times), times
    assert times == list(range(times[0], times[-1] + sample_ms, sample_ms)), times


def full_book(sim: RunningExchange) -> dict[str, Any]:
    client = sim.make_ccxt()
    return client.fetch_order_book(SYMBOL, 1000)


def test_the_stream_book_is_recorded_at_each_aligned_sample_time_trimmed_to_the_band(
    sim: RunningExchange, make_campaign: Callable[..., Campaign]
) -> None:
    campaign = running_campaign(make_campaign, max_spread_bps=30)
    before = now_ms()
    run_recorder(3.6)
    got = rows(campaign)
    assert len(got) >= 3
    assert_aligned_and_consecutive(campaign, got)
    assert got[0].t_ms >= before  # only sample times from when it runs
    # The first sample time may come before the stream's first book, and then REST stands in for it.
    assert {r.source for r in got[1:]} == {"ws"}
    assert all(r.gap_reason == "" for r in got)
    for row in got:
        assert row.exchange_ts_ms is not None
        assert abs(row.exchange_ts_ms - row.t_ms) <= 2000
        assert row.recorded_ms >= row.t_ms
        bids = [(Fraction(p), Fraction(s)) for p, s in book_of(row)["bids"]]
        asks = [(Fraction(p), Fraction(s)) for p, s in book_of(row)["asks"]]
        assert bids
        assert asks
        assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True)  # best first
        assert [p for p, _ in asks] == sorted(p for p, _ in asks)
        mid = (bids[0][0] + asks[0][0]) / 2
        band = mid * Fraction(30 + MARGIN_BPS, 10_000)
        assert all(mid - p <= band for p, _ in bids)
        assert all(p - mid <= band for p, _ in asks)
    # The trimming had something to drop: the exchange's book reaches well past the band.
    book = full_book(sim)
    mid = (Fraction(str(book["bids"][0][0])) + Fraction(str(book["asks"][0][0]))) / 2
    assert any(abs(Fraction(str(p)) - mid) > mid * Fraction(30 + MARGIN_BPS, 10_000) for p, _ in book["asks"])
    # The selector gives the engine's snapshots: each recorded book, and a gap where nothing was recorded.
    times = [got[0].t_ms - 1000, *(r.t_ms for r in got)]
    snapshots = epoch_snapshots(campaign=campaign, sample_times=times)
    assert [s.t_ms for s in snapshots] == times
    assert snapshots[0].book is None
    assert all(s.book is not None and s.book.mid is not None for s in snapshots[1:])
    assert snapshots[1].book is not None
    assert snapshots[1].book.bids[0][0] == Fraction(book_of(got[0])["bids"][0][0])


def test_with_the_stream_down_the_rest_snapshot_is_recorded(
    sim: RunningExchange, make_campaign: Callable[..., Campaign]
) -> None:
    campaign = running_campaign(make_campaign)
    down = sim.sim.faults.add(Fault(kind=FaultKind.HTTP_5XX, status=502, endpoint="/ws*"))
    run_recorder(3.6)
    got = rows(campaign)
    assert len(got) >= 3
    assert_aligned_and_consecutive(campaign, got)
    assert {r.source for r in got} == {"rest"}
    assert all(book_of(r)["bids"] and book_of(r)["asks"] for r in got)
    assert sim.sim.faults.events(fault_id=down.fault_id), "the stream was never asked for, so never refused"


def test_the_stream_dropped_mid_run_falls_back_to_rest(
    sim: RunningExchange, make_campaign: Callable[..., Campaign]
) -> None:
    campaign = running_campaign(make_campaign)
    faults: list[Fault] = []

    def drop_stream_later() -> None:
        time.sleep(2.0)
        faults.append(sim.sim.faults.add(Fault(kind=FaultKind.HTTP_5XX, status=502, endpoint="/ws*")))

    run_recorder(5.6, during=drop_stream_later)
    got = rows(campaign)
    assert_aligned_and_consecutive(campaign, got)
    sources = [r.source for r in got]
    assert "ws" in sources[:2], sources  # (the first sample time may come before the stream's first book)
    assert sources[-1] == "rest", sources
    assert all(r.book is not None for r in got)


def test_with_the_exchange_down_a_gap_is_stored_with_its_reason(
    sim: RunningExchange, make_campaign: Callable[..., Campaign]
) -> None:
    campaign = running_campaign(make_campaign)
    sim.sim.faults.add(Fault(kind=FaultKind.MAINTENANCE, endpoint="*"))
    run_recorder(2.6)
    got = rows(campaign)
    assert len(got) >= 2
    assert_aligned_and_consecutive(campaign, got)
    assert all(r.book is None and r.gap_reason == GapReason.EXCHANGE_UNAVAILABLE and r.source == "" for r in got)
    snapshots = epoch_snapshots(campaign=campaign, sample_times=[r.t_ms for r in got])
    assert all(s.book is None for s in snapshots)


def test_with_the_stream_down_and_rest_too_slow_a_stale_gap_is_stored(
    sim: RunningExchange, make_campaign: Callable[..., Campaign]
) -> None:
    campaign = running_campaign(make_campaign)
    sim.sim.faults.add(Fault(kind=FaultKind.HTTP_5XX, status=502, endpoint="/ws*"))
    slow = sim.sim.faults.add(Fault(kind=FaultKind.LATENCY, endpoint="/api/v3/depth", latency_ms=2_500))
    run_recorder(4.6)  # each sample waits out the tolerance (2 s), and the ones still waiting at the stop are dropped
    got = rows(campaign)
    assert len(got) >= 2
    assert_aligned_and_consecutive(campaign, got)
    assert all(r.book is None and r.gap_reason == GapReason.STALE for r in got)
    assert sim.sim.faults.events(fault_id=slow.fault_id)


class StandingBook:
    """Stands in for the stream's local book: a fixed book, fresh at every call."""

    def __init__(self, bids: list[list[Any]], asks: list[list[Any]]) -> None:
        self.bids, self.asks = bids, asks

    def current(self) -> LocalBook:
        return LocalBook(self.bids, self.asks, now_ms())

    async def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("bids", "asks", "reason"),
    [
        ([[0.5, 10.0]], [], GapReason.ONE_SIDED),
        ([[0.5, 10.0]], [[0.1 + 0.2, 1.0]], GapReason.BAD_LEVEL),  # 0.30000000000000004: no exact decimal
    ],
)
def test_a_book_that_cannot_be_scored_is_stored_as_a_gap_with_its_reason(
    make_campaign: Callable[..., Campaign], bids: list[list[Any]], asks: list[list[Any]], reason: str
) -> None:
    campaign = running_campaign(make_campaign)
    (recorded,) = recorder_campaigns(now=datetime.now(tz=UTC), shard=0, shards=1)
    t = sample_time_at_or_after(start_ms=recorded.start_ms, sample_ms=recorded.sample_ms, now_ms=now_ms())

    async def main() -> bool:
        recorder = Recorder(shard=0, shards=1)
        recorder._watches[(recorded.exchange, recorded.symbol)] = StandingBook(bids, asks)  # type: ignore[assignment]
        try:
            return await recorder.record(recorded, t)
        finally:
            await recorder.close()

    assert asyncio.run(main())
    (row,) = rows(campaign)
    assert (row.t_ms, row.book, row.gap_reason, row.source) == (t, None, reason, "")
    assert row.exchange_ts_ms is not None


def test_a_restart_writes_no_second_row_and_backfills_nothing(
    sim: RunningExchange, make_campaign: Callable[..., Campaign]
) -> None:
    campaign = running_campaign(make_campaign)
    run_recorder(2.1)
    first = rows(campaign)
    time.sleep(2.0)  # the recorder is down over these sample times
    run_recorder(2.1)
    got = rows(campaign)
    times = [r.t_ms for r in got]
    assert len(times) == len(set(times))
    assert [(r.t_ms, r.recorded_ms, r.book) for r in got[: len(first)]] == [
        (r.t_ms, r.recorded_ms, r.book) for r in first
    ]
    later = times[len(first) :]
    assert later, times
    assert later[0] - first[-1].t_ms >= 3000, times  # the down time has no rows: read as gaps
    # A second write for a recorded sample time changes nothing.
    row = got[0]
    assert not book_snapshot_record(
        campaign_id=campaign.pk,
        t_ms=row.t_ms,
        book=None,
        exchange_ts_ms=None,
        recorded_ms=now_ms(),
        source="",
        gap_reason=GapReason.STALE,
    )
    again = BookSnapshot.objects.get(pk=row.pk)
    assert (again.book, again.recorded_ms, again.gap_reason) == (row.book, row.recorded_ms, "")


def test_new_campaigns_are_picked_up_and_ended_ones_stop(
    sim: RunningExchange, make_campaign: Callable[..., Campaign], json_logs: Any
) -> None:
    ending = make_campaign(start_ms=now_ms() - 5_000, end_ms=now_ms() + 1_500)
    made: list[Campaign] = []
    run_recorder(4.0, during=lambda: made.append(running_campaign(make_campaign)))
    end_ms = int(ending.end.timestamp() * 1000)
    assert rows(ending)
    assert all(r.t_ms < end_ms for r in rows(ending))
    assert rows(made[0]), "the campaign that appeared while running was never recorded"
    assert json_logs.events("recorder_campaign_dropped")
    added = json_logs.events("recorder_campaign_added")
    assert {line["campaign_id"] for line in added} == {ending.pk, made[0].pk}
    assert all(line["exchange"] == "binance" and line["chain_id"] == 31337 for line in added)


def test_a_failed_refresh_is_tried_again_and_recording_goes_on(
    sim: RunningExchange, make_campaign: Callable[..., Campaign], monkeypatch: pytest.MonkeyPatch, json_logs: Any
) -> None:
    campaign = running_campaign(make_campaign)
    calls: list[int] = []

    def flaky(**kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("the database went away")
        return recorder_campaigns(**kwargs)

    monkeypatch.setattr(recorder_module, "recorder_campaigns", flaky)
    run_recorder(2.6)
    assert json_logs.events("recorder_refresh_failed")
    assert len(calls) >= 2
    assert rows(campaign), "nothing recorded after the refresh failed once"


def test_shards_split_the_running_campaigns_disjointly_and_completely(make_campaign: Callable[..., Campaign]) -> None:
    now = now_ms()
    running = [make_campaign(start_ms=now - 1000, end_ms=now + 60_000) for _ in range(12)]
    make_campaign(start_ms=now + 60_000, end_ms=now + 120_000)  # not started
    make_campaign(start_ms=now - 120_000, end_ms=now - 60_000)  # ended
    make_campaign(start_ms=now - 1000, end_ms=now + 60_000, exchange="", pair="")  # market not known yet
    unverified = make_campaign(start_ms=now - 1000, end_ms=now + 60_000)
    Campaign.objects.filter(pk=unverified.pk).update(metadata_hash="0x" + "99" * 32)  # no document held
    at = datetime.now(tz=UTC)
    for shards in (1, 2, 3, 5):
        parts = [{c.campaign_id for c in recorder_campaigns(now=at, shard=k, shards=shards)} for k in range(shards)]
        assert sum(len(p) for p in parts) == len(set().union(*parts))  # disjoint
        assert set().union(*parts) == {c.pk for c in running}  # complete
    one = recorder_campaigns(now=at, shard=0, shards=1)
    assert {c.sample_ms for c in one} == {1000}
    assert {c.max_spread_bps for c in one} == {40}
    assert all(c.symbol == SYMBOL and c.exchange == "binance" for c in one)


def test_a_snapshot_that_is_neither_a_book_nor_a_gap_is_refused_and_not_stored(
    make_campaign: Callable[..., Campaign],
) -> None:
    campaign = running_campaign(make_campaign)
    book = {"bids": [["0.5", "1"]], "asks": [["0.51", "1"]]}
    bad: list[dict[str, Any]] = [
        {"book": None, "gap_reason": "", "source": ""},
        {"book": book, "gap_reason": GapReason.STALE, "source": "ws"},
        {"book": book, "gap_reason": "", "source": "fax"},
    ]
    for fields in bad:
        with pytest.raises(SnapshotInvalid) as err:
            book_snapshot_record(campaign_id=campaign.pk, t_ms=1, exchange_ts_ms=None, recorded_ms=1, **fields)
        assert err.value.code == "book_snapshot_invalid"
    assert not BookSnapshot.objects.exists()


def test_the_recorder_heartbeat_shows_in_its_health_check(
    sim: RunningExchange, make_campaign: Callable[..., Campaign]
) -> None:
    assert check_recorder() == ("fail", "no recorder heartbeat yet")
    run_recorder(0.5, shard=1, shards=2)
    state, detail = check_recorder()
    assert state == "ok"
    assert "1 shard(s) alive" in detail
    heartbeats.record("recorder:0/2", at=datetime.now(tz=UTC) - timedelta(hours=1))
    state, detail = check_recorder()
    assert state == "fail"
    assert "recorder:0/2" in detail


def test_the_command_refuses_a_shard_outside_its_count() -> None:
    for argv in (["--shard", "2", "--shards", "2"], ["--shard", "0", "--shards", "0"], ["--shard", "-1"]):
        with pytest.raises(CommandError, match="--shard"):
            call_command("run_recorder", *argv)


def test_the_command_records_until_sigterm_and_stops_cleanly(
    sim: RunningExchange, make_campaign: Callable[..., Campaign]
) -> None:
    campaign = running_campaign(make_campaign)
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "EXCHANGE_API_URLS": f'{{"binance": "{sim.base_url}"}}',
        "DJANGO_SETTINGS_MODULE": "mrmarket.settings.test",
    }
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "run_recorder", "--shard", "0", "--shards", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while len(rows(campaign)) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, output
    assert "recorder_stopped" in output
    got = rows(campaign)
    assert len(got) >= 3
    # The first sample time may come before the stream's first book, and then REST stands in for it.
    assert {r.source for r in got[1:]} == {"ws"}
    assert_aligned_and_consecutive(campaign, got)
