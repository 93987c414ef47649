"""The baseline market-making strategy (seed 2.2): a ladder of bids and asks around a reference price.

Per tick, from the reference price r (the book's mid unless the job names another source):
- level L (0-based) quotes at spread `bid_spread + L·level_spread` below r and `ask_spread + L·level_spread`
  above it, with size `order_amount + L·level_amount`;
- inventory skew moves **spreads**, not sizes (ADR 0008): with base ratio b (base value / total value) and
  target t, skew = (b − t)·inventory_skew is added to the bid spread and taken from the ask spread, so a
  maker long in base quotes sells closer and buys further — while both sides keep their full size, which is
  what the two-sided depth score pays for (SCORING.md);
- hard inventory caps stop one side: no buys at or above `max_base`, no sells at or below `min_base`;
- `price_ceiling` / `price_floor`: above the ceiling only sells, below the floor only buys;
- no order closer to r than `minimum_spread`; post-only: an order that would take is dropped, not sent;
- orders are budgeted from what the job holds (free plus what its own orders lock), never beyond;
- an existing order is kept when its level's new price is within `refresh_tolerance` of it and it is younger
  than `max_order_age_seconds`; otherwise it is cancelled and replaced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from executor.strategy.base import (
    Decision,
    DesiredOrder,
    OpenOrder,
    Side,
    StrategyInput,
)
from executor.strategy.errors import StrategyParamError

MAX_LEVELS = 20
ZERO = Decimal(0)


def _decimal(
    params: Mapping[str, Any], name: str, default: str | None, *, low: Decimal, high: Decimal, low_open: bool = False
) -> Decimal:
    raw = params.get(name, default)
    if raw is None:
        raise StrategyParamError(name, "is required")
    if isinstance(raw, (float, bool)):
        raise StrategyParamError(name, "must be a decimal string (floats are not accepted)")
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise StrategyParamError(name, f"{raw!r} is not a decimal number") from None
    if not value.is_finite() or value < low or value > high or (low_open and value == low):
        bracket = "(" if low_open else "["
        raise StrategyParamError(name, f"must be within {bracket}{low}, {high}], got {value}")
    return value


def _optional_decimal(params: Mapping[str, Any], name: str, *, zero_allowed: bool = False) -> Decimal | None:
    if params.get(name) is None:
        return None
    return _decimal(params, name, None, low=ZERO, high=Decimal("1e30"), low_open=not zero_allowed)


def _int(params: Mapping[str, Any], name: str, default: int, *, low: int, high: int) -> int:
    raw = params.get(name, default)
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise StrategyParamError(name, "must be an integer")
    if not low <= raw <= high:
        raise StrategyParamError(name, f"must be within [{low}, {high}], got {raw}")
    return raw


@dataclass(frozen=True)
class BaselineParams:
    bid_spread: Decimal
    ask_spread: Decimal
    order_amount: Decimal
    levels: int = 1
    level_spread: Decimal = Decimal("0.001")
    level_amount: Decimal = ZERO
    refresh_tolerance: Decimal = Decimal("0.0005")
    max_order_age_seconds: int = 1800
    minimum_spread: Decimal = ZERO
    inventory_target_base_pct: Decimal = Decimal("0.5")
    inventory_skew: Decimal = ZERO
    max_base: Decimal | None = None
    min_base: Decimal | None = None
    price_ceiling: Decimal | None = None
    price_floor: Decimal | None = None

    FIELDS = (
        "bid_spread",
        "ask_spread",
        "order_amount",
        "levels",
        "level_spread",
        "level_amount",
        "refresh_tolerance",
        "max_order_age_seconds",
        "minimum_spread",
        "inventory_target_base_pct",
        "inventory_skew",
        "max_base",
        "min_base",
        "price_ceiling",
        "price_floor",
    )

    @classmethod
    def parse(cls, params: Mapping[str, Any]) -> BaselineParams:
        unknown = sorted(set(params) - set(cls.FIELDS))
        if unknown:
            raise StrategyParamError(unknown[0], "is not a parameter of the baseline strategy")
        half = Decimal("0.5")
        parsed = cls(
            bid_spread=_decimal(params, "bid_spread", None, low=ZERO, high=half, low_open=True),
            ask_spread=_decimal(params, "ask_spread", None, low=ZERO, high=half, low_open=True),
            order_amount=_decimal(params, "order_amount", None, low=ZERO, high=Decimal("1e30"), low_open=True),
            levels=_int(params, "levels", 1, low=1, high=MAX_LEVELS),
            level_spread=_decimal(params, "level_spread", "0.001", low=ZERO, high=Decimal("0.2")),
            level_amount=_decimal(params, "level_amount", "0", low=ZERO, high=Decimal("1e30")),
            refresh_tolerance=_decimal(params, "refresh_tolerance", "0.0005", low=ZERO, high=Decimal("0.1")),
            max_order_age_seconds=_int(params, "max_order_age_seconds", 1800, low=1, high=86_400),
            minimum_spread=_decimal(params, "minimum_spread", "0", low=ZERO, high=half),
            inventory_target_base_pct=_decimal(params, "inventory_target_base_pct", "0.5", low=ZERO, high=Decimal(1)),
            inventory_skew=_decimal(params, "inventory_skew", "0", low=ZERO, high=Decimal(1)),
            max_base=_optional_decimal(params, "max_base"),
            min_base=_optional_decimal(params, "min_base", zero_allowed=True),
            price_ceiling=_optional_decimal(params, "price_ceiling"),
            price_floor=_optional_decimal(params, "price_floor"),
        )
        if parsed.max_base is not None and parsed.min_base is not None and parsed.min_base >= parsed.max_base:
            raise StrategyParamError("min_base", "must be below max_base")
        floor, ceiling = parsed.price_floor, parsed.price_ceiling
        if floor is not None and ceiling is not None and floor >= ceiling:
            raise StrategyParamError("price_floor", "must be below price_ceiling")
        top = parsed.levels - 1
        if parsed.bid_spread + top * parsed.level_spread >= 1:
            raise StrategyParamError("level_spread", "the deepest bid would be at or below zero")
        return parsed


class BaselineStrategy:
    name = "baseline"

    def __init__(self, params: BaselineParams) -> None:
        self.params = params

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> BaselineStrategy:
        return cls(BaselineParams.parse(params))

    def decide(self, state: StrategyInput) -> Decision:
        reference = state.reference_price if state.reference_price is not None else state.book.mid
        if reference is None or reference <= 0:
            return Decision(cancel=tuple(o.client_order_id for o in state.open_orders), notes=("no reference price",))
        desired, notes = self._ladder(state, reference)
        return self._reconcile(state, desired, notes)

    def _skew(self, state: StrategyInput, reference: Decimal) -> Decimal:
        p = self.params
        base_value = state.balances.base_total * reference
        total = base_value + state.balances.quote_total
        if p.inventory_skew == 0 or total == 0:
            return ZERO
        ratio = base_value / total
        return (ratio - p.inventory_target_base_pct) * p.inventory_skew

    def _allowed_sides(self, state: StrategyInput, reference: Decimal) -> tuple[set[Side], list[str]]:
        p = self.params
        sides: set[Side] = {"buy", "sell"}
        notes: list[str] = []
        base = state.balances.base_total
        if p.price_ceiling is not None and reference > p.price_ceiling:
            sides.discard("buy")
            notes.append("above price_ceiling: sells only")
        if p.price_floor is not None and reference < p.price_floor:
            sides.discard("sell")
            notes.append("below price_floor: buys only")
        if p.max_base is not None and base >= p.max_base:
            sides.discard("buy")
            notes.append("inventory at max_base: no buys")
        if p.min_base is not None and base <= p.min_base:
            sides.discard("sell")
            notes.append("inventory at min_base: no sells")
        return sides, notes

    def _ladder(self, state: StrategyInput, reference: Decimal) -> tuple[list[DesiredOrder], list[str]]:
        p, rules, book = self.params, state.rules, state.book
        sides, notes = self._allowed_sides(state, reference)
        skew = self._skew(state, reference)
        quote_budget = state.balances.quote_total
        base_budget = state.balances.base_total
        desired: list[DesiredOrder] = []
        for level in range(p.levels):
            widen = level * p.level_spread
            amount = rules.floor_amount(p.order_amount + level * p.level_amount)
            for side in ("buy", "sell"):
                if side not in sides:
                    continue
                if side == "buy":
                    spread = max(p.bid_spread + widen + skew, p.minimum_spread)
                    price = rules.floor_price(reference * (1 - spread))
                    takes = book.best_ask is not None and price >= book.best_ask
                else:
                    spread = max(p.ask_spread + widen - skew, p.minimum_spread)
                    price = rules.ceil_price(reference * (1 + spread))
                    takes = book.best_bid is not None and price <= book.best_bid
                if price <= 0:
                    notes.append(f"{side} level {level}: price at or below zero")
                    continue
                if takes:
                    notes.append(f"{side} level {level}: would take liquidity (post-only)")
                    continue
                size = amount
                if side == "buy":
                    size = min(size, rules.floor_amount(quote_budget / price))
                else:
                    size = min(size, rules.floor_amount(base_budget))
                if not rules.tradable(price, size):
                    notes.append(f"{side} level {level}: below the exchange minimum or out of balance")
                    continue
                if side == "buy":
                    quote_budget -= price * size
                else:
                    base_budget -= size
                desired.append(DesiredOrder(side=side, level=level, price=price, amount=size))
        return desired, notes

    def _reconcile(self, state: StrategyInput, desired: list[DesiredOrder], notes: list[str]) -> Decision:
        p = self.params
        max_age_ms = p.max_order_age_seconds * 1000
        by_slot: dict[tuple[str, int], list[OpenOrder]] = {}
        for order in sorted(state.open_orders, key=lambda o: (o.placed_at_ms, o.client_order_id)):
            by_slot.setdefault((order.side, order.level), []).append(order)
        keep: list[str] = []
        place: list[DesiredOrder] = []
        matched: set[str] = set()
        for want in desired:
            candidates = by_slot.get((want.side, want.level), [])
            fit = next(
                (
                    o
                    for o in candidates
                    if abs(o.price - want.price) <= want.price * p.refresh_tolerance
                    and state.now_ms - o.placed_at_ms < max_age_ms
                    and o.amount <= want.amount
                ),
                None,
            )
            if fit is not None:
                keep.append(fit.client_order_id)
                matched.add(fit.client_order_id)
            else:
                place.append(want)
        cancel = tuple(o.client_order_id for o in state.open_orders if o.client_order_id not in matched)
        return Decision(place=tuple(place), cancel=cancel, keep=tuple(keep), notes=tuple(notes))
