"""How much of a market's in-band depth, in the oracle's own book snapshots, belongs to orders that attested
executors reported — and how each reporting identity's orders and fills held up against the oracle's view and the
exchange's records (docs/proof.md, "Depth is real"). Pure: exact Fractions and integers.

Orders are matched to book levels as the depth score does (docs/scoring.md, "Depth score D"): at each sample time
with a mid, an order inside the band is checked when it has rested continuously for the minimum rest time and is
worth at least the minimum order size (an order farther out is not: the recorder keeps only the levels near the
band, so its absence from the snapshot says nothing); it is seen when the oracle's book has a level at its price
on its side, and a level claimed by more than its size is shared pro rata. In-band means strictly closer to the mid
than the campaign's maximum spread (the distance floored to ppm, as the score floors it).
Depth is in quote units: price × size.

The identity of an order is the report-signing key of the report it came from (`report_digest` → key, given by
the caller, who knows which attestation bound which key); orders without a known one count as "" (unattributed).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from math import floor
from typing import Any

from campaigns.domain.points import PPM
from payouts.domain.scoring.depth import live_remaining
from payouts.domain.scoring.inputs import Book, EpochInputs, Side, decimal_str

UNATTRIBUTED = ""


@dataclass
class IdentityFigures:
    depth_quote: Fraction = Fraction(0)  # Σ over samples of its counted in-band depth
    orders_checked: int = 0  # (sample, order) pairs that counted
    orders_not_visible: int = 0  # …of which the book had no level at the order's price
    fills_checked: int = 0
    fills_unconfirmed: int = 0  # fills the exchange's trade history does not show

    def as_json(self) -> dict[str, Any]:
        return {
            "depth_quote": decimal_str(self.depth_quote),
            "orders_checked": self.orders_checked,
            "orders_not_visible": self.orders_not_visible,
            "fills_checked": self.fills_checked,
            "fills_unconfirmed": self.fills_unconfirmed,
        }


@dataclass
class DepthAttribution:
    samples: int = 0  # sample times with a two-sided book
    book_quote: Fraction = Fraction(0)  # Σ over those samples of the book's whole in-band depth
    by_identity: dict[str, IdentityFigures] = field(default_factory=dict)

    def share(self, identities: set[str]) -> Fraction | None:
        """The part of the book's in-band depth that orders of these identities account for; None with no depth."""
        if not self.book_quote:
            return None
        counted = sum((f.depth_quote for k, f in self.by_identity.items() if k in identities), Fraction(0))
        return counted / self.book_quote

    def as_json(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "book_quote": decimal_str(self.book_quote),
            "by_identity": {k: self.by_identity[k].as_json() for k in sorted(self.by_identity)},
        }


def in_band(price: Fraction, mid: Fraction, max_ppm: int) -> bool:
    return floor(abs(price - mid) * PPM / mid) < max_ppm


def band_depth(book: Book, mid: Fraction, max_ppm: int) -> Fraction:
    return sum((p * s for p, s in (*book.bids, *book.asks) if in_band(p, mid, max_ppm)), Fraction(0))


def attribute_depth(inputs: EpochInputs, key_of: Mapping[str, str]) -> DepthAttribution:
    """Attribute each sample's in-band depth to the identities whose reported, exchange-confirmed orders rest there,
    and count each identity's orders the book does not show and fills the exchange does not."""
    params = inputs.params
    max_ppm = params.max_spread_bps * 100
    min_rest_ms = params.min_rest_seconds * 1000
    out = DepthAttribution()

    def figures(digest: str | None) -> IdentityFigures:
        key = key_of.get(digest, UNATTRIBUTED) if digest else UNATTRIBUTED
        return out.by_identity.setdefault(key, IdentityFigures())

    orders = [o for p in inputs.participants for o in p.orders]
    for t, book in zip(params.sample_times(), inputs.books(), strict=True):
        if book is None or book.mid is None:
            continue
        mid = book.mid
        out.samples += 1
        out.book_quote += band_depth(book, mid, max_ppm)
        claims: dict[tuple[Side, Fraction], list[tuple[IdentityFigures, Fraction]]] = defaultdict(list)
        for order in orders:
            remaining = live_remaining(order, t, min_rest_ms)
            if remaining is None or order.price * remaining < params.min_order_quote:
                continue
            if not in_band(order.price, mid, max_ppm):
                continue  # the recorder keeps only the levels near the band: a deeper order is not for us to see
            who = figures(order.report_digest)
            who.orders_checked += 1
            if book.size_at(order.side, order.price) is None:
                who.orders_not_visible += 1
                continue
            if order.confirmed:
                claims[(order.side, order.price)].append((who, remaining))
        for (side, price), items in claims.items():
            level = book.size_at(side, price)
            assert level is not None
            claimed = sum((r for _, r in items), Fraction(0))
            for who, remaining in items:
                counted = remaining * level / claimed if claimed > level else remaining
                who.depth_quote += price * counted
    for participant in inputs.participants:
        for fill in participant.fills:
            who = figures(fill.report_digest)
            who.fills_checked += 1
            who.fills_unconfirmed += not fill.confirmed
    return out
