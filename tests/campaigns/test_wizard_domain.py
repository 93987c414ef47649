"""The wizard's arithmetic: budgets typed in token units as exact base units, the per-epoch split and the fee as
the escrow applies them, what a budget buys (docs/campaign-templates.md), the scoring example from the oracle's
own function, and which step a draft may open."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.domain.points import order_points
from campaigns.domain.templates import TEMPLATES
from campaigns.domain.wizard import (
    AmountError,
    budget_buys,
    epoch_budget,
    furthest_step,
    points_example,
    reachable,
    token_units,
)
from campaigns.wizard_forms import market_minimums
from payouts.domain.scoring import depth


def test_the_oracle_scores_with_the_wizards_functions() -> None:
    assert depth.order_points is order_points


@pytest.mark.parametrize(
    ("text", "decimals", "units"),
    [
        ("7000", 6, 7_000_000_000),
        ("0.000001", 6, 1),
        ("1.5", 18, 15 * 10**17),
        ("12345678901234567890.1", 1, 123456789012345678901),
        # Longer than Decimal's default 28 digits once shifted: exact all the same.
        ("123456789012.123456789012345678", 18, 123456789012123456789012345678),
        ("99999999999999999999999999999", 18, 99999999999999999999999999999 * 10**18),
    ],
)
def test_a_budget_in_tokens_is_exact_base_units(text: str, decimals: int, units: int) -> None:
    assert token_units(text, decimals) == units


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1.0000001", "at most 6 decimals: this token has 6"),
        ("1.0000000000000000000000000001", "at most 6 decimals"),  # 29 digits: not rounded to 1
        ("0", "more than 0"),
        ("0.000000", "more than 0"),
        ("-1", "a plain decimal number"),
        ("1e6", "a plain decimal number"),
        ("1,000", "a plain decimal number"),
        ("", "a plain decimal number"),
    ],
)
def test_a_budget_that_is_not_whole_base_units_is_refused(text: str, message: str) -> None:
    with pytest.raises(AmountError, match=message):
        token_units(text, 6)


@given(whole=st.integers(min_value=0, max_value=10**40), fraction=st.integers(min_value=0, max_value=10**18 - 1))
def test_any_amount_with_at_most_the_tokens_decimals_is_exact(whole: int, fraction: int) -> None:
    text = f"{whole}.{fraction:018d}"
    if whole == 0 and fraction == 0:
        return
    assert token_units(text, 18) == whole * 10**18 + fraction


def test_the_epoch_split_and_the_fee_follow_the_escrow() -> None:
    split = epoch_budget(budget=1_000_003, start=0, end=10 * 86_400 - 1, epoch_seconds=86_400, fee_bps=250)
    assert split.epochs == 10
    assert split.per_epoch == 100_000
    assert split.last_epoch == 100_003
    # The most a payout may be: total + floor(total × 2.5 %) within the epoch's budget, and one more is over.
    paid = split.max_paid_per_epoch
    assert paid + paid * 250 // 10_000 <= 100_000 < (paid + 1) + (paid + 1) * 250 // 10_000
    assert split.max_fee_per_epoch == paid * 250 // 10_000
    no_fee = epoch_budget(budget=700, start=0, end=7 * 86_400, epoch_seconds=86_400, fee_bps=0)
    assert (no_fee.max_paid_per_epoch, no_fee.max_fee_per_epoch) == (100, 0)


def test_what_a_budget_buys_is_the_documented_formula() -> None:
    stable = TEMPLATES["stable_depth"]  # depth_weight 4/5, one-sided divisor 3
    buys = budget_buys(
        template=stable, budget=Fraction(7_000), seconds=7 * 86_400, fee_bps=0, assumed_depth=Fraction(50_000)
    )
    assert buys.paid_per_day == 1_000
    assert buys.depth_per_day == 800
    assert buys.volume_per_day == 200
    assert buys.per_1000_per_day == 16  # 800 × 1,000 / 50,000
    assert buys.one_sided_per_1000_per_day == Fraction(16, 3)
    with_fee = budget_buys(
        template=stable, budget=Fraction(7_000), seconds=7 * 86_400, fee_bps=1_000, assumed_depth=Fraction(50_000)
    )
    assert with_fee.paid_per_day == Fraction(10_000, 11)  # the fee is taken from the budget: paid × 1.1 = 1,000


def test_the_scoring_example_is_the_oracles_order_points() -> None:
    scoring = dict(TEMPLATES["stable_depth"].scoring, max_spread_bps=60)
    example = points_example(scoring=scoring, order_quote=1000, distance_bps=Fraction(30))
    price = Fraction(997, 1000)
    assert example.points == order_points(price=price, counted=Fraction(1000) / price, mid=Fraction(1), max_ppm=6000)
    assert example.points == 25_000  # (3000/6000)² × 100,000 cents
    assert example.at_mid_points == 100_000
    assert example.two_sided_points == 25_000
    assert example.one_sided_points == 8_333
    outside = points_example(scoring=dict(scoring, max_spread_bps=20), order_quote=1000, distance_bps=Fraction(30))
    assert outside.points == 0
    assert not outside.counts
    too_small = points_example(
        scoring=dict(scoring, min_order_quote="2000"), order_quote=1000, distance_bps=Fraction(30)
    )
    assert too_small.points == 0


def test_a_draft_opens_at_its_first_missing_step() -> None:
    assert furthest_step({}) == "template"
    assert furthest_step({"template": True, "market": True}) == "budget"
    assert furthest_step({"template": True, "budget": True}) == "market"
    assert furthest_step(dict.fromkeys(("template", "market", "budget", "scoring"), True)) == "review"
    assert reachable("market", {"template": True})
    assert not reachable("scoring", {"template": True, "market": True})


def test_the_markets_minimums_are_the_decimals_ccxts_floats_stand_for() -> None:
    market = {
        "symbol": "MMT/USDT",
        "base": "MMT",
        "quote": "USDT",
        "limits": {"amount": {"min": 1e-08}, "cost": {"min": 5.0}, "price": {"min": None}},
        "precision": {"amount": 0.001, "price": 1e-06},
    }
    assert market_minimums(market) == {
        "symbol": "MMT/USDT",
        "base": "MMT",
        "quote": "USDT",
        "min_amount": "0.00000001",
        "min_cost": "5",
        "min_price": None,
        "amount_precision": "0.001",
        "price_precision": "0.000001",
    }
