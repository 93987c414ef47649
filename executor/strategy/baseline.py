"""The baseline market-making strategy: a ladder of bids and asks around a reference price.

Per tick, from the reference price r (the book's mid unless the job names another source):
- level L (0-based) quotes at spread `bid_spread + L·level_spread` below r and `ask_spread + L·level_spread`
  above it, with size `order_amount + L·level_amount`;
- inventory skew moves **spreads**, not sizes (ADR 0008): with base ratio b (base value / total value) and
  target t, skew = (b − t)·inventory_skew is added to the bid spread and taken from the ask spread, so a
  maker long in base quotes sells closer and buys further — while both sides keep their full size, which is
  what the two-sided depth score pays for (docs/scoring.md);
- hard inventory caps stop one side: no buys at or above `max_base`, no sells at or below `min_base`;
- `price_ceiling` / `price_floor`: above the ceiling only sells, below the floor only buys;
- no order closer to r than `minimum_spread`; post-only: an order that would take is dropped, not sent;
- orders are budgeted from what the job holds (free plus what its own orders lock), never beyond;
- an existing order is kept when its level's new price is within `refresh_tolerance` of it and it is younger
  than `max_order_age_seconds`; otherwise it is cancelled and replaced.

Its parameters, their bounds and defaults are the wire contract's (`wire.strategies.BaselineParams`), the one
definition Django also parses a job spec with before any money moves.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from executor.strategy.base import (
    Decision,
    DesiredOrder,
    OpenOrder,
    Side,
    StrategyInput,
)
from wire.strategies import ZERO, BaselineParams

__all__ = ["BaselineParams", "BaselineStrategy"]


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
