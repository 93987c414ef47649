"""The creator wizard's arithmetic and its draft's shape: which step a draft may open, a budget typed in token units
as exact base units, what an epoch gets and what the fee may take, what a budget buys, and the live example of a
scoring parameter. Pure: no Django; the examples score with the oracle's own `order_points` (campaigns.domain.points).

Estimates here are examples for a person, never inputs to a payout: docs/campaign-templates.md says how each is
computed and what it assumes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation, localcontext
from fractions import Fraction
from typing import Any

from campaigns.domain.points import order_points, two_sided
from campaigns.domain.templates import Template

STEPS = ("template", "market", "budget", "scoring", "review")
FORM_STEPS = STEPS[:-1]  # the review has no form of its own
START_GRACE_SECONDS = 300  # a start up to five minutes ago is accepted (the time to sign two transactions)
FEE_DENOMINATOR = 10_000  # basis points (Campaign.publishPayout)
DAY = 86_400
_AMOUNT = re.compile(r"^\s*[0-9]+(\.[0-9]+)?\s*$")


EXACT_DIGITS = 160  # more than any amount the form takes (80 characters) shifted by any token's decimals (≤ 36)


class AmountError(ValueError):
    """A typed amount that is not a plain positive decimal, or finer than the token's decimals."""


def token_units(text: str, decimals: int) -> int:
    """`"12.5"` of a token with `decimals` as exact base units; finer than the token, or not positive: AmountError."""
    if not _AMOUNT.match(text or ""):
        raise AmountError("a plain decimal number of tokens, such as 1000 or 2500.5")
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        raise AmountError("a plain decimal number of tokens, such as 1000 or 2500.5") from None
    with localcontext(prec=EXACT_DIGITS):  # the default 28 digits would round a long amount before the check
        scaled = amount.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise AmountError(f"at most {decimals} decimals: this token has {decimals}")
    units = int(scaled)
    if units <= 0:
        raise AmountError("more than 0")
    return units


def furthest_step(done: dict[str, bool]) -> str:
    """The first step not done (each step needs every earlier one); the review when all four are."""
    for step in FORM_STEPS:
        if not done.get(step):
            return step
    return "review"


def reachable(step: str, done: dict[str, bool]) -> bool:
    """A step opens once every step before it is done."""
    return all(done.get(s) for s in STEPS[: STEPS.index(step)])


@dataclass(frozen=True)
class EpochBudget:
    epochs: int
    per_epoch: int  # base units each epoch may spend (payouts plus the fee), the last epoch taking the remainder
    last_epoch: int
    max_fee_per_epoch: int  # the most the fee takes of one full epoch: when the whole epoch's budget is paid out
    max_paid_per_epoch: int  # the most makers receive of one full epoch


def epoch_count(start: int, end: int, epoch_seconds: int) -> int:
    return -(-(end - start) // epoch_seconds)


def epoch_budget(*, budget: int, start: int, end: int, epoch_seconds: int, fee_bps: int) -> EpochBudget:
    """Campaign.epochBudget: the budget split evenly over the epochs, the last taking the remainder; a payout of
    `total` costs `total + total × fee_bps // 10000` of it (payouts.domain.epochs)."""
    epochs = epoch_count(start, end, epoch_seconds)
    per_epoch = budget // epochs
    paid = per_epoch * FEE_DENOMINATOR // (FEE_DENOMINATOR + fee_bps)
    while paid + 1 + (paid + 1) * fee_bps // FEE_DENOMINATOR <= per_epoch:  # the floor lets a little more through
        paid += 1
    return EpochBudget(
        epochs=epochs,
        per_epoch=per_epoch,
        last_epoch=budget - per_epoch * (epochs - 1),
        max_fee_per_epoch=paid * fee_bps // FEE_DENOMINATOR,
        max_paid_per_epoch=paid,
    )


@dataclass(frozen=True)
class BudgetBuys:
    """What a budget buys, per the estimate in docs/campaign-templates.md ("What a budget buys")."""

    paid_per_day: Fraction  # token units per day to makers (after the fee)
    depth_per_day: Fraction  # the depth share of it (depth_weight)
    volume_per_day: Fraction  # the maker-volume share
    per_1000_per_day: Fraction  # to 1,000 quote units on each side, if the band holds `assumed_depth` per side
    one_sided_per_1000_per_day: Fraction  # the same 1,000 quoted on one side only
    assumed_depth: Fraction  # quote units per side, all makers together


def budget_buys(
    *, template: Template, budget: Fraction, seconds: int, fee_bps: int, assumed_depth: Fraction
) -> BudgetBuys:
    """The estimate: every maker's qualifying depth sits at the same distance from the mid, all day, so the
    closeness factor cancels and depth is paid pro rata to notional: a maker holding q per side of a band holding
    T per side in total earns depth_per_day × q / T; a one-sided q counts q / single_side_divisor."""
    days = Fraction(seconds, DAY)
    paid = budget / days * FEE_DENOMINATOR / (FEE_DENOMINATOR + fee_bps)
    weight = Fraction(template.scoring["depth_weight"])
    depth = paid * weight
    divisor = int(template.scoring["single_side_divisor"])
    per_1000 = depth * 1000 / assumed_depth
    return BudgetBuys(
        paid_per_day=paid,
        depth_per_day=depth,
        volume_per_day=paid - depth,
        per_1000_per_day=per_1000,
        one_sided_per_1000_per_day=per_1000 / divisor,
        assumed_depth=assumed_depth,
    )


@dataclass(frozen=True)
class PointsExample:
    order_quote: int
    distance_bps: Fraction
    points: int  # one order, one sample
    two_sided_points: int  # the same order on both sides: Q = min(bids, asks)
    one_sided_points: int  # on one side only: Q = points // single_side_divisor
    at_mid_points: int  # the same order right at the mid, for comparison
    counts: bool  # within the band and at least min_order_quote


def points_example(*, scoring: dict[str, Any], order_quote: int = 1000, distance_bps: Fraction) -> PointsExample:
    """An order of `order_quote` quote units at `distance_bps` from a mid of 1, scored by the oracle's function."""
    mid = Fraction(1)
    price = mid * (1 - distance_bps / FEE_DENOMINATOR)
    counted = Fraction(order_quote) / price  # base units whose notional is exactly order_quote
    max_ppm = int(scoring["max_spread_bps"]) * 100
    enough = Fraction(order_quote) >= Fraction(str(scoring["min_order_quote"]))
    points = order_points(price=price, counted=counted, mid=mid, max_ppm=max_ppm) if enough else 0
    at_mid = order_points(price=mid, counted=Fraction(order_quote), mid=mid, max_ppm=max_ppm) if enough else 0
    divisor = int(scoring["single_side_divisor"])
    return PointsExample(
        order_quote=order_quote,
        distance_bps=distance_bps,
        points=points,
        two_sided_points=two_sided(points, points, divisor),
        one_sided_points=two_sided(points, 0, divisor),
        at_mid_points=at_mid,
        counts=points > 0,
    )


def typical_distance_bps(scoring: dict[str, Any]) -> Fraction:
    """The example's distance: half the template's band (0.3 % for a 60 bps band), "a typical spread"."""
    return Fraction(int(scoring["max_spread_bps"]), 2)


def decimal_text(value: Fraction, places: int = 4) -> str:
    """A Fraction for people: rounded to `places` decimals, with separators, no trailing zeros."""
    q = Decimal(value.numerator) / Decimal(value.denominator)
    text = f"{q.quantize(Decimal(1).scaleb(-places)):,f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
