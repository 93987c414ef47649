"""Strategy parameters: each strategy's parameter schema and its defaults, in the one package both sides import.

Django fills a job spec from these defaults and parses it with the same parser the executor runs before it
accepts a job (`wire.jobs.JobSpec.parse`), so a parameter the executor would refuse is refused when the MM
order is created, before any money moves; and the two sides cannot disagree on a default, because there is
only this one. The executor's strategies (`executor/strategy/`) take their parsed parameters from here.

Values are decimal strings or integers, never floats (a float has no exact decimal value).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Protocol

from wire.errors import StrategyParamError, UnknownStrategy
from wire.schema import DECIMAL_MAX_LEN, DECIMAL_RE

MAX_LEVELS = 20
ZERO = Decimal(0)
HUGE = Decimal("1e30")

# Every optional parameter of the baseline strategy with its default. `order_amount` has none: Django sizes it
# from the order's funding when the operator gives none.
BASELINE_DEFAULTS: Mapping[str, str | int] = MappingProxyType(
    {
        "bid_spread": "0.002",
        "ask_spread": "0.002",
        "levels": 1,
        "level_spread": "0.001",
        "level_amount": "0",
        "refresh_tolerance": "0.0005",
        "max_order_age_seconds": 1800,
        "minimum_spread": "0",
        "inventory_target_base_pct": "0.5",
        "inventory_skew": "0",
    }
)


def _raw(params: Mapping[str, Any], name: str) -> Any:
    return params.get(name, BASELINE_DEFAULTS.get(name))


def _decimal(params: Mapping[str, Any], name: str, *, low: Decimal, high: Decimal, low_open: bool = False) -> Decimal:
    raw = _raw(params, name)
    if raw is None:
        raise StrategyParamError(name, "is required")
    if isinstance(raw, (float, bool)):
        raise StrategyParamError(name, "must be a decimal string (floats are not accepted)")
    if not isinstance(raw, (str, int)) or len(str(raw)) > DECIMAL_MAX_LEN:
        raise StrategyParamError(name, f"must be a decimal string of at most {DECIMAL_MAX_LEN} characters")
    if isinstance(raw, str) and not DECIMAL_RE.fullmatch(raw):  # the wire's one decimal form: no exponent, no spaces
        raise StrategyParamError(name, f"{raw!r} is not a decimal string like '123.45'")
    try:
        value = Decimal(str(raw))
    except InvalidOperation:  # pragma: no cover - the form above admits only valid decimals
        raise StrategyParamError(name, f"{raw!r} is not a decimal number") from None
    if not value.is_finite() or value < low or value > high or (low_open and value == low):
        bracket = "(" if low_open else "["
        raise StrategyParamError(name, f"must be within {bracket}{low}, {high}], got {value}")
    return value


def _optional_decimal(params: Mapping[str, Any], name: str, *, zero_allowed: bool = False) -> Decimal | None:
    if _raw(params, name) is None:
        return None
    return _decimal(params, name, low=ZERO, high=HUGE, low_open=not zero_allowed)


def _int(params: Mapping[str, Any], name: str, *, low: int, high: int) -> int:
    raw = _raw(params, name)
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise StrategyParamError(name, "must be an integer")
    if not low <= raw <= high:
        raise StrategyParamError(name, f"must be within [{low}, {high}], got {raw}")
    return raw


class StrategyParams(Protocol):
    """What every strategy's parsed parameters give the engine besides the strategy itself: the external price
    bound its price sanity gate checks the book against (None: unbounded on that side)."""

    @property
    def price_floor(self) -> Decimal | None: ...

    @property
    def price_ceiling(self) -> Decimal | None: ...


@dataclass(frozen=True)
class BaselineParams:
    """The baseline strategy's parameters, parsed; `docs/executor.md` says what each does."""

    bid_spread: Decimal
    ask_spread: Decimal
    order_amount: Decimal
    levels: int
    level_spread: Decimal
    level_amount: Decimal
    refresh_tolerance: Decimal
    max_order_age_seconds: int
    minimum_spread: Decimal
    inventory_target_base_pct: Decimal
    inventory_skew: Decimal
    max_base: Decimal | None
    min_base: Decimal | None
    price_ceiling: Decimal | None
    price_floor: Decimal | None

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
            bid_spread=_decimal(params, "bid_spread", low=ZERO, high=half, low_open=True),
            ask_spread=_decimal(params, "ask_spread", low=ZERO, high=half, low_open=True),
            order_amount=_decimal(params, "order_amount", low=ZERO, high=HUGE, low_open=True),
            levels=_int(params, "levels", low=1, high=MAX_LEVELS),
            level_spread=_decimal(params, "level_spread", low=ZERO, high=Decimal("0.2")),
            level_amount=_decimal(params, "level_amount", low=ZERO, high=HUGE),
            refresh_tolerance=_decimal(params, "refresh_tolerance", low=ZERO, high=Decimal("0.1")),
            max_order_age_seconds=_int(params, "max_order_age_seconds", low=1, high=86_400),
            minimum_spread=_decimal(params, "minimum_spread", low=ZERO, high=half),
            inventory_target_base_pct=_decimal(params, "inventory_target_base_pct", low=ZERO, high=Decimal(1)),
            inventory_skew=_decimal(params, "inventory_skew", low=ZERO, high=Decimal(1)),
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


@dataclass(frozen=True)
class StrategyKind:
    """One strategy's parameter contract: its parser and the defaults a job spec is filled from."""

    parse: Callable[[Mapping[str, Any]], StrategyParams]
    defaults: Mapping[str, str | int]


STRATEGIES: Mapping[str, StrategyKind] = MappingProxyType(
    {"baseline": StrategyKind(parse=BaselineParams.parse, defaults=BASELINE_DEFAULTS)}
)


def strategy_kind(name: str) -> StrategyKind:
    kind = STRATEGIES.get(name)
    if kind is None:
        raise UnknownStrategy(f"unknown strategy {name!r}; known: {', '.join(sorted(STRATEGIES))}")
    return kind


def parse_strategy_params(name: str, params: Mapping[str, Any]) -> StrategyParams:
    """The parsed parameters of strategy `name`; UnknownStrategy or StrategyParamError (naming the parameter)."""
    return strategy_kind(name).parse(params)
