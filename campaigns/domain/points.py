"""The per-order depth points of the reward model (docs/scoring.md, "Depth score D", steps 3 and 5), in exact
integers and Fractions. The recording oracle scores with these functions (payouts.domain.scoring.depth), and the
creator wizard computes its live examples with the very same ones, so an example cannot drift from the scoring.
Pure: no Django."""

from __future__ import annotations

from fractions import Fraction
from math import floor

PPM = 10**6


def order_points(*, price: Fraction, counted: Fraction, mid: Fraction, max_ppm: int) -> int:
    """Step 3: integer points of one order at one sample, flooring exactly where the model says."""
    dist_ppm = floor(abs(price - mid) * PPM / mid)
    if dist_ppm >= max_ppm:
        return 0
    closeness = (max_ppm - dist_ppm) ** 2 * PPM // max_ppm**2
    notional_cents = floor(price * counted * 100)
    return closeness * notional_cents // PPM


def two_sided(bids: int, asks: int, divisor: int) -> int:
    """Step 5: Q = max(min(Qb, Qa), floor(max(Qb, Qa) / c))."""
    return max(min(bids, asks), max(bids, asks) // divisor)
