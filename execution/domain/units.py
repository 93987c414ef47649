"""Amounts between the outside world and base units. Pure: no Django, no I/O (ADR 0013).

The ledger, the chain and every stored amount are integers in a token's base units. Exchanges (through ccxt)
speak decimal amounts, and ccxt hands them over as Python floats. Every conversion goes through here, with
one rounding rule per kind of amount:

- `units_down`  what we hold, receive or send (a balance, a fill's base amount, a sale's proceeds, an amount
                 to withdraw): rounded toward zero, so the ledger never claims more than is there and we never
                 ask to move more than we have.
- `units_up`     what we pay (a fee, a purchase's cost): rounded up, so a cost is never under-booked.
- `units_exact`  an amount that must be whole base units (a value we set ourselves): anything finer is refused.
- `units_toward` a signed report's amount (a fill, a fee): up for what leaves an account, down for what arrives,
                 computed exactly (never rounded implicitly), saying whether it rounded.
- `same_amount`  does an amount the outside world reports equal ours? Compared in integer base units, at the
                 precision the report can carry (a float carries 15 significant digits).

Every number from outside becomes a Decimal through `str()` first (`to_decimal`): `Decimal(0.1)` is the binary
float's exact value, 0.1000000000000000055511151231257827…, while `Decimal(str(0.1))` is 0.1.
"""

from __future__ import annotations

from decimal import (
    ROUND_CEILING,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    Inexact,
    InvalidOperation,
    localcontext,
)

from wire.schema import DECIMAL_MAX_LEN

# A binary64 float round-trips any decimal of at most 15 significant digits (DBL_DIG): digits beyond that in a
# float's repr are noise from float arithmetic (0.1 + 0.2 = 0.30000000000000004), never information.
FLOAT_DIGITS = 15
MAX_DECIMALS = 36
# Exact arithmetic on wire decimals: the caps bound them (wire.schema.DECIMAL_MAX_LEN digits each), so a
# product of two, scaled to base units, never needs more digits than this; nothing is rounded implicitly.
EXACT = Context(prec=4 * DECIMAL_MAX_LEN, traps=[InvalidOperation, Inexact])


class UnitsError(ValueError):
    """An amount that cannot be converted: not a number, not finite, negative, or finer than allowed."""


def to_decimal(value: object) -> Decimal:
    """A number from outside (ccxt float, JSON string, int) as a Decimal, through its decimal text."""
    if isinstance(value, bool) or value is None:
        raise UnitsError(f"not an amount: {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int | float | str):
        try:
            result = Decimal(str(value).strip())
        except InvalidOperation:
            raise UnitsError(f"not an amount: {value!r}") from None
    else:
        raise UnitsError(f"not an amount: {value!r}")
    if not result.is_finite():
        raise UnitsError(f"not a finite amount: {value!r}")
    return result


def _scale(decimals: int) -> Decimal:
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= MAX_DECIMALS:
        raise UnitsError(f"decimals must be an integer between 0 and {MAX_DECIMALS}, not {decimals!r}")
    return Decimal(10) ** decimals


def _scaled(value: object, decimals: int) -> Decimal:
    amount = to_decimal(value)
    if amount < 0:
        raise UnitsError(f"amounts are not negative: {amount}")
    with localcontext() as ctx:
        ctx.prec = 100  # exact: no amount we handle has anywhere near 100 digits
        return amount * _scale(decimals)


def _integral(scaled: Decimal, rounding: str) -> int:
    with localcontext() as ctx:
        ctx.prec = 100
        return int(scaled.to_integral_value(rounding=rounding))


def units_down(value: object, decimals: int) -> int:
    """What we hold, receive or send, in base units: rounded toward zero."""
    return _integral(_scaled(value, decimals), ROUND_FLOOR)


def units_up(value: object, decimals: int) -> int:
    """What we pay, in base units: rounded up."""
    return _integral(_scaled(value, decimals), ROUND_CEILING)


def units_exact(value: object, decimals: int) -> int:
    """An amount that must be whole base units; finer is an error, never silently rounded."""
    scaled = _scaled(value, decimals)
    whole = _integral(scaled, ROUND_FLOOR)
    if Decimal(whole) != scaled:
        raise UnitsError(f"{to_decimal(value)} is finer than {decimals} decimals")
    return whole


def exact_product(a: Decimal, b: Decimal) -> Decimal:
    """`a × b` with every digit kept (a fill's amount times its price); Inexact rather than a silent rounding."""
    return EXACT.multiply(a, b)


def units_toward(value: Decimal, decimals: int, *, up: bool) -> tuple[int, bool]:
    """`value` in base units, rounded up (`up`: what leaves an account) or down (what arrives), exactly; and
    whether that rounded anything (ADR 0013)."""
    scaled = EXACT.multiply(value, _scale(decimals))
    whole = int(scaled.to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR))
    return whole, Decimal(whole) != scaled


def is_whole(value: object, decimals: int) -> bool:
    """Whether `value` is a whole number of base units (a conversion lost nothing)."""
    scaled = _scaled(value, decimals)
    return Decimal(_integral(scaled, ROUND_FLOOR)) == scaled


def from_units(units: int, decimals: int) -> Decimal:
    """Base units as the exact decimal amount (what an exchange is told, as `format(…, "f")`)."""
    if isinstance(units, bool) or not isinstance(units, int):
        raise UnitsError(f"base units are integers, not {units!r}")
    _scale(decimals)
    with localcontext() as ctx:
        ctx.prec = 100
        return Decimal(units).scaleb(-decimals)


def as_text(units: int, decimals: int) -> str:
    """Base units as a plain decimal string (no exponent), the form an exchange API is sent."""
    return format(from_units(units, decimals), "f")


def for_people(units: int, decimals: int, asset: str) -> str:
    """Base units as a person reads them: token units with thousands separators and no trailing zeros
    (`2,000 USDT`, `0.5 MMT`); exact, never rounded."""
    amount = from_units(units, decimals)
    text = f"{amount:,f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} {asset}"


def multiply(a: object, b: object) -> Decimal:
    """An exact product (a fill's amount times its price): Decimal's default 28 digits would round silently."""
    with localcontext() as ctx:
        ctx.prec = 100
        return to_decimal(a) * to_decimal(b)


def _significant(amount: Decimal, digits: int) -> Decimal:
    if amount == 0:
        return amount
    with localcontext() as ctx:
        ctx.prec = digits
        ctx.rounding = ROUND_HALF_EVEN
        return +amount  # unary plus rounds to the context precision


def reported_units(value: object, decimals: int) -> int:
    """An amount the outside world reports, in base units, rounded to the nearest unit at the precision the
    report carries: a float's digits past the 15th are dropped first."""
    amount = to_decimal(value)
    if isinstance(value, float):
        amount = _significant(amount, FLOAT_DIGITS)
    return _integral(_scaled(amount, decimals), ROUND_HALF_EVEN)


def same_amount(reported: object, units: int, decimals: int) -> bool:
    """Whether a reported amount (ccxt float, string) is `units` base units, compared as integers.

    A float cannot carry more than 15 significant digits, so our own amount is compared at that precision too:
    an 18-decimal amount of 20 digits matches the float an exchange's exact decimal string parses to."""
    try:
        theirs = reported_units(reported, decimals)
    except UnitsError:
        return False
    ours = from_units(units, decimals)
    if isinstance(reported, float):
        ours = _significant(ours, FLOAT_DIGITS)
    return theirs == reported_units(ours, decimals)
