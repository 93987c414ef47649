"""The tracker's order events carry the exchange's own time of each event next to the executor's: the creation
time for a placement, the close time for a cancel, expiry or rejection, the trade time for a fill; null when the
exchange did not say. The oracle compares those with the exchange exactly; the executor's clock only orders."""

from __future__ import annotations

from decimal import Decimal

from executor.engine.tracker import OrderTracker
from executor.exchange import Gateway, OrderSnapshot, TradeSnapshot

NOW = 1_700_000_100_000
CREATED = 1_700_000_000_123
CLOSED = 1_700_000_050_456


def snap(cid: str | None, status: str, *, filled: str = "0", created: int | None = CREATED, updated: int | None = None):
    return OrderSnapshot("9001", cid, "buy", Decimal("0.5"), Decimal(10), Decimal(filled), status, created, updated)


def tracker() -> OrderTracker:
    return OrderTracker(job_id="job-times", incarnation_s=1_700_000_000)


def placed_order(t: OrderTracker) -> str:
    order = t.new_intent(side="buy", level=0, price=Decimal("0.5"), amount=Decimal(10), now_ms=NOW - 5)
    t.acknowledged(order.client_order_id, snap(order.client_order_id, "open"), NOW)
    return order.client_order_id


def test_a_placement_carries_the_exchange_creation_time() -> None:
    t = tracker()
    cid = placed_order(t)
    (event,) = t.take_events()[0]
    assert (event["event"], event["ts_ms"], event["exchange_ts_ms"], event["client_order_id"]) == (
        "placed",
        NOW,
        CREATED,
        cid,
    )


def test_a_placement_the_exchange_gave_no_time_for_carries_null() -> None:
    t = tracker()
    order = t.new_intent(side="buy", level=0, price=Decimal("0.5"), amount=Decimal(10), now_ms=NOW)
    t.acknowledged(order.client_order_id, snap(order.client_order_id, "open", created=None), NOW)
    (event,) = t.take_events()[0]
    assert event["exchange_ts_ms"] is None
    assert event["ts_ms"] == NOW


def test_cancel_expiry_and_rejection_carry_the_exchange_close_time() -> None:
    for status, event_name in (("canceled", "cancelled"), ("expired", "expired"), ("rejected", "rejected")):
        t = tracker()
        cid = placed_order(t)
        t.take_events()
        t.apply_snapshot(snap(cid, status, filled="3", updated=CLOSED), NOW + 10)
        (event,) = t.take_events()[0]
        assert (event["event"], event["ts_ms"], event["exchange_ts_ms"], event["amount"]) == (
            event_name,
            NOW + 10,
            CLOSED,
            Decimal(7),
        )


def test_a_close_without_an_exchange_update_time_carries_null_not_the_creation_time() -> None:
    t = tracker()
    cid = placed_order(t)
    t.take_events()
    t.apply_snapshot(snap(cid, "canceled", updated=None), NOW + 10)
    (event,) = t.take_events()[0]
    assert event["exchange_ts_ms"] is None


def test_an_order_first_seen_in_a_lookup_is_placed_at_its_exchange_creation_time() -> None:
    t = tracker()
    order = t.new_intent(side="buy", level=0, price=Decimal("0.5"), amount=Decimal(10), now_ms=NOW)
    t.unanswered(order.client_order_id)
    t.apply_snapshot(snap(order.client_order_id, "open"), NOW + 2_000)
    (event,) = t.take_events()[0]
    assert (event["event"], event["ts_ms"], event["exchange_ts_ms"]) == ("placed", NOW + 2_000, CREATED)


def test_an_adopted_order_is_placed_at_its_exchange_creation_time() -> None:
    t = tracker()
    cid = f"{t.prefix}old-1"
    t.adopt(snap(cid, "open", filled="4"), level=0, now_ms=NOW)
    (event,) = t.take_events()[0]
    assert (event["event"], event["exchange_ts_ms"], event["amount"]) == ("placed", CREATED, Decimal(6))


def test_a_fill_event_carries_the_trade_time() -> None:
    t = tracker()
    placed_order(t)
    t.take_events()
    trade_ms = NOW - 1_000  # learned a second after it happened
    trade = TradeSnapshot("t1", "9001", "buy", Decimal("0.5"), Decimal(4), Decimal(0), "USDT", "maker", trade_ms)
    assert t.trade(trade, NOW)
    events, fills = t.take_events()
    assert [(e["event"], e["ts_ms"], e["exchange_ts_ms"]) for e in events] == [("filled", NOW, trade_ms)]
    assert fills[0]["exchange_ts_ms"] == trade_ms


def test_the_gateway_reads_ccxt_creation_and_last_update_times() -> None:
    raw = {
        "id": "9001",
        "clientOrderId": "c1",
        "side": "sell",
        "price": 0.5,
        "amount": 10,
        "filled": 0,
        "status": "canceled",
        "timestamp": CREATED,
        "lastUpdateTimestamp": CLOSED,
    }
    order = Gateway._order(raw)
    assert (order.timestamp_ms, order.last_update_ms) == (CREATED, CLOSED)
    assert Gateway._order({**raw, "lastUpdateTimestamp": None}).last_update_ms is None
