"""A campaign's scoring rules in plain words, from the `scoring` parameters of its metadata (docs/scoring.md).

Pure: no Django. What the words say is what the scoring engine does; the parameters' meaning is the table in
docs/scoring.md, "Parameters". A document without valid parameters is refused (`RulesUnknown`): a summary made of
guesses would promise what the oracle does not pay."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

FRACTION_WORDS = {1: "all", 2: "half", 3: "a third", 4: "a quarter", 5: "a fifth", 10: "a tenth"}


class RulesUnknown(ValueError):
    """The scoring parameters are missing or not what the metadata schema allows; names the field."""


def percent_of_bps(bps: int) -> str:
    """Basis points as a percentage with two decimals: 50 → "0.50 %"."""
    return f"{Decimal(bps) / 100:.2f} %"


def percent_of_fraction(value: Fraction) -> str:
    """A fraction as a percentage: exact when it has at most two decimals ("80 %"), else rounded and said so."""
    hundredths = value * 10_000
    if hundredths.denominator == 1:
        text = format((Decimal(hundredths.numerator) / 100).normalize(), "f")
        return f"{text} %"
    rounded = (Decimal(value.numerator) * 100 / Decimal(value.denominator)).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_EVEN
    )
    return f"about {rounded} %"


def seconds_text(seconds: int) -> str:
    if seconds % 60 == 0 and seconds >= 120:
        return f"{seconds // 60} minutes"
    return f"{seconds} second{'' if seconds == 1 else 's'}"


def _int(scoring: dict[str, Any], name: str, low: int) -> int:
    value = scoring.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise RulesUnknown(f"scoring.{name}: a whole number of at least {low} is required, not {value!r}")
    return value


def _decimal(scoring: dict[str, Any], name: str) -> Decimal:
    value = scoring.get(name)
    try:
        amount = Decimal(value) if isinstance(value, str) else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or amount < 0:
        raise RulesUnknown(f"scoring.{name}: a decimal string is required, not {value!r}")
    return amount


def _fraction(scoring: dict[str, Any], name: str) -> Fraction:
    value = scoring.get(name)
    parts = value.split("/") if isinstance(value, str) else []
    if len(parts) != 2 or not all(p.isdigit() for p in parts) or int(parts[1]) == 0:
        raise RulesUnknown(f"scoring.{name}: a fraction p/q is required, not {value!r}")
    fraction = Fraction(int(parts[0]), int(parts[1]))
    if fraction > 1:
        raise RulesUnknown(f"scoring.{name}: at most 1, not {value}")
    return fraction


def _amount_text(amount: Decimal, quote: str) -> str:
    text = f"{amount:,f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} {quote}".rstrip()


def one_side_text(divisor: int) -> str:
    """What one-sided quoting earns of its side: "a third", "half", "1/7"."""
    return FRACTION_WORDS.get(divisor, f"1/{divisor}")


def rules_summary(scoring: dict[str, Any], *, quote: str) -> tuple[str, ...]:
    """The rules a participant is paid by, one sentence each. `quote` is the pair's quote currency (the unit of
    `min_order_quote`). Raises `RulesUnknown`."""
    if not isinstance(scoring, dict):
        raise RulesUnknown("scoring: the metadata has no scoring parameters")
    sample = _int(scoring, "sample_seconds", 1)
    band = _int(scoring, "max_spread_bps", 1)
    minimum = _decimal(scoring, "min_order_quote")
    rest = _int(scoring, "min_rest_seconds", 0)
    divisor = _int(scoring, "single_side_divisor", 1)
    depth = _fraction(scoring, "depth_weight")
    off_mid = _int(scoring, "max_off_mid_trade_bps", 1)
    volatility = scoring.get("volatility_weighting")
    if not isinstance(volatility, bool):
        raise RulesUnknown(f"scoring.volatility_weighting: true or false is required, not {volatility!r}")

    rules = [
        f"The oracle samples the order book every {seconds_text(sample)}. At each sample, orders within "
        f"{percent_of_bps(band)} of the mid count, more the closer they are to it: an order at the mid counts "
        f"fully, one at {percent_of_bps(band)} or farther counts nothing.",
        f"An order counts only if it is worth at least {_amount_text(minimum, quote)} and has been resting "
        f"on the book for at least {seconds_text(rest)}"
        + (" (an order cancelled sooner never counts)." if rest else "."),
        (
            "Each side counts in full, whether or not the other is quoted."
            if divisor == 1
            else f"Quoting both sides scores the thinner side, or {one_side_text(divisor)} of the thicker one if "
            f"that is more; quoting one side only earns {one_side_text(divisor)} of that side."
        ),
    ]
    volume = 1 - depth
    if volume:
        rules.append(
            f"{percent_of_fraction(depth)} of each epoch's budget pays for depth and {percent_of_fraction(volume)} "
            f"for maker volume: fills as maker priced within {percent_of_bps(off_mid)} of the mid, confirmed by the "
            "exchange; self-trades and wash trades between linked participants are not counted."
        )
    else:
        rules.append("The whole of each epoch's budget pays for depth; traded volume earns nothing.")
    rules.append(
        "Samples taken while the price moves count more (up to twice), quiet ones less (down to half)."
        if volatility
        else "Every sample counts the same, whether the price moves or not."
    )
    rules.append(
        "Only orders the exchange confirms (asked with the participant's own read-only key) and the oracle's own "
        "snapshot of the book shows are counted; an order can never count for more than the book shows at its price."
    )
    return tuple(rules)
