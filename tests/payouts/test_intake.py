"""Report intake: signed `mrmarket.report/v1` chains become the scoring engine's orders and fills (no DB)."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import replace
from fractions import Fraction
from typing import Any

import pytest

from payouts.domain.intake import (
    ALREADY_CLOSED,
    FILL_CONFLICT,
    MARKET_MISMATCH,
    NOT_PLACED,
    ORDER_MISMATCH,
    ORDER_REPEATED,
    OUT_OF_SEQUENCE,
    OUTSIDE_WINDOW,
    OVERFILLED,
    PLACED_TWICE,
    TIME_BACKWARDS,
    IntakeError,
    NormalizedJob,
    normalize_job,
    order_as_of,
    participant_inputs,
)
from payouts.domain.scoring.engine import score_epoch
from payouts.domain.scoring.inputs import (
    EpochInputs,
    FillConfirmation,
    Links,
    LiveInterval,
    Order,
    OrderConfirmation,
    Params,
    Participant,
    Snapshot,
)
from tests.payouts.scoring_fixtures import BOOK, STEP, T0, A, params
from tests.wire.builders import KEY, SPEC_DIGEST
from wire.errors import SchemaError
from wire.reports import REPORT_SCHEMA, SignedReport, empty_metrics, sign_report, validate_report

W = 60_000  # report window
S = T0 - W  # the first report's window start: one window before the epoch


def ev(
    ts: int,
    event: str,
    cid: str,
    eid: str | None,
    *,
    side: str = "buy",
    price: str | None = "99.8",
    amount: str = "2",
    reason: str | None = None,
    xts: int | None = None,
) -> dict[str, Any]:
    return {
        "ts_ms": ts,
        "exchange_ts_ms": xts,
        "event": event,
        "client_order_id": cid,
        "exchange_order_id": eid,
        "side": side,
        "price": price,
        "amount": amount,
        "reason": reason,
    }


def fl(
    ts: int,
    xts: int,
    tid: str,
    cid: str,
    eid: str,
    *,
    side: str = "buy",
    price: str = "99.8",
    amount: str = "0.5",
    liquidity: str = "maker",
) -> dict[str, Any]:
    return {
        "ts_ms": ts,
        "exchange_ts_ms": xts,
        "trade_id": tid,
        "client_order_id": cid,
        "exchange_order_id": eid,
        "side": side,
        "price": price,
        "amount": amount,
        "fee": "0.01",
        "fee_asset": "USDT",
        "liquidity": liquidity,
    }


def doc(
    seq: int,
    events: list[dict[str, Any]],
    fills: list[dict[str, Any]],
    *,
    job_id: str = "job-1",
    prev: str | None = None,
    symbol: str = "MRM/USDT",
) -> dict[str, Any]:
    start = S + seq * W
    return {
        "schema": REPORT_SCHEMA,
        "job_id": job_id,
        "sequence": seq,
        "window_start_ms": start,
        "window_end_ms": start + W,
        "prev_digest": prev,
        "job_spec_digest": SPEC_DIGEST,
        "executor": {"build_version": "0.1.0", "measurement": "", "signing_key": KEY.public_hex},
        "exchange": "binance",
        "symbol": symbol,
        "order_events": events,
        "fills": fills,
        "book_samples": [],
        "metrics": copy.deepcopy(dict(empty_metrics())),
    }


def chain(*windows: tuple[list[dict[str, Any]], list[dict[str, Any]]], **kw: Any) -> list[SignedReport]:
    """Signed reports, one per (events, fills) window from S; `sign_report` validates each (real reports)."""
    out: list[SignedReport] = []
    for seq, (events, fills) in enumerate(windows):
        out.append(sign_report(doc(seq, events, fills, prev=out[-1].digest if out else None, **kw), KEY))
    return out


def live(*spans: tuple[int, int | None, str]) -> tuple[LiveInterval, ...]:
    return tuple(LiveInterval(a, b, Fraction(r)) for a, b, r in spans)


def refused(reports: list[Any], code: str, path: str, **kw: Any) -> IntakeError:
    with pytest.raises(IntakeError) as info:
        normalize_job(reports, **kw)
    assert (info.value.code, info.value.path) == (code, path)
    return info.value


# --- orders and fills -------------------------------------------------------------------------------------------


def test_maker_order_partly_filled_twice_then_cancelled():
    (r0,) = chain(
        (
            [
                ev(S + 1000, "placed", "c1", "1001"),
                ev(S + 10_100, "filled", "c1", "1001", amount="0.5"),
                ev(S + 20_300, "filled", "c1", "1001", amount="0.5"),
                ev(S + 30_000, "cancelled", "c1", "1001", amount="1"),
            ],
            [fl(S + 10_100, S + 10_000, "t1", "c1", "1001"), fl(S + 20_300, S + 20_000, "t2", "c1", "1001")],
        )
    )
    job = normalize_job([r0])
    (order,) = job.orders
    assert order == Order(
        order_id="1001",
        side="buy",
        price=Fraction("99.8"),
        amount=Fraction(2),
        live=live((S + 1000, S + 10_000, "2"), (S + 10_000, S + 20_000, "1.5"), (S + 20_000, S + 30_000, "1")),
        exchange=None,
        report_digest=r0.digest,
    )
    assert order.run_start(2) == S + 1000  # back to back: the partial fills do not restart the rest clock
    assert [(f.trade_id, f.order_id, f.amount, f.maker, f.ts_ms, f.exchange, f.report_digest) for f in job.fills] == [
        ("t1", "1001", Fraction("0.5"), True, S + 10_000, None, r0.digest),
        ("t2", "1001", Fraction("0.5"), True, S + 20_000, None, r0.digest),
    ]
    assert (job.job_id, job.exchange, job.symbol, job.source_reports) == ("job-1", "binance", "MRM/USDT", (r0.digest,))


def test_order_spanning_reports_names_the_report_it_was_placed_in():
    r0, r1, r2 = chain(
        ([ev(S + 1000, "placed", "c1", "1001")], []),
        ([], [fl(S + W + 5000, S + W + 4000, "t1", "c1", "1001", amount="0.25")]),
        ([ev(S + 2 * W + 7000, "expired", "c1", "1001", amount="1.75")], []),
    )
    job = normalize_job([r0, r1, r2])
    (order,) = job.orders
    assert order.live == live((S + 1000, S + W + 4000, "2"), (S + W + 4000, S + 2 * W + 7000, "1.75"))
    assert order.report_digest == r0.digest
    assert [f.report_digest for f in job.fills] == [r1.digest]
    assert job.source_reports == (r0.digest, r1.digest, r2.digest)


def test_order_still_open_at_the_last_window_end_stays_open():
    reports = chain(([ev(S + 1000, "placed", "c1", "1001", side="sell", price="100.3", amount="1")], []), ([], []))
    (order,) = normalize_job(reports).orders
    assert order.live == live((S + 1000, None, "1"))
    assert (order.side, order.closed_ms) == ("sell", None)


def test_order_without_an_exchange_id_is_known_by_its_client_id():
    reports = chain(
        ([ev(S + 1000, "placed", "c1", None)], [fl(S + 3000, S + 2000, "t1", "c1", "1001")]),
    )
    job = normalize_job(reports)
    assert [o.order_id for o in job.orders] == ["c1"]
    assert [f.order_id for f in job.fills] == ["c1"]  # the fill's exchange id is learned; the order keeps its id
    assert job.orders[0].live == live((S + 1000, S + 2000, "2"), (S + 2000, None, "1.5"))


def test_rejected_orders():
    reports = chain(
        (
            [
                ev(S + 1000, "rejected", "c1", None, reason="insufficient balance"),  # refused at creation
                ev(S + 2000, "placed", "c2", "1002"),
                ev(S + 2000, "rejected", "c2", "1002"),  # gone the moment it was acknowledged: never rested
                ev(S + 3000, "placed", "c3", "1003"),
                ev(S + 9000, "rejected", "c3", "1003", reason="gone from the exchange without a trace"),
            ],
            [],
        )
    )
    (order,) = normalize_job(reports).orders
    assert (order.order_id, order.live) == ("1003", live((S + 3000, S + 9000, "2")))


def test_taker_fill_of_an_order_that_never_rested():
    reports = chain(
        (
            [ev(S + 1000, "placed", "c1", "1001", price="100.1", amount="1"), ev(S + 1200, "filled", "c1", "1001")],
            [fl(S + 1200, S + 990, "t1", "c1", "1001", price="100.05", amount="1", liquidity="taker")],
        )
    )
    job = normalize_job(reports)
    assert job.orders == ()  # filled in full at its placement: no live interval, no depth
    (fill,) = job.fills
    assert (fill.maker, fill.price, fill.ts_ms, fill.order_id) == (False, Fraction("100.05"), S + 990, "1001")


def test_fill_learned_late():
    r0, r1 = chain(
        ([ev(S + 1000, "placed", "c1", "1001")], []),
        ([], [fl(S + W + 500, S + 40_000, "t1", "c1", "1001", amount="2")]),
    )
    job = normalize_job([r0, r1])
    (order,) = job.orders
    assert order.live == live((S + 1000, S + 40_000, "2"))  # filled in full at the exchange's time
    (fill,) = job.fills
    assert (fill.ts_ms, fill.report_digest) == (S + 40_000, r1.digest)  # before r1's window; r1 carried it


def test_a_trade_reported_again_is_one_fill_and_a_conflicting_copy_is_refused():
    again = fl(S + W + 100, S + 5000, "t1", "c1", "1001")
    r0, r1 = chain(
        ([ev(S + 1000, "placed", "c1", "1001")], [fl(S + 5100, S + 5000, "t1", "c1", "1001")]),
        ([], [again]),
    )
    job = normalize_job([r0, r1])
    assert [(f.trade_id, f.report_digest) for f in job.fills] == [("t1", r0.digest)]
    assert job.orders[0].live == live((S + 1000, S + 5000, "2"), (S + 5000, None, "1.5"))  # counted once

    r0, r1 = chain(
        ([ev(S + 1000, "placed", "c1", "1001")], [fl(S + 5100, S + 5000, "t1", "c1", "1001")]),
        ([], [{**again, "amount": "0.4"}]),
    )
    refused([r0, r1], FILL_CONFLICT, "reports[1].fills[0].trade_id")


# --- inconsistent streams ---------------------------------------------------------------------------------------


def test_event_or_fill_for_an_order_never_placed():
    reports = chain(([ev(S + 1000, "cancelled", "c9", "1009")], []))
    refused(reports, NOT_PLACED, "reports[0].order_events[0].client_order_id")
    # a fill learned before the placement event is not yet an order's fill
    reports = chain(([ev(S + 2000, "placed", "c1", "1001")], [fl(S + 1500, S + 1400, "t1", "c1", "1001")]))
    refused(reports, NOT_PLACED, "reports[0].fills[0].client_order_id")


def test_fill_larger_than_the_remaining_size():
    reports = chain(
        ([ev(S + 1000, "placed", "c1", "1001")], [fl(S + 2000, S + 2000, "t1", "c1", "1001", amount="1.5")]),
        ([], [fl(S + W + 1, S + W, "t2", "c1", "1001", amount="0.6")]),
    )
    err = refused(reports, OVERFILLED, "reports[1].fills[0].amount")
    assert "1001" in err.problem


def test_events_going_backwards_in_time():
    (r0,) = chain(([ev(S + 1000, "placed", "c1", "1001"), ev(S + 5000, "cancelled", "c1", "1001")], []))
    bad = copy.deepcopy(r0.report)
    bad["order_events"][1]["ts_ms"] = S + 500
    with pytest.raises(SchemaError):  # not a valid report: verification refuses it first
        validate_report(bad)
    refused([bad], TIME_BACKWARDS, "reports[0].order_events[1].ts_ms", report_digests=[r0.digest])
    bad["order_events"][1]["ts_ms"] = S + W
    refused([bad], OUTSIDE_WINDOW, "reports[0].order_events[1].ts_ms", report_digests=[r0.digest])


def test_report_out_of_sequence():
    r0, r1, r2 = chain(([ev(S + 1000, "placed", "c1", "1001")], []), ([], []), ([], []))
    refused([r0, r2], OUT_OF_SEQUENCE, "reports[1].sequence")  # a gap
    refused([r1, r0], OUT_OF_SEQUENCE, "reports[0].sequence")  # reordered
    refused([r1, r2], OUT_OF_SEQUENCE, "reports[0].sequence")  # not from the chain's start
    (other,) = chain(([], []), job_id="job-2")
    forged = sign_report(doc(1, [], [], job_id="job-2", prev=other.digest), KEY)
    refused([r0, forged], OUT_OF_SEQUENCE, "reports[1].job_id")
    unlinked = sign_report(doc(1, [], [], prev="00" * 32), KEY)
    refused([r0, unlinked], OUT_OF_SEQUENCE, "reports[1].prev_digest")
    moved = sign_report(doc(1, [], [], prev=r0.digest, symbol="MRM/BTC"), KEY)
    refused([r0, moved], MARKET_MISMATCH, "reports[1].symbol")


def test_other_inconsistencies():
    placed = ev(S + 1000, "placed", "c1", "1001")
    refused(
        chain(([placed, ev(S + 2000, "placed", "c1", "1002")], [])),
        PLACED_TWICE,
        "reports[0].order_events[1].client_order_id",
    )
    closes = [placed, ev(S + 2000, "cancelled", "c1", "1001"), ev(S + 3000, "expired", "c1", "1001")]
    refused(chain((closes, [])), ALREADY_CLOSED, "reports[0].order_events[2].event")
    refused(
        chain(([placed], [fl(S + 2000, S + 2000, "t1", "c1", "1001", side="sell")])),
        ORDER_MISMATCH,
        "reports[0].fills[0].side",
    )
    refused(
        chain(([placed], [fl(S + 2000, S + 2000, "t1", "c2", "1001")])),
        ORDER_MISMATCH,
        "reports[0].fills[0].client_order_id",
    )


# --- participants and scoring ------------------------------------------------------------------------------------


def test_participant_merges_jobs_and_refuses_an_order_of_two_jobs():
    job1 = normalize_job(chain(([ev(S + 2000, "placed", "a1", "2001")], []), job_id="job-1"))
    job2 = normalize_job(
        chain(([ev(S + 1000, "placed", "b1", "1001", side="sell", price="100.3")], []), job_id="job-2")
    )
    links = Links(deposit_addresses=("dep-1",))
    p = participant_inputs([job1, job2], address=A, links=links)
    assert [o.order_id for o in p.orders] == ["1001", "2001"]  # by creation time across jobs
    assert Participant.from_json(p.as_json(), "p") == p  # a valid scoring participant
    copy_of_1 = dataclasses.replace(job1, job_id="job-3")
    with pytest.raises(IntakeError) as info:
        participant_inputs([job1, copy_of_1], address=A, links=links)
    assert (info.value.code, info.value.path) == (ORDER_REPEATED, "jobs[1].orders[0].order_id")
    elsewhere = dataclasses.replace(job2, symbol="MRM/BTC")
    with pytest.raises(IntakeError) as info:
        participant_inputs([job1, elsewhere], address=A, links=links)
    assert (info.value.code, info.value.path) == (MARKET_MISMATCH, "jobs[1].symbol")


def _confirmed(job: NormalizedJob) -> NormalizedJob:
    """What the exchange cross-check (a later step) would attach when the exchange agrees with every report."""
    orders = tuple(
        dataclasses.replace(
            o, exchange=OrderConfirmation(o.side, o.price, o.amount, created_ms=o.created_ms, closed_ms=o.closed_ms)
        )
        for o in job.orders
    )
    fills = tuple(
        dataclasses.replace(f, exchange=FillConfirmation(f.trade_id, f.side, f.price, f.amount, f.maker))
        for f in job.fills
    )
    return dataclasses.replace(job, orders=orders, fills=fills)


def test_end_to_end_depth_of_a_two_sided_quote():
    """Epoch [T0, T0 + 3 min), samples at T0, T0 + 1 min, T0 + 2 min, mid 100 at each (BOOK). A bid 2 at 99.80 and
    an ask 1 at 100.30 placed a minute before the epoch; 0.5 of the bid filled 10 s before the second sample; the
    ask cancelled between the second and the third.

    T0:        bid 12774 (docs/scoring.md, worked example), ask 4914: Q = max(4914, floor(12774 / 3)) = 4914
    T0 + 1 m:  bid 1.5 still counts (the rest runs from its placement): closeness 640000, notional 14970 cents,
               points floor(9580.8) = 9580; ask 4914: Q = max(4914, 3193) = 4914
    T0 + 2 m:  the bid alone: Q = floor(9580 / 3) = 3193
    D = 4914 + 4914 + 3193 = 13021; V = floor(99.80 × 0.5 × 100) = 4990 (maker, 0.2 % off the mid).
    """
    reports = chain(
        (
            [
                ev(S + 1000, "placed", "b", "1"),
                ev(S + 1000, "placed", "a", "2", side="sell", price="100.3", amount="1"),
            ],
            [],
        ),
        ([ev(T0 + 50_400, "filled", "b", "1", amount="0.5")], [fl(T0 + 50_400, T0 + 50_000, "t1", "b", "1")]),
        ([ev(T0 + 90_000, "cancelled", "a", "2", side="sell", price="100.3", amount="1")], []),
    )
    job = normalize_job(reports)
    assert job.orders[0].live == live((S + 1000, T0 + 50_000, "2"), (T0 + 50_000, None, "1.5"))
    participant = participant_inputs([_confirmed(job)], address=A, links=Links())
    epoch = EpochInputs(
        params=Params.from_json(params(3), "params"),
        snapshots=tuple(Snapshot.from_json({"t_ms": T0 + k * STEP, "book": BOOK}, "s") for k in range(3)),
        participants=(participant,),
    )
    (score,) = score_epoch(EpochInputs.from_json(epoch.as_json())).participants  # through the published form too
    assert (score.depth, score.volume, score.amount) == (13021, 4990, 1000)
    assert score_epoch(epoch).participants == (score,)


def test_fills_around_the_close():
    # a fill that beat the cancel, learned after it: the size dropped at the exchange's time, before the close
    reports = chain(
        (
            [ev(S + 1000, "placed", "c1", "1001"), ev(S + 5000, "cancelled", "c1", "1001", amount="1.5")],
            [fl(S + 6000, S + 4000, "t1", "c1", "1001"), fl(S + 7000, S + 6500, "t2", "c1", "1001")],
        )
    )
    job = normalize_job(reports)
    assert job.orders[0].live == live((S + 1000, S + 4000, "2"), (S + 4000, S + 5000, "1.5"))
    assert [f.trade_id for f in job.fills] == ["t1", "t2"]  # the fill after the close is kept, the intervals not
    # a close reported after the fills used the whole amount changes nothing: the last fill closed the order
    reports = chain(
        (
            [ev(S + 1000, "placed", "c1", "1001"), ev(S + 9000, "cancelled", "c1", "1001", amount="0")],
            [fl(S + 3000, S + 3000, "t1", "c1", "1001", amount="2")],
        )
    )
    assert normalize_job(reports).orders[0].live == live((S + 1000, S + 3000, "2"))


def test_digests_and_empty_chains():
    (r0,) = chain(([], []))
    refused([], "no_reports", "reports")
    refused([r0.report], "report_digests_invalid", "reports[0]")  # a bare report needs its digest
    refused([r0], "report_digests_invalid", "report_digests[0]", report_digests=["00" * 32])
    assert normalize_job([r0.report], report_digests=[r0.digest]) == normalize_job([r0])


# --- the exchange's own times ------------------------------------------------------------------------------------


def test_live_intervals_run_on_the_exchange_times_not_the_executors():
    # The executor saw each event later than it happened on the exchange, by a varying delay; the intervals are
    # the exchange's times, which the cross-check compares with the exchange's answers exactly.
    (r0,) = chain(
        (
            [
                ev(S + 1000, "placed", "c1", "1001", xts=S + 870),
                ev(S + 10_100, "filled", "c1", "1001", amount="0.5", xts=S + 10_000),
                ev(S + 30_000, "cancelled", "c1", "1001", amount="1.5", xts=S + 29_412),
            ],
            [fl(S + 10_100, S + 10_000, "t1", "c1", "1001")],
        )
    )
    (order,) = normalize_job([r0]).orders
    assert order.live == live((S + 870, S + 10_000, "2"), (S + 10_000, S + 29_412, "1.5"))
    assert (order.created_ms, order.closed_ms) == (S + 870, S + 29_412)


def test_a_fill_splits_at_its_exchange_time_even_past_when_the_executor_learned_of_it():
    # The exchange's clock runs ahead of the executor's: all of an order's times are the exchange's, so the
    # split stays at the trade time rather than being pulled back to the executor's clock.
    (r0,) = chain(
        (
            [ev(S + 1000, "placed", "c1", "1001", xts=S + 1150), ev(S + 9000, "expired", "c1", "1001", xts=S + 9150)],
            [fl(S + 5000, S + 5150, "t1", "c1", "1001")],
        )
    )
    (order,) = normalize_job([r0]).orders
    assert order.live == live((S + 1150, S + 5150, "2"), (S + 5150, S + 9150, "1.5"))


def test_a_fill_before_the_exchange_placement_time_drops_the_size_at_the_placement():
    (r0,) = chain(
        ([ev(S + 1000, "placed", "c1", "1001", xts=S + 900)], [fl(S + 2000, S + 800, "t1", "c1", "1001")]),
    )
    (order,) = normalize_job([r0]).orders
    assert order.live == live((S + 900, None, "1.5"))


def test_an_exchange_time_the_exchange_did_not_give_falls_back_to_the_executors():
    (r0,) = chain(
        (
            [ev(S + 1000, "placed", "c1", "1001", xts=None), ev(S + 9000, "cancelled", "c1", "1001", xts=S + 8800)],
            [],
        ),
    )
    assert normalize_job([r0]).orders[0].live == live((S + 1000, S + 8800, "2"))
    (r0,) = chain(
        ([ev(S + 1000, "placed", "c1", "1001", xts=S + 950), ev(S + 9000, "cancelled", "c1", "1001", xts=None)], []),
    )
    assert normalize_job([r0]).orders[0].live == live((S + 950, S + 9000, "2"))


def test_an_order_created_on_the_exchange_before_the_window_keeps_its_creation_time():
    # Adopted from an earlier run of the job: the exchange created it before this chain's first window.
    (r0,) = chain(([ev(S + 1000, "placed", "c1", "1001", xts=S - 45_000, reason="adopted from an earlier run")], []))
    assert normalize_job([r0]).orders[0].live == live((S - 45_000, None, "2"))


def test_a_close_before_the_placement_on_the_exchange_clock_is_refused():
    (r0,) = chain(
        ([ev(S + 1000, "placed", "c1", "1001", xts=S + 900), ev(S + 2000, "cancelled", "c1", "1001", xts=S + 899)], []),
    )
    refused([r0], TIME_BACKWARDS, "reports[0].order_events[1].exchange_ts_ms")


@pytest.mark.parametrize("value", ["1700000000000", 1.0, True, -5, {"ms": 1}])
def test_the_schema_refuses_an_exchange_time_that_is_not_a_non_negative_integer(value: object):
    report = doc(0, [ev(S + 1000, "placed", "c1", "1001", xts=S)], [])
    report["order_events"][0]["exchange_ts_ms"] = value
    with pytest.raises(SchemaError, match=r"order_events\[0\]\.exchange_ts_ms"):
        validate_report(report)


def test_an_order_is_taken_as_it_stood_at_the_epochs_end() -> None:
    """A close at or after the end — reported, or on the exchange — reads as still open; later intervals go."""
    answer = OrderConfirmation(side="buy", price=Fraction(1), amount=Fraction(5), created_ms=100, closed_ms=900)
    order = Order(
        order_id="o1",
        side="buy",
        price=Fraction(1),
        amount=Fraction(5),
        live=(
            LiveInterval(live_from_ms=100, live_to_ms=400, remaining=Fraction(5)),
            LiveInterval(live_from_ms=400, live_to_ms=700, remaining=Fraction(3)),
            LiveInterval(live_from_ms=700, live_to_ms=900, remaining=Fraction(1)),
        ),
        exchange=answer,
    )
    at_end = order_as_of(order, 600)
    assert at_end.live == (
        LiveInterval(live_from_ms=100, live_to_ms=400, remaining=Fraction(5)),
        LiveInterval(live_from_ms=400, live_to_ms=None, remaining=Fraction(3)),
    )
    assert at_end.exchange == replace(answer, closed_ms=None)
    assert at_end.confirmed
    # A close before the end stays as it was on both sides, and a disagreement there is kept.
    assert order_as_of(order, 1_000) == order
    # The report still shows it open while the exchange closed it within the epoch: not confirmed.
    unreported = replace(order, live=(LiveInterval(live_from_ms=100, live_to_ms=None, remaining=Fraction(5)),))
    assert not order_as_of(unreported, 1_000).confirmed
    with pytest.raises(ValueError, match="not live before"):
        order_as_of(order, 100)
