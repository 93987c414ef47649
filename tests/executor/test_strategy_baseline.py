"""The baseline strategy: invariants over random markets, and each behaviour it promises."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from executor.strategy.base import Balances, Book, Level, MarketRules, OpenOrder, StrategyInput
from executor.strategy.baseline import BaselineParams, BaselineStrategy
from executor.strategy.errors import StrategyParamError, UnknownStrategy
from executor.strategy.registry import build_strategy
from wire.strategies import BASELINE_DEFAULTS

RULES = MarketRules(tick_size=D("0.0001"), lot_size=D("0.1"), min_amount=D("0.1"), min_notional=D("5"))
NOW = 1_700_000_000_000


def book(bid: str = "0.9990", ask: str = "1.0010") -> Book:
    return Book(bids=(Level(D(bid), D("1000")),), asks=(Level(D(ask), D("1000")),), ts_ms=NOW)


def balances(base: str = "1000", quote: str = "1000") -> Balances:
    return Balances(base_free=D(base), base_locked=D(0), quote_free=D(quote), quote_locked=D(0))


def state(
    *, b: Book | None = None, bal: Balances | None = None, orders: tuple[OpenOrder, ...] = (), now: int = NOW
) -> StrategyInput:
    return StrategyInput(now_ms=now, book=b or book(), open_orders=orders, balances=bal or balances(), rules=RULES)


def strategy(**params: object) -> BaselineStrategy:
    base = {"bid_spread": "0.002", "ask_spread": "0.002", "order_amount": "10", "levels": 3, "level_spread": "0.001"}
    return BaselineStrategy.from_params({**base, **params})


def test_quotes_both_sides_at_the_configured_spreads_and_levels() -> None:
    decision = strategy().decide(state())
    bids = sorted((o for o in decision.place if o.side == "buy"), key=lambda o: o.level)
    asks = sorted((o for o in decision.place if o.side == "sell"), key=lambda o: o.level)
    assert [o.price for o in bids] == [D("0.9980"), D("0.9970"), D("0.9960")]
    assert [o.price for o in asks] == [D("1.0020"), D("1.0030"), D("1.0040")]
    assert all(o.amount == D("10") for o in decision.place)
    assert decision.cancel == ()


def test_orders_within_tolerance_are_kept_others_replaced() -> None:
    s = strategy(levels=1, refresh_tolerance="0.001")
    kept = OpenOrder("b0", "buy", D("0.9981"), D("10"), NOW - 1000, level=0)
    moved = OpenOrder("s0", "sell", D("1.0100"), D("10"), NOW - 1000, level=0)
    decision = s.decide(state(orders=(kept, moved)))
    assert decision.keep == ("b0",)
    assert decision.cancel == ("s0",)
    assert [(o.side, o.price) for o in decision.place] == [("sell", D("1.0020"))]


def test_old_orders_are_replaced_even_at_the_right_price() -> None:
    s = strategy(levels=1, max_order_age_seconds=60)
    stale = OpenOrder("b0", "buy", D("0.9980"), D("10"), NOW - 61_000, level=0)
    decision = s.decide(state(orders=(stale,)))
    assert "b0" in decision.cancel
    assert any(o.side == "buy" for o in decision.place)


def test_inventory_skew_moves_spreads_not_sizes() -> None:
    s = strategy(levels=1, inventory_skew="0.02")
    long_base = s.decide(state(bal=balances(base="3000", quote="1000")))  # 75% base vs target 50%
    bid = next(o for o in long_base.place if o.side == "buy")
    ask = next(o for o in long_base.place if o.side == "sell")
    assert D("1") - bid.price > ask.price - D("1")  # buys further away, sells closer
    assert bid.amount == ask.amount == D("10")


def test_inventory_caps_stop_one_side() -> None:
    no_buys = strategy(max_base="500").decide(state(bal=balances(base="500")))
    assert {o.side for o in no_buys.place} == {"sell"}
    assert "inventory at max_base: no buys" in no_buys.notes
    no_sells = strategy(min_base="100").decide(state(bal=balances(base="100")))
    assert {o.side for o in no_sells.place} == {"buy"}


def test_inventory_caps_count_the_base_locked_in_open_orders() -> None:
    # 300 free and 200 locked in resting sells: 500 held, at max_base, though less is free.
    held = Balances(base_free=D("300"), base_locked=D("200"), quote_free=D("1000"), quote_locked=D(0))
    no_buys = strategy(max_base="500").decide(state(bal=held))
    assert {o.side for o in no_buys.place} == {"sell"}
    assert "inventory at max_base: no buys" in no_buys.notes
    # 50 free and 100 locked: 150 held, above min_base=100, so sells go on though only 50 is free.
    above_min = Balances(base_free=D("50"), base_locked=D("100"), quote_free=D("1000"), quote_locked=D(0))
    sells_on = strategy(min_base="100").decide(state(bal=above_min))
    assert "sell" in {o.side for o in sells_on.place}
    assert "inventory at min_base: no sells" not in sells_on.notes


def test_price_ceiling_and_floor() -> None:
    assert {o.side for o in strategy(price_ceiling="0.99").decide(state()).place} == {"sell"}
    assert {o.side for o in strategy(price_floor="1.01").decide(state()).place} == {"buy"}


def test_post_only_never_sends_an_order_that_would_take() -> None:
    wide_reference = StrategyInput(
        now_ms=NOW,
        book=book("0.9990", "1.0010"),
        open_orders=(),
        balances=balances(),
        rules=RULES,
        reference_price=D("1.0200"),
    )
    decision = strategy(levels=1).decide(wide_reference)
    assert all(o.side == "sell" for o in decision.place)
    assert any("would take liquidity" in note for note in decision.notes)


def test_balance_limits_shrink_then_skip_never_overspend() -> None:
    decision = strategy(levels=3, order_amount="10").decide(state(bal=balances(base="12", quote="15")))
    sells = [o for o in decision.place if o.side == "sell"]
    buys = [o for o in decision.place if o.side == "buy"]
    assert sum(o.amount for o in sells) <= D("12")
    assert sum(o.price * o.amount for o in buys) <= D("15")
    assert any("below the exchange minimum or out of balance" in n for n in decision.notes)


def test_without_a_reference_everything_is_cancelled() -> None:
    empty = Book(bids=(), asks=(Level(D("1"), D("1")),), ts_ms=NOW)
    order = OpenOrder("b0", "buy", D("0.99"), D("10"), NOW, level=0)
    decision = strategy().decide(state(b=empty, orders=(order,)))
    assert decision.place == ()
    assert decision.cancel == ("b0",)


@pytest.mark.parametrize(
    ("params", "param", "message"),
    [
        ({"order_amount": "0"}, "order_amount", "must be within (0"),
        ({"order_amount": "-5"}, "order_amount", "must be within (0"),
        ({"bid_spread": "0.6"}, "bid_spread", "must be within (0, 0.5]"),
        ({"ask_spread": "0"}, "ask_spread", "must be within (0, 0.5]"),
        ({"bid_spread": 0.002}, "bid_spread", "floats are not accepted"),
        ({"levels": 0}, "levels", "must be within [1, 20]"),
        ({"levels": "3"}, "levels", "must be an integer"),
        ({"order_amount": "ten"}, "order_amount", "not a decimal string"),
        ({"spread": "0.1"}, "spread", "is not a parameter"),
        ({"min_base": "10", "max_base": "5"}, "min_base", "must be below max_base"),
        ({"price_floor": "2", "price_ceiling": "1"}, "price_floor", "must be below price_ceiling"),
        ({"bid_spread": "0.5", "levels": 20, "level_spread": "0.2"}, "level_spread", "at or below zero"),
    ],
)
def test_bad_parameters_name_the_parameter(params: dict, param: str, message: str) -> None:
    base = {"bid_spread": "0.002", "ask_spread": "0.002", "order_amount": "10"}
    with pytest.raises(StrategyParamError) as err:
        BaselineParams.parse({**base, **params})
    assert err.value.param == param
    assert message in str(err.value)


def test_missing_required_parameter() -> None:
    with pytest.raises(StrategyParamError, match="order_amount: is required"):
        BaselineParams.parse({"bid_spread": "0.002", "ask_spread": "0.002"})


def test_unknown_strategy_is_refused() -> None:
    with pytest.raises(UnknownStrategy, match="unknown strategy 'grid'; known: baseline"):
        build_strategy("grid", {})


prices = st.decimals(min_value=D("0.01"), max_value=D("5000"), places=4)
fractions = st.decimals(min_value=D("0.0001"), max_value=D("0.05"), places=4)
amounts = st.decimals(min_value=D("0"), max_value=D("100000"), places=1)


@settings(max_examples=200, deadline=None)
@given(
    prices,
    fractions,
    fractions,
    fractions,
    st.integers(1, 8),
    amounts,
    amounts,
    st.decimals(D("0.1"), D("50"), places=1),
    st.decimals(D(0), D(1), places=2),
)
def test_invariants_hold_on_any_market(mid, half_spread, bid_spread, ask_spread, levels, base, quote, size, skew):
    bid, ask = RULES.floor_price(mid * (1 - half_spread)), RULES.ceil_price(mid * (1 + half_spread))
    assume(D(0) < bid < ask)
    s = BaselineStrategy.from_params(
        {
            "bid_spread": str(bid_spread),
            "ask_spread": str(ask_spread),
            "order_amount": str(size),
            "levels": levels,
            "inventory_skew": str(skew),
        }
    )
    b = Book(bids=(Level(bid, D(1)),), asks=(Level(ask, D(1)),), ts_ms=NOW)
    decision = s.decide(state(b=b, bal=balances(str(base), str(quote))))
    buys = [o for o in decision.place if o.side == "buy"]
    sells = [o for o in decision.place if o.side == "sell"]
    for o in decision.place:
        assert o.price % RULES.tick_size == 0
        assert o.amount % RULES.lot_size == 0
        assert RULES.tradable(o.price, o.amount)
    assert all(o.price < ask for o in buys)  # post-only: never takes
    assert all(o.price > bid for o in sells)
    if buys and sells:
        assert max(o.price for o in buys) < min(o.price for o in sells)
    assert sum(o.price * o.amount for o in buys) <= quote
    assert sum(o.amount for o in sells) <= base
    assert len({(o.side, o.level) for o in decision.place}) == len(decision.place)


def test_unnamed_parameters_take_the_wire_defaults() -> None:
    parsed = BaselineParams.parse({"order_amount": "10"})
    for name, default in BASELINE_DEFAULTS.items():
        assert getattr(parsed, name) == (D(default) if isinstance(default, str) else default), name
    assert (parsed.levels, parsed.refresh_tolerance) == (1, D("0.0005"))
