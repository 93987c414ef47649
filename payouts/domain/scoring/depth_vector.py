"""The depth score D over numpy int64 arrays: the same numbers as `depth.depth_reference`, bit for bit, fast enough
for a daily epoch of a thousand participants (bench/bench_scoring.py).

How it stays exact: prices and sizes are scaled to integers by the least common multiple of their denominators,
and every integer the computation can reach is bounded **up front** from the largest scaled price, size and count;
when any bound could pass int64 (or a level is over-claimed, whose pro-rata product is larger), that part is done in
Python ints instead — the whole epoch (`depth_vector` returns None and the caller uses the reference) or just the
over-claimed rows (numpy object arrays, i.e. Python ints). No float is ever formed.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import lcm

import numpy as np
import numpy.typing as npt

from payouts.domain.scoring.depth import PPM, DepthOutcome, SampleContext
from payouts.domain.scoring.inputs import EpochInputs

INT64_MAX = 2**63 - 1
BLOCK_SAMPLES = 64  # samples per pass: bounds the size of the (sample, order) arrays
DENSE_LOOKUP_MAX = 1 << 24  # entries (128 MB); larger books use a binary search
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class _Intervals:
    """The confirmed order intervals that can count at some sample, as parallel arrays (one entry per interval)."""

    participant: I64
    sell: I64  # 0 bid, 1 ask
    level: I64  # id of (side, price)
    price: I64  # price × price_scale
    remaining: I64  # remaining × size_scale
    k_lo: I64  # first sample index at which it is live and rested
    k_hi: I64  # one past the last


def _scaled(value: Fraction, scale: int) -> int:
    """value × scale, where scale is a multiple of value's denominator (no Fraction arithmetic: it is slow)."""
    return value.numerator * (scale // value.denominator)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def depth_vector(inputs: EpochInputs, ctx: SampleContext) -> DepthOutcome | None:
    """D per participant, or None when an intermediate could exceed int64 (then only the reference is exact)."""
    params = inputs.params
    addresses = [p.address for p in inputs.participants]
    n_p, n_s = len(addresses), len(ctx.times)
    start, step = params.epoch_start_ms, params.sample_ms
    min_rest_ms = params.min_rest_seconds * 1000
    max_ppm = params.max_spread_bps * 100

    # 1. Static eligibility per interval: confirmed, notional ≥ min_order_quote, the sample range where live+rested.
    rows: list[tuple[int, int, int, Fraction, Fraction, int, int]] = []  # who, sell, level, price, rem, k_lo, k_hi
    levels: dict[tuple[int, int, int], int] = {}  # (sell, price numerator, denominator) → id
    quote = params.min_order_quote
    for pi, participant in enumerate(inputs.participants):
        for order in participant.orders:
            if not order.confirmed:
                continue
            sell = 0 if order.side == "buy" else 1
            pn, pd = order.price.numerator, order.price.denominator
            run_start = order.live[0].live_from_ms
            for j, interval in enumerate(order.live):
                if j and order.live[j - 1].live_to_ms != interval.live_from_ms:
                    run_start = interval.live_from_ms
                rn, rd = interval.remaining.numerator, interval.remaining.denominator
                if pn * rn * quote.denominator < quote.numerator * pd * rd:  # price × remaining < min_order_quote
                    continue
                first = max(interval.live_from_ms, run_start + min_rest_ms)
                k_lo = max(0, _ceil_div(first - start, step))
                end = interval.live_to_ms
                k_hi = n_s if end is None else min(n_s, max(0, _ceil_div(end - start, step)))
                if k_lo >= k_hi:
                    continue
                level = levels.setdefault((sell, pn, pd), len(levels))
                rows.append((pi, sell, level, order.price, interval.remaining, k_lo, k_hi))
    zeros = dict.fromkeys(addresses, 0)
    if not rows:
        return DepthOutcome(depth=dict(zeros), not_visible=dict(zeros), over_claimed=dict(zeros))
    n_levels = len(levels)

    # 2. The book at the levels orders use: sorted keys k × n_levels + level, sizes.
    book_entries: list[tuple[int, Fraction]] = []
    for sample, book in enumerate(ctx.books):
        if book is None:
            continue
        for book_sell, book_side in ((0, book.bids), (1, book.asks)):
            for book_price, size in book_side:
                level_id = levels.get((book_sell, book_price.numerator, book_price.denominator))
                if level_id is not None:
                    book_entries.append((sample * n_levels + level_id, size))
    mid2 = [Fraction(0) if m is None else 2 * m for m in ctx.mids]

    # 3. Scales and bounds, all in Python ints before any array exists.
    price_scale = lcm(*(r[3].denominator for r in rows), *(m.denominator for m in mid2))
    size_scale = lcm(*(r[4].denominator for r in rows), *(s.denominator for _, s in book_entries))
    prices = [_scaled(r[3], price_scale) for r in rows]
    remainings = [_scaled(r[4], size_scale) for r in rows]
    mids2 = [_scaled(m, price_scale) for m in mid2]
    sizes = [_scaled(s, size_scale) for _, s in book_entries]
    max_p, max_r = max(prices), max(remainings)
    nc_max = max_p * max_r * 100 // (price_scale * size_scale)
    q_bound = len(rows) * nc_max  # no participant's side can sum past this at one sample
    m_max = max(ctx.window_moves)
    bounds = [
        max(2 * max_p, max(mids2)) * PPM,  # |2P − mid2| × 10^6
        max_ppm**2 * PPM,  # (max_ppm − dist)^2 × 10^6
        max_p * max_r * 100,  # notional_cents numerator (rows not over-claimed)
        nc_max * PPM,  # closeness × notional_cents
        sum(remainings),  # claims on one level
        max(sizes, default=0),
        n_s * n_levels,  # book keys
        2 * q_bound * max(1, m_max),  # weighting: 2Q and Q × m_t
        2 * m_max,  # the moves array, 2 × m_t and 2 × M (even when no order is worth a cent and Q is 0)
        n_s * 2 * q_bound,  # D
        price_scale * size_scale,
    ]
    if max(bounds) > INT64_MAX:
        return None

    iv = _Intervals(
        participant=np.array([r[0] for r in rows], dtype=np.int64),
        sell=np.array([r[1] for r in rows], dtype=np.int64),
        level=np.array([r[2] for r in rows], dtype=np.int64),
        price=np.array(prices, dtype=np.int64),
        remaining=np.array(remainings, dtype=np.int64),
        k_lo=np.array([r[5] for r in rows], dtype=np.int64),
        k_hi=np.array([r[6] for r in rows], dtype=np.int64),
    )
    by_key = sorted(range(len(book_entries)), key=lambda i: book_entries[i][0])
    book_keys = np.array([book_entries[i][0] for i in by_key], dtype=np.int64)
    book_sizes = np.array([sizes[i] for i in by_key], dtype=np.int64)
    dense: I64 | None = None  # (sample, level) → position in the book arrays, −1 when absent; when it is small
    if n_s * n_levels <= DENSE_LOOKUP_MAX:
        dense = np.full(n_s * n_levels, -1, dtype=np.int64)
        dense[book_keys] = np.arange(book_keys.size, dtype=np.int64)
    mid2_arr = np.array(mids2, dtype=np.int64)
    gap = np.array([b is None for b in ctx.books], dtype=np.bool_)
    moves = np.array(ctx.window_moves, dtype=np.int64)

    depth = np.zeros(n_p, dtype=np.int64)
    not_visible = np.zeros(n_p, dtype=np.int64)
    over_claimed = np.zeros(n_p, dtype=np.int64)
    scale = price_scale * size_scale
    for b0 in range(0, n_s, BLOCK_SAMPLES):
        b1 = min(n_s, b0 + BLOCK_SAMPLES)
        lo = np.maximum(iv.k_lo, b0)
        counts = np.maximum(np.minimum(iv.k_hi, b1) - lo, 0)
        sel = np.nonzero(counts)[0]
        if sel.size == 0:
            continue
        c = counts[sel]
        total = int(c.sum())
        first = np.cumsum(c) - c
        idx = np.repeat(sel, c)
        k = np.repeat(lo[sel] - first, c) + np.arange(total, dtype=np.int64)
        keep = ~gap[k]
        idx, k = idx[keep], k[keep]
        if idx.size == 0:
            continue
        key = k * n_levels + iv.level[idx]
        if dense is not None:
            pos = dense[key]
            visible = pos >= 0
        else:
            pos = np.minimum(np.searchsorted(book_keys, key), max(book_keys.size - 1, 0))
            visible = book_keys[pos] == key if book_keys.size else np.zeros(key.size, dtype=np.bool_)
        who = iv.participant[idx]
        not_visible += np.bincount(who[~visible], minlength=n_p)
        idx, k, pos, who = idx[visible], k[visible], pos[visible], who[visible]
        if idx.size == 0:
            continue
        rem = iv.remaining[idx]
        price = iv.price[idx]
        claims = np.zeros(book_keys.size, dtype=np.int64)
        np.add.at(claims, pos, rem)
        level_size = book_sizes[pos]
        claimed = claims[pos]
        over = claimed > level_size
        notional = price * rem * 100 // scale
        if over.any():
            over_claimed += np.bincount(who[over], minlength=n_p)
            exact = (price[over].astype(object) * rem[over].astype(object) * level_size[over].astype(object) * 100) // (
                claimed[over].astype(object) * scale
            )
            notional[over] = np.array([int(x) for x in exact], dtype=np.int64)
        m2 = mid2_arr[k]
        dist = np.abs(2 * price - m2) * PPM // m2
        near = dist < max_ppm
        closeness = np.where(near, (max_ppm - np.minimum(dist, max_ppm)) ** 2 * PPM // max_ppm**2, 0)
        points = closeness * notional // PPM
        width = b1 - b0
        flat = (iv.sell[idx] * n_p + who) * width + (k - b0)
        sides = np.zeros(2 * n_p * width, dtype=np.int64)
        np.add.at(sides, flat, points)
        bids = sides[: n_p * width].reshape(n_p, width)
        asks = sides[n_p * width :].reshape(n_p, width)
        q = np.maximum(np.minimum(bids, asks), np.maximum(bids, asks) // params.single_side_divisor)
        depth += _weighted(q, moves[b0:b1], ctx.median_move, ctx.weighting).sum(axis=1)
    return DepthOutcome(
        depth={a: int(depth[i]) for i, a in enumerate(addresses)},
        not_visible={a: int(not_visible[i]) for i, a in enumerate(addresses)},
        over_claimed={a: int(over_claimed[i]) for i, a in enumerate(addresses)},
    )


def _weighted(q: I64, m: I64, median: int, enabled: bool) -> I64:
    """Step 6 on a participants × samples block; the conditions in the model's order."""
    if not enabled or median == 0:
        return q
    half = 2 * m < median
    double = ~half & (m > 2 * median)
    return np.where(half, q // 2, np.where(double, 2 * q, q * m // median))
