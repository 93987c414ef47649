"""What one recorded book sample says about the sides of a campaign's band, and whether a job's own quotes fit the
band: the pure part of the alert rules that read the oracle's snapshots and the jobs' reports
(`payouts.alert_rules`). Exact arithmetic (fractions of the stored decimal strings)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

BPS = 10_000
ONE_SIDED_GAP = "one_sided_book"  # the recorder's gap reason for a book with a side empty (payouts.recorder)


class Sides(StrEnum):
    """One sample's sides against the band."""

    BOTH = "both_in_band"  # a level inside the band on either side
    NO_BIDS = "no_bids"
    NO_ASKS = "no_asks"
    NEITHER = "neither"  # no level inside the band on either side: the spread is wider than the band
    ONE_SIDED = "one_sided"  # the recorder saw a side empty (which one it does not store)
    UNKNOWN = "unknown"  # a gap for another reason (the exchange down, a stale stream): the sample says nothing

    @property
    def missing(self) -> bool:
        return self in (Sides.NO_BIDS, Sides.NO_ASKS, Sides.NEITHER, Sides.ONE_SIDED)


def _in_band(levels: Sequence[Sequence[str]], mid: Fraction, band: Fraction) -> bool:
    # "An order this far from the mid or farther scores nothing" (docs/scoring.md): inside is strictly closer.
    return any(abs(Fraction(level[0]) - mid) < band for level in levels)


def sample_sides(*, book: Mapping[str, Sequence[Sequence[str]]] | None, gap_reason: str, max_spread_bps: int) -> Sides:
    """Which sides of a stored sample (`BookSnapshot.book`, levels as decimal strings) have a level inside the band
    of `max_spread_bps` around the mid."""
    if book is None:
        return Sides.ONE_SIDED if gap_reason == ONE_SIDED_GAP else Sides.UNKNOWN
    bids, asks = list(book.get("bids") or []), list(book.get("asks") or [])
    if not bids and not asks:
        return Sides.NEITHER  # both trimmed away: the best quotes sit beyond the band (and its margin)
    if not bids:
        return Sides.NO_BIDS
    if not asks:
        return Sides.NO_ASKS
    best_bid = max(Fraction(level[0]) for level in bids)
    best_ask = min(Fraction(level[0]) for level in asks)
    mid = (best_bid + best_ask) / 2
    band = mid * Fraction(max_spread_bps, BPS)
    bid_in, ask_in = _in_band(bids, mid, band), _in_band(asks, mid, band)
    if bid_in and ask_in:
        return Sides.BOTH
    if bid_in:
        return Sides.NO_ASKS
    return Sides.NO_BIDS if ask_in else Sides.NEITHER


def missing_sides_text(samples: Sequence[Sides]) -> str:
    """The sides a run of missing samples lacked, for people: "the asks", "the bids", "both sides", "one side"."""
    seen = set(samples)
    bids = bool(seen & {Sides.NO_BIDS, Sides.NEITHER})
    asks = bool(seen & {Sides.NO_ASKS, Sides.NEITHER})
    if bids and asks:
        return "both sides"
    if bids:
        return "the bids"
    if asks:
        return "the asks"
    return "one side"


def spread_outside_band(*, spread_bps: str | None, max_spread_bps: int) -> bool | None:
    """Whether a job's mean own spread (a report's `metrics.spread_bps`) is too wide for its quotes to score: its
    bid and ask, centred on the mid, would both sit `max_spread_bps` or farther from it. None when the report has
    no spread (the job was not two-sided in the window)."""
    if spread_bps is None:
        return None
    return Decimal(spread_bps) >= 2 * max_spread_bps
