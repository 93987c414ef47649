"""The depth score D (docs/scoring.md, "Depth score D"): the per-sample context both depth paths share (mids,
gaps, volatility weights), the integer formulas, and the exact reference computation in Python ints and Fractions.

`depth_vector` computes the same numbers over numpy arrays and must agree with `depth_reference` bit for bit.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction
from math import floor

from campaigns.domain.points import PPM, order_points, two_sided
from payouts.domain.scoring.inputs import VOLATILITY_WINDOW, Book, EpochInputs, Order, Side


@dataclass(frozen=True)
class SampleContext:
    """Everything about the epoch's sample times that does not depend on any participant."""

    times: tuple[int, ...]
    books: tuple[Book | None, ...]  # None: a gap (no snapshot, or one without a mid)
    mids: tuple[Fraction | None, ...]
    prior_mids: tuple[Fraction | None, ...]  # at the sample times just before the epoch (never scored)
    moves: tuple[int, ...]  # move_k, ppm
    window_moves: tuple[int, ...]  # m_t
    median_move: int  # M (lower median of m_t)
    weighting: bool

    @property
    def gaps(self) -> tuple[int, ...]:
        return tuple(t for t, book in zip(self.times, self.books, strict=True) if book is None)


def sample_context(inputs: EpochInputs) -> SampleContext:
    times = inputs.params.sample_times()
    books = tuple(inputs.books())
    mids = tuple(None if b is None else b.mid for b in books)
    prior_mids = tuple(None if b is None else b.mid for b in inputs.prior_books())
    # The previous sample of the epoch's first is the last prior one, and m_t's window reaches back into the prior
    # samples; with none (the campaign's first epoch) the first move is 0 and the window starts at the epoch.
    every = prior_mids + mids
    moves: list[int] = []
    for k, mid in enumerate(every):
        prev = every[k - 1] if k > 0 else None
        moves.append(0 if mid is None or prev is None else floor(abs(mid - prev) * PPM / prev))
    first = len(prior_mids)
    window = tuple(sum(moves[max(0, k - VOLATILITY_WINDOW + 1) : k + 1]) for k in range(first, len(moves)))
    ordered = sorted(window)  # M: over this epoch's samples only
    return SampleContext(
        times=times,
        books=books,
        mids=mids,
        prior_mids=prior_mids,
        moves=tuple(moves[first:]),
        window_moves=window,
        median_move=ordered[(len(ordered) - 1) // 2],
        weighting=inputs.params.volatility_weighting,
    )


def weighted(q: int, m_t: int, median: int) -> int:
    """Step 6 (weighting on): the conditions are tried in this order."""
    if median == 0:
        return q
    if 2 * m_t < median:
        return q // 2
    if m_t > 2 * median:
        return 2 * q
    return q * m_t // median


@dataclass(frozen=True)
class DepthOutcome:
    """Each participant's own D (before linked groups are merged) and its depth flags."""

    depth: dict[str, int]
    not_visible: dict[str, int]  # (sample, order) pairs dropped because the book has no such level
    over_claimed: dict[str, int]  # (sample, order) pairs counted pro rata on an over-claimed level


def live_remaining(order: Order, t_ms: int, min_rest_ms: int) -> Fraction | None:
    """The order's remaining size at t if it was live at t and continuously since t − min_rest; else None."""
    for i, interval in enumerate(order.live):
        if interval.contains(t_ms):
            return interval.remaining if order.run_start(i) <= t_ms - min_rest_ms else None
    return None


def depth_reference(inputs: EpochInputs, ctx: SampleContext) -> DepthOutcome:
    """Steps 1–7 in exact Python integers and Fractions, one sample at a time."""
    params = inputs.params
    max_ppm = params.max_spread_bps * 100
    min_rest_ms = params.min_rest_seconds * 1000
    addresses = [p.address for p in inputs.participants]
    depth = dict.fromkeys(addresses, 0)
    not_visible = dict.fromkeys(addresses, 0)
    over_claimed = dict.fromkeys(addresses, 0)
    confirmed = [[o for o in p.orders if o.confirmed] for p in inputs.participants]
    for t, book, mid, m_t in zip(ctx.times, ctx.books, ctx.mids, ctx.window_moves, strict=True):
        if book is None or mid is None:
            continue
        claims: dict[tuple[Side, Fraction], list[tuple[str, Fraction]]] = defaultdict(list)
        for address, orders in zip(addresses, confirmed, strict=True):
            for order in orders:
                remaining = live_remaining(order, t, min_rest_ms)
                if remaining is None or order.price * remaining < params.min_order_quote:
                    continue
                if book.size_at(order.side, order.price) is None:
                    not_visible[address] += 1
                    continue
                claims[(order.side, order.price)].append((address, remaining))
        bids = dict.fromkeys(addresses, 0)
        asks = dict.fromkeys(addresses, 0)
        for (side, price), items in claims.items():
            level = book.size_at(side, price)
            assert level is not None
            claimed = sum((r for _, r in items), Fraction(0))
            for address, remaining in items:
                counted = remaining
                if claimed > level:
                    counted = remaining * level / claimed
                    over_claimed[address] += 1
                points = order_points(price=price, counted=counted, mid=mid, max_ppm=max_ppm)
                (bids if side == "buy" else asks)[address] += points
        for address in addresses:
            q = two_sided(bids[address], asks[address], params.single_side_divisor)
            depth[address] += weighted(q, m_t, ctx.median_move) if ctx.weighting else q
    return DepthOutcome(depth=depth, not_visible=not_visible, over_claimed=over_claimed)
