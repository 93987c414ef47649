"""The risk guard of one job, gate by gate: each test names the limit it holds and sits just either side of it."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from executor.engine.risk import PRICE_BAND, RateBucket, RiskGuard, book_vwap, price_insanity
from executor.strategy.base import Book, Level
from wire.jobs import RiskLimits

T0 = 1_700_000_000_000


def limits(**overrides: object) -> RiskLimits:
    values: dict[str, object] = {
        "max_open_orders": 10,
        "max_orders_per_second": 100,
        "max_exposure_quote": "1000000",
        "max_loss_quote": "500",
        "max_drawdown_quote": "300",
        "max_consecutive_rejects": 5,
        "stale_book_seconds": 10,
        "dead_man_seconds": 60,
    }
    values.update(overrides)
    return RiskLimits.parse(values)


def guard(**overrides: object) -> RiskGuard:
    return RiskGuard(limits(**overrides))


def book(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> Book:
    return Book(
        bids=tuple(Level(D(p), D(a)) for p, a in bids), asks=tuple(Level(D(p), D(a)) for p, a in asks), ts_ms=T0
    )


BUY = ("buy", D("1.0"), D("10"))
SELL = ("sell", D("1.1"), D("10"))


# --- stale book -------------------------------------------------------------------------------------------


def test_a_book_older_than_the_limit_is_stale_and_one_just_inside_is_not() -> None:
    g = guard(stale_book_seconds=10)
    assert g.stale(T0, T0) is False
    assert g.stale(T0, T0 + 10_000) is False
    assert g.stale(T0, T0 + 10_001) is True
    assert g.stale(None, T0) is True  # never saw a book


# --- price sanity -----------------------------------------------------------------------------------------


def test_a_sane_book_passes() -> None:
    assert price_insanity(book([("0.99", "100")], [("1.01", "100")])) is None


@pytest.mark.parametrize(
    ("b", "why"),
    [
        (book([], [("1.01", "100")]), "one side of the book is empty"),
        (book([("0.99", "100")], []), "one side of the book is empty"),
        (book([("1.01", "100")], [("1.01", "100")]), "crossed book"),
        (book([("1.02", "100")], [("1.01", "100")]), "crossed book"),
    ],
)
def test_an_empty_side_or_a_crossed_book_is_refused(b: Book, why: str) -> None:
    reason = price_insanity(b)
    assert reason is not None
    assert why in reason


def test_a_mid_far_from_the_vwap_of_the_top_levels_is_refused() -> None:
    # A thin top of book (1 lot each side around 2.0) over deep levels around 1.0: the mid says 2, the
    # volume says about 1 — someone is painting the top.
    painted = book([("1.99", "1"), ("1.00", "1000")], [("2.01", "1"), ("1.02", "1000")])
    vwap = book_vwap(painted)
    assert vwap is not None
    assert abs(D(2) - vwap) > vwap * PRICE_BAND
    reason = price_insanity(painted)
    assert reason is not None
    assert "from the book VWAP" in reason


def test_a_mid_a_little_off_the_vwap_passes_and_one_far_off_does_not() -> None:
    near = book([("0.99", "100"), ("0.98", "100")], [("1.01", "100")])  # VWAP 0.9933, mid 1.0: 0.7 %
    assert price_insanity(near) is None
    lopsided = book([("0.99", "1"), ("0.10", "1")], [("1.01", "1")])  # VWAP 0.70, mid 1.0: 43 %
    reason = price_insanity(lopsided)
    assert reason is not None
    assert "from the book VWAP" in reason


def test_a_mid_far_outside_the_strategys_bound_is_refused() -> None:
    b = book([("0.99", "100")], [("1.01", "100")])
    assert price_insanity(b, floor=D("0.5"), ceiling=D("0.6")) is None  # mid 1.0 ≤ 2 × ceiling
    reason = price_insanity(b, floor=D("3"), ceiling=D("4"))  # mid 1.0 < floor / 2
    assert reason is not None
    assert "outside the external bound" in reason
    reason = price_insanity(b, floor=D("0.1"), ceiling=D("0.4"))  # mid 1.0 > 2 × ceiling
    assert reason is not None
    assert "outside the external bound" in reason


def test_the_refusals_say_exactly_what_is_wrong() -> None:
    assert price_insanity(book([], [("1.01", "100")])) == "one side of the book is empty"
    assert price_insanity(book([("1.01", "1")], [("1.01", "1")])) == "crossed book (bid 1.01 ≥ ask 1.01)"
    lopsided = book([("0.99", "1"), ("0.10", "1")], [("1.01", "1")])
    assert price_insanity(lopsided) == "mid 1.00 is more than 5.00% from the book VWAP 0.70000000"
    sane = book([("0.99", "100")], [("1.01", "100")])
    assert price_insanity(sane, floor=D(3), ceiling=D(4)) == "mid 1.00 is far outside the external bound [3, 4]"


def test_a_mid_exactly_at_the_band_from_the_vwap_passes() -> None:
    # VWAP (1.04 + 0.90 + 1.06) / 3 = 1.00, mid 1.05: exactly 5 % off, which is not *more* than the band.
    edge = book([("1.04", "1"), ("0.90", "1")], [("1.06", "1")])
    assert book_vwap(edge) == D("1.00")
    assert price_insanity(edge) is None


def test_the_external_bound_is_half_the_floor_to_twice_the_ceiling_inclusive() -> None:
    b = book([("0.99", "100")], [("1.01", "100")])  # mid 1.00
    assert price_insanity(b, floor=D("0.8"), ceiling=D("0.9")) is None  # inside [0.4, 1.8]
    assert price_insanity(b, floor=D("2"), ceiling=D("3")) is None  # mid = floor / 2
    assert price_insanity(b, floor=D("0.1"), ceiling=D("0.5")) is None  # mid = 2 × ceiling
    assert price_insanity(b, floor=D("2.01"), ceiling=D("3")) is not None
    assert price_insanity(b, floor=None, ceiling=D("0.1")) is None  # a bound needs both ends


def test_the_vwap_weighs_every_top_level_by_its_amount_and_an_empty_book_has_none() -> None:
    assert book_vwap(book([("1", "0.25")], [("3", "0.25")])) == D(2)  # less than one lot in all
    assert book_vwap(book([("1", "3")], [("3", "1")])) == D("1.5")
    assert book_vwap(book([("1", "0")], [("3", "0")])) is None  # levels of nothing
    assert book_vwap(book([], [])) is None
    deep = book([(str(100 - i), "1") for i in range(7)], [("200", "1")])
    assert book_vwap(deep, levels=1) == D(150)  # only the best level of each side


# --- max open orders, max exposure, the rate bucket ---------------------------------------------------------


def test_max_open_orders_counts_the_live_ones() -> None:
    g = guard(max_open_orders=3)
    admitted, notes = g.admit([BUY, SELL, BUY, SELL], live_orders=1, potential_base=D(0), mark=D(1), now_ms=T0)
    assert admitted == [0, 1]
    assert "max open orders reached" in notes
    full, notes = guard(max_open_orders=3).admit([SELL], live_orders=3, potential_base=D(0), mark=D(1), now_ms=T0)
    assert full == []
    assert notes == ["max open orders reached"]


def test_max_exposure_refuses_the_buy_that_would_cross_it_and_counts_earlier_buys() -> None:
    # 1000 quote of exposure at mark 1: 950 base already potential; a 10 buy is fine at 960, the next would
    # reach 970 > 965. Sells never add exposure.
    g = guard(max_exposure_quote="965")
    wanted = [("buy", D("1"), D("10")), ("buy", D("1"), D("10")), ("sell", D("1.1"), D("10"))]
    admitted, notes = g.admit(wanted, live_orders=0, potential_base=D("950"), mark=D(1), now_ms=T0)
    assert admitted == [0, 2]
    assert notes == ["buy of 10 would exceed max exposure 965"]


def test_exposure_exactly_at_the_limit_is_allowed() -> None:
    admitted, _ = guard(max_exposure_quote="20").admit(
        [("buy", D("1"), D("10"))], live_orders=0, potential_base=D("10"), mark=D(1), now_ms=T0
    )
    assert admitted == [0]


def test_exposure_is_valued_at_the_mark() -> None:
    g = guard(max_exposure_quote="100")
    admitted, _ = g.admit([("buy", D("1"), D("10"))], live_orders=0, potential_base=D(0), mark=D("11"), now_ms=T0)
    assert admitted == []


def test_the_rate_bucket_grants_a_burst_then_refills_with_time() -> None:
    bucket = RateBucket(rate=4)
    assert bucket.take(T0, 10) == 4  # the burst
    assert bucket.take(T0, 1) == 0
    assert bucket.take(T0 + 249, 1) == 0  # 0.996 of a token
    assert bucket.take(T0 + 250, 1) == 1
    assert bucket.take(T0 + 10_000, 10) == 4  # never more than the burst


def test_the_first_take_grants_the_burst_whatever_the_clock_reads() -> None:
    bucket = RateBucket(rate=4)
    assert bucket.take(100, 10) == 4  # a clock near its epoch is not "no time passed since 0"
    assert bucket.take(100, 1) == 0


def test_the_guard_stops_placing_when_the_rate_is_spent() -> None:
    g = guard(max_orders_per_second=2)
    admitted, notes = g.admit([SELL, SELL, SELL], live_orders=0, potential_base=D(0), mark=D(1), now_ms=T0)
    assert admitted == [0, 1]
    assert notes == ["order rate limit reached"]
    again, _ = g.admit([SELL], live_orders=2, potential_base=D(0), mark=D(1), now_ms=T0 + 100)
    assert again == []
    later, _ = g.admit([SELL], live_orders=2, potential_base=D(0), mark=D(1), now_ms=T0 + 500)
    assert later == [0]


# --- the kill switch --------------------------------------------------------------------------------------


def test_the_loss_limit_trips_at_its_value() -> None:
    g = guard(max_loss_quote="500")
    assert g.kill_reason(net_pnl=D("-499.99"), drawdown=D(0)) is None
    reason = g.kill_reason(net_pnl=D("-500"), drawdown=D(0))
    assert reason is not None
    assert reason.startswith("loss limit")


def test_the_drawdown_kill_switch_trips_at_its_value_even_while_in_profit() -> None:
    g = guard(max_drawdown_quote="300")
    assert g.kill_reason(net_pnl=D("1000"), drawdown=D("299.99")) is None
    reason = g.kill_reason(net_pnl=D("1000"), drawdown=D("300"))
    assert reason is not None
    assert reason.startswith("drawdown limit")


def test_consecutive_rejects_trip_and_an_accept_or_reset_clears_them() -> None:
    g = guard(max_consecutive_rejects=3)
    for _ in range(2):
        g.record_reject()
    g.record_accept()
    for _ in range(2):
        g.record_reject()
    assert g.kill_reason(net_pnl=D(0), drawdown=D(0)) is None
    g.record_reject()
    reason = g.kill_reason(net_pnl=D(0), drawdown=D(0))
    assert reason == "3 consecutive rejects (limit 3)"
    g.reset()
    assert g.kill_reason(net_pnl=D(0), drawdown=D(0)) is None
    g.record_reject()
    g.record_reject()
    assert g.kill_reason(net_pnl=D(0), drawdown=D(0)) is None  # the reset left no reject behind
