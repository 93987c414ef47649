"""Matching-engine invariants under random order flow (hypothesis): no negative balance, each asset conserved
(balances plus fees), price-time priority, no fill worse than the limit."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devnet.exchange.domain import errors
from devnet.exchange.domain.engine import Engine
from devnet.exchange.domain.model import MarketSpec, OrderType, Side, Status, Stp, TimeInForce

SPEC = MarketSpec(
    base="BTC",
    quote="USDT",
    tick_size=Decimal("0.5"),
    step_size=Decimal("0.01"),
    min_qty=Decimal("0.01"),
    max_qty=Decimal("100"),
    min_price=Decimal("0.5"),
    max_price=Decimal("1000"),
    min_notional=Decimal("0"),
)
ACCOUNTS = ["a", "b", "c"]

orders = st.lists(
    st.tuples(
        st.sampled_from(ACCOUNTS),
        st.sampled_from([Side.BUY, Side.SELL]),
        st.sampled_from([OrderType.LIMIT, OrderType.LIMIT, OrderType.MARKET, OrderType.LIMIT_MAKER]),
        st.sampled_from([TimeInForce.GTC, TimeInForce.GTC, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK]),
        st.integers(min_value=196, max_value=204),  # price in ticks (a narrow range: orders cross often)
        st.integers(min_value=1, max_value=300),  # quantity in steps
        st.sampled_from(list(Stp)),
        st.booleans(),  # cancel something afterwards
        st.booleans(),  # market orders: sized in quote instead of base
        st.sampled_from([None, None, None, Decimal("0.5")]),  # partial-fill-only fault
    ),
    min_size=10,
    max_size=80,
)


def fresh() -> tuple[Engine, list[int]]:
    clock = [0]

    def tick() -> int:
        clock[0] += 1
        return clock[0]

    engine = Engine([SPEC], clock=tick)
    for a in ACCOUNTS:
        engine.credit(a, "BTC", Decimal("20"))
        engine.credit(a, "USDT", Decimal("2000"))
    return engine, clock


def run(engine: Engine, flow) -> None:
    for n, (acct, side, type_, tif, ticks, steps, stp, cancel, by_quote, cap) in enumerate(flow):
        price = ticks * SPEC.tick_size
        qty = steps * SPEC.step_size
        best_before = {s: engine.books["BTCUSDT"].best(s) for s in Side}
        book_before = [(o.order_id, o.side, o.price, o.fillable()) for o in engine.resting("BTCUSDT")]
        try:
            result = engine.place_order(
                account_id=acct,
                symbol="BTCUSDT",
                side=side,
                type=type_,
                quantity=None if type_ is OrderType.MARKET and by_quote else qty,
                quote_order_qty=qty * price if type_ is OrderType.MARKET and by_quote else None,
                fill_cap_fraction=cap,
                price=None if type_ is OrderType.MARKET else price,
                tif=tif if type_ is OrderType.LIMIT else None,
                client_order_id=f"o{n}",
                stp=stp,
            )
        except errors.ExchangeError:
            continue
        check_fills(result, price, type_, best_before, book_before)
        if cancel:
            open_ = engine.open_orders(acct, "BTCUSDT")
            if open_:
                engine.cancel_order(acct, "BTCUSDT", order_id=open_[0].order_id, client_id=None)
        check_balances(engine)


def check_fills(result, price, type_, best_before, book_before) -> None:
    order = result.order
    fills = result.fills
    for f in fills:
        # No fill worse than the limit; makers fill at their own price.
        if type_ is not OrderType.MARKET:
            assert f.trade.price <= price if order.side is Side.BUY else f.trade.price >= price
    # Price priority: the fills walk away from the best price, never back.
    prices = [f.trade.price for f in fills]
    assert prices == sorted(prices, reverse=order.side is Side.SELL)
    if fills:
        opposite = Side.SELL if order.side is Side.BUY else Side.BUY
        fillable_best = [oid for oid, s, p, f in book_before if s is opposite and p == best_before[opposite] and f > 0]
        assert prices[0] == best_before[opposite] or order.stp is not Stp.NONE or not fillable_best
    # Time priority: within one price, makers are filled in the order they arrived (ascending ids) — unless
    # self-trade prevention or the partial-fill cap skipped one.
    by_price: dict[Decimal, list[int]] = {}
    for f in fills:
        maker_id = f.trade.sell_order_id if order.side is Side.BUY else f.trade.buy_order_id
        by_price.setdefault(f.trade.price, []).append(maker_id)
    for ids in by_price.values():
        assert ids == sorted(ids)
    if order.stp is Stp.NONE:
        for p, ids in by_price.items():
            queue = [oid for oid, side, op, f in book_before if op == p and side is not order.side and f > 0]
            assert ids == queue[: len(ids)]
    if type_ is OrderType.LIMIT_MAKER:
        assert not fills


def check_balances(engine: Engine) -> None:
    totals = engine.totals()
    assert totals["BTC"] == Decimal("60")
    assert totals["USDT"] == Decimal("6000")
    for acct in engine.accounts.values():
        for asset, bal in acct.balances.items():
            assert bal.free >= 0
            assert bal.locked >= 0
            held = sum(
                (o.locked for o in acct.orders.values() if o.is_open and (o.side is Side.SELL) == (asset == "BTC")),
                Decimal(0),
            )
            assert bal.locked == held  # every locked unit belongs to an open order
    for order in engine.resting("BTCUSDT"):
        assert order.is_open
        assert order.remaining > 0
    bid, ask = engine.books["BTCUSDT"].best(Side.BUY), engine.books["BTCUSDT"].best(Side.SELL)
    assert (
        bid is None
        or ask is None
        or bid < ask
        or any(o.fill_cap is not None or o.stp is not Stp.NONE for o in engine.resting("BTCUSDT"))
    )


@settings(max_examples=200, deadline=None)
@given(orders)
def test_invariants_hold_under_random_flow(flow):
    engine, _ = fresh()
    run(engine, flow)


@settings(max_examples=30, deadline=None)
@given(orders)
def test_deterministic(flow):
    a, _ = fresh()
    b, _ = fresh()
    run(a, flow)
    run(b, flow)
    assert [(f.trade.price, f.trade.qty, f.order_id) for f in a.my_fills("a", "BTCUSDT")] == [
        (f.trade.price, f.trade.qty, f.order_id) for f in b.my_fills("a", "BTCUSDT")
    ]
    assert a.totals() == b.totals()
    assert a.fees == b.fees


def test_cancel_and_fill_release_exactly():
    engine, _ = fresh()
    r = engine.place_order(
        account_id="a",
        symbol="BTCUSDT",
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=Decimal("1"),
        price=Decimal("200"),
        tif=TimeInForce.GTC,
        client_order_id="x",
    )
    assert engine.account("a").balance("USDT").locked == Decimal("200")
    engine.place_order(
        account_id="b",
        symbol="BTCUSDT",
        side=Side.SELL,
        type=OrderType.MARKET,
        quantity=Decimal("0.4"),
        client_order_id="y",
    )
    assert r.order.status is Status.PARTIALLY_FILLED
    engine.cancel_order("a", "BTCUSDT", order_id=r.order.order_id, client_id=None)
    bal = engine.account("a").balance("USDT")
    assert bal.locked == 0
    assert bal.free == Decimal("2000") - Decimal("80")
    assert engine.account("a").balance("BTC").free == Decimal("20") + Decimal("0.4") - Decimal("0.0004")


def test_engine_rejects_without_side_effects():
    engine, _ = fresh()
    before = engine.totals()
    for quantity, price, why in (
        (Decimal("0.015"), Decimal("200"), "LOT_SIZE"),
        (Decimal("1"), Decimal("200.25"), "PRICE_FILTER"),
        (Decimal("50"), Decimal("200"), "insufficient balance"),
    ):
        with pytest.raises(errors.ExchangeError, match=why):
            engine.place_order(
                account_id="a",
                symbol="BTCUSDT",
                side=Side.BUY,
                type=OrderType.LIMIT,
                tif=TimeInForce.GTC,
                client_order_id="r",
                quantity=quantity,
                price=price,
            )
    assert engine.totals() == before
    assert engine.open_orders("a") == []
    assert engine.account("a").balance("USDT").locked == 0


def _limit(engine: Engine, account: str, side: Side, price: str, qty: str, cid: str):
    return engine.place_order(
        account_id=account,
        symbol="BTCUSDT",
        side=side,
        type=OrderType.LIMIT,
        quantity=Decimal(qty),
        price=Decimal(price),
        tif=TimeInForce.GTC,
        client_order_id=cid,
    )


def test_price_then_time_priority():
    engine, _ = fresh()
    first = _limit(engine, "a", Side.SELL, "101", "1", "first").order
    second = _limit(engine, "b", Side.SELL, "101", "1", "second").order
    better = _limit(engine, "a", Side.SELL, "100.5", "1", "better").order  # newer, but a better price
    fills = _limit(engine, "c", Side.BUY, "101", "2.5", "taker").fills
    makers = [f.trade.sell_order_id for f in fills]
    assert makers == [better.order_id, first.order_id, second.order_id]
    assert [f.trade.price for f in fills] == [Decimal("100.5"), Decimal("101"), Decimal("101")]
    assert second.remaining == Decimal("0.5")  # the later order at 101 waits its turn


def test_partial_fill_cap_keeps_queue_place():
    engine, _ = fresh()
    capped = engine.place_order(
        account_id="a",
        symbol="BTCUSDT",
        side=Side.SELL,
        type=OrderType.LIMIT,
        quantity=Decimal("1"),
        price=Decimal("100"),
        tif=TimeInForce.GTC,
        client_order_id="capped",
        fill_cap_fraction=Decimal("0.5"),
    ).order
    behind = _limit(engine, "b", Side.SELL, "100", "1", "behind").order
    _limit(engine, "c", Side.BUY, "100", "1", "taker")
    assert capped.executed_qty == Decimal("0.5")
    assert capped.is_open
    assert behind.executed_qty == Decimal("0.5")


def test_max_num_orders_filter():
    engine, _ = fresh()
    engine.credit("a", "USDT", Decimal("100000"))
    for n in range(SPEC.max_num_orders):
        _limit(engine, "a", Side.BUY, "1", "0.01", f"m{n}")
    with pytest.raises(errors.ExchangeError, match="MAX_NUM_ORDERS"):
        _limit(engine, "a", Side.BUY, "1", "0.01", "one-too-many")
    engine.place_order(
        account_id="a",
        symbol="BTCUSDT",
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=Decimal("1"),
        price=Decimal("1"),
        tif=TimeInForce.IOC,
        client_order_id="ioc",
    )


# -- self-trade prevention, mode by mode (the taker's mode decides, as on Binance) ------------------------------


@pytest.mark.parametrize(
    ("mode", "maker_after", "taker_after", "fills_with_other"),
    [
        # The own maker leaves the book; the taker goes on and fills against the next (someone else's) maker.
        (Stp.EXPIRE_MAKER, Status.EXPIRED_IN_MATCH, Status.FILLED, True),
        # The taker stops at its own maker, which keeps resting.
        (Stp.EXPIRE_TAKER, Status.NEW, Status.EXPIRED_IN_MATCH, False),
        # Both go: the own maker leaves the book and the taker stops.
        (Stp.EXPIRE_BOTH, Status.EXPIRED_IN_MATCH, Status.EXPIRED_IN_MATCH, False),
    ],
)
def test_self_trade_prevention_expires_whom_each_mode_says(
    mode: Stp, maker_after: Status, taker_after: Status, fills_with_other: bool
) -> None:
    engine, _ = fresh()
    own = engine.place_order(
        account_id="a", symbol="BTCUSDT", side=Side.SELL, type=OrderType.LIMIT, quantity=Decimal("1"),
        price=Decimal("100"), tif=TimeInForce.GTC, client_order_id="own-ask",
    ).order  # fmt: skip
    other = engine.place_order(
        account_id="b", symbol="BTCUSDT", side=Side.SELL, type=OrderType.LIMIT, quantity=Decimal("1"),
        price=Decimal("100"), tif=TimeInForce.GTC, client_order_id="other-ask",
    ).order  # fmt: skip
    taker = engine.place_order(
        account_id="a", symbol="BTCUSDT", side=Side.BUY, type=OrderType.LIMIT, quantity=Decimal("1"),
        price=Decimal("100"), tif=TimeInForce.GTC, client_order_id="taker", stp=mode,
    )  # fmt: skip
    assert own.status is maker_after
    assert taker.order.status is taker_after
    assert all(f.trade.sell_order_id != own.order_id for f in taker.fills)  # never a trade with itself
    assert [f.trade.sell_order_id for f in taker.fills] == ([other.order_id] if fills_with_other else [])
    resting_ids = {o.order_id for o in engine.resting("BTCUSDT")}
    assert (own.order_id in resting_ids) is (maker_after is Status.NEW)
    assert taker.order.order_id not in resting_ids
    check_balances(engine)  # whatever expired released what it held


def test_an_orders_times_are_its_creation_and_its_last_change():
    """Binance's `time` is the creation and `updateTime` the last change: each fill, and the cancel; an order
    filled in full last changed at its last trade (the clock here moves on at every reading)."""
    engine, _ = fresh()

    def limit(account: str, side: Side, qty: str, cid: str) -> Any:
        return engine.place_order(
            account_id=account,
            symbol="BTCUSDT",
            side=side,
            type=OrderType.LIMIT,
            quantity=Decimal(qty),
            price=Decimal("200"),
            tif=TimeInForce.GTC,
            client_order_id=cid,
        ).order

    filled, cancelled = limit("a", Side.SELL, "1", "m1"), limit("a", Side.SELL, "1", "m2")
    created = (filled.time, cancelled.time)
    assert (filled.update_time, cancelled.update_time) == created
    limit("b", Side.BUY, "0.4", "t1")
    (first,) = engine.my_fills("a", "BTCUSDT")
    assert filled.update_time == first.trade.time
    limit("b", Side.BUY, "0.6", "t2")
    last = engine.my_fills("a", "BTCUSDT")[-1]
    assert filled.status is Status.FILLED
    assert filled.update_time == last.trade.time
    before_cancel = cancelled.update_time
    engine.cancel_order("a", "BTCUSDT", order_id=cancelled.order_id, client_id=None)
    assert cancelled.update_time > before_cancel
    assert cancelled.status is Status.CANCELED
    assert (filled.time, cancelled.time) == created


def test_time_is_the_creation_and_update_time_the_last_change_as_on_binance():
    # The executor reports these as the exchange's own times of a placement and a close; the recording oracle
    # compares them exactly, so the stand-in must keep them as Binance does.
    engine, clock = fresh()
    resting = engine.place_order(
        account_id="a",
        symbol="BTCUSDT",
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=Decimal("1"),
        price=Decimal("200"),
        tif=TimeInForce.GTC,
        client_order_id="x",
    ).order
    created = resting.time
    assert resting.update_time == resting.working_time == created
    taker = engine.place_order(
        account_id="b",
        symbol="BTCUSDT",
        side=Side.SELL,
        type=OrderType.MARKET,
        quantity=Decimal("0.4"),
        client_order_id="y",
    ).order
    (fill,) = engine.account("a").fills
    assert resting.time == created
    assert resting.update_time == fill.trade.time > created  # a fill changes it
    assert taker.update_time == fill.trade.time
    clock[0] += 100
    engine.cancel_order("a", "BTCUSDT", order_id=resting.order_id, client_id=None)
    assert resting.time == created
    assert resting.update_time == clock[0] > fill.trade.time  # the cancel's time
    ioc = engine.place_order(
        account_id="c",
        symbol="BTCUSDT",
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=Decimal("1"),
        price=Decimal("199"),
        tif=TimeInForce.IOC,
        client_order_id="z",
    ).order
    assert ioc.status is Status.EXPIRED
    assert ioc.update_time == clock[0] > ioc.time  # it ended after it was created, when it expired
