"""One epoch's scores (docs/scoring.md): depth D, volume V with its exclusions, linked groups scored as one,
the review-only flags, then shares and amounts through `payouts.domain.payout`. Exact: Python ints and Fractions
(numpy int64 only inside the vectorized depth path, and only where it provably cannot overflow).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from payouts.domain.payout import amounts, shares
from payouts.domain.scoring.depth import DepthOutcome, SampleContext, depth_reference, sample_context
from payouts.domain.scoring.depth_vector import depth_vector
from payouts.domain.scoring.inputs import EpochInputs, Participant, ratio_str

DepthPath = Literal["auto", "reference", "vector"]

# Why a maker fill is not counted as volume, in the order the reasons are tried (the first that applies is recorded).
NOT_ON_EXCHANGE = "not_on_exchange"
SELF_TRADE = "self_trade"
WASH_LINKED = "wash_linked"
WASH_MUTUAL = "wash_mutual"
NO_REFERENCE_MID = "no_reference_mid"
OFF_MARKET = "off_market"


@dataclass(frozen=True)
class FillExclusion:
    trade_id: str
    side: str
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"trade_id": self.trade_id, "side": self.side, "reason": self.reason}


@dataclass(frozen=True)
class Flags:
    not_on_exchange: tuple[str, ...]  # order ids the exchange did not confirm (never counted)
    not_visible: int  # (sample, order) pairs dropped: no such level in the oracle's snapshot
    over_claimed: int  # (sample, order) pairs counted pro rata
    cancelled: int  # orders closed before being filled in full (review only)
    fills: int  # fills reported in the epoch (review only)
    orders_per_second_peak: int  # most orders created within one wall-clock second (review only)

    @property
    def cancel_to_fill(self) -> Fraction | None:
        return Fraction(self.cancelled, self.fills) if self.fills else None

    def as_json(self) -> dict[str, Any]:
        ratio = self.cancel_to_fill
        return {
            "not_on_exchange": list(self.not_on_exchange),
            "not_visible": self.not_visible,
            "over_claimed": self.over_claimed,
            "cancelled": self.cancelled,
            "fills": self.fills,
            "cancel_to_fill": None if ratio is None else ratio_str(ratio),
            "orders_per_second_peak": self.orders_per_second_peak,
        }


@dataclass(frozen=True)
class ParticipantScore:
    address: str
    depth: int  # D credited (a linked group's sum under its lowest address, 0 for the others)
    volume: int  # V credited, likewise
    share: Fraction
    amount: int
    group: str | None  # the group's lowest address when the participant is linked
    flags: Flags
    exclusions: tuple[FillExclusion, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "depth": str(self.depth),
            "volume": str(self.volume),
            "share": ratio_str(self.share),
            "amount": str(self.amount),
            "group": self.group,
            "flags": self.flags.as_json(),
            "exclusions": [x.as_json() for x in self.exclusions],
        }


@dataclass(frozen=True)
class EpochScores:
    participants: tuple[ParticipantScore, ...]  # sorted by address
    gaps: tuple[int, ...]  # sample times that scored nothing
    groups: tuple[tuple[str, ...], ...]  # linked groups (two or more addresses, each sorted; sorted)
    median_move: int  # the volatility median M (ppm)
    depth_path: str  # "vector" or "reference": how D was computed (same numbers either way; not published)

    def by_address(self) -> dict[str, ParticipantScore]:
        return {p.address: p for p in self.participants}

    def as_json(self) -> dict[str, Any]:
        """The per-epoch part of the results bundle (numbers as strings: canonical JSON caps integers at 2^53)."""
        return {
            "participants": [p.as_json() for p in self.participants],
            "gaps": list(self.gaps),
            "groups": [list(g) for g in self.groups],
            "volatility_median_ppm": self.median_move,
        }


def linked_groups(participants: Iterable[Participant]) -> dict[str, str]:
    """Each address → the lowest address of its linked group (transitively: shared deposit or withdrawal address)."""
    parent: dict[str, str] = {}

    def find(a: str) -> str:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    owner: dict[tuple[str, str], str] = {}
    for p in participants:
        parent.setdefault(p.address, p.address)
        keys = [("deposit", k) for k in p.links.deposit_addresses]
        keys += [("withdrawal", k) for k in p.links.withdrawal_addresses]
        for key in keys:
            if key in owner:
                a, b = find(owner[key]), find(p.address)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            else:
                owner[key] = p.address
    return {a: find(a) for a in parent}


def _reference_mid(ctx: SampleContext, ts_ms: int) -> Fraction | None:
    """The mid of the oracle's last snapshot at or before ts: this epoch's, else the prior samples'; None if the
    inputs hold none."""
    k = (ts_ms - ctx.times[0]) // (ctx.times[1] - ctx.times[0]) if len(ctx.times) > 1 else 0
    for mid in reversed(ctx.prior_mids + ctx.mids[: min(k, len(ctx.times) - 1) + 1]):
        if mid is not None:
            return mid
    return None


def volume_scores(
    inputs: EpochInputs, ctx: SampleContext, group_of: Mapping[str, str]
) -> tuple[dict[str, int], dict[str, tuple[FillExclusion, ...]]]:
    """V_i over i's maker fills in the epoch, with every exclusion and its reason."""
    params = inputs.params
    start, end = params.epoch_start_ms, params.epoch_end_ms
    fills = {p.address: [f for f in p.fills if start <= f.ts_ms < end] for p in inputs.participants}
    confirmed = {a: [f for f in fs if f.confirmed] for a, fs in fills.items()}
    # Self-trades and linked washes read "appears in the fills": every reported fill of the epoch counts, confirmed
    # or not (a participant's own report, or its group's, is evidence against it). The mutual-volume test weighs
    # volume, so only what the exchange confirmed counts there.
    reported_by: dict[str, set[str]] = defaultdict(set)
    sides: dict[tuple[str, str], set[str]] = defaultdict(set)
    for address, fs in fills.items():
        for f in fs:
            reported_by[f.trade_id].add(address)
            sides[(address, f.trade_id)].add(f.side)
    owners: dict[str, set[str]] = defaultdict(set)
    for address, fs in confirmed.items():
        for f in fs:
            owners[f.trade_id].add(address)
    maker_volume = {a: sum(f.cents for f in fs if f.maker) for a, fs in confirmed.items()}
    with_other: dict[tuple[str, str], int] = defaultdict(int)  # (i, j) → i's cents in trades shared with j
    for address, fs in confirmed.items():
        for f in fs:
            for other in owners[f.trade_id]:
                if other != address:
                    with_other[(address, other)] += f.cents

    def mutual_wash(i: str, j: str) -> bool:
        return 2 * with_other[(i, j)] > maker_volume[i] or 2 * with_other[(j, i)] > maker_volume[j]

    volume: dict[str, int] = {}
    exclusions: dict[str, tuple[FillExclusion, ...]] = {}
    limit = params.max_off_mid_trade_bps
    for address, fs in fills.items():
        total = 0
        excluded: list[FillExclusion] = []
        for f in fs:
            if not f.maker:
                continue
            others = owners[f.trade_id] - {address} if f.confirmed else set()
            reason: str | None = None
            if not f.confirmed:
                reason = NOT_ON_EXCHANGE
            elif len(sides[(address, f.trade_id)]) > 1:
                reason = SELF_TRADE
            elif any(group_of[o] == group_of[address] for o in reported_by[f.trade_id] - {address}):
                reason = WASH_LINKED
            elif any(mutual_wash(address, o) for o in others):
                reason = WASH_MUTUAL
            else:
                mid = _reference_mid(ctx, f.ts_ms)
                if mid is None:
                    reason = NO_REFERENCE_MID
                elif abs(f.price - mid) * 10_000 > limit * mid:
                    reason = OFF_MARKET
            if reason is None:
                total += f.cents
            else:
                excluded.append(FillExclusion(trade_id=f.trade_id, side=f.side, reason=reason))
        volume[address] = total
        exclusions[address] = tuple(sorted(excluded, key=lambda x: (x.trade_id, x.side, x.reason)))
    return volume, exclusions


def review_flags(participant: Participant, depth: DepthOutcome, params_start: int, params_end: int) -> Flags:
    """The participant's flags: depth drops from the depth pass, and the review-only cancel and rate figures, which
    count only the epoch's events (orders closed, orders created, fills in [start, end))."""

    def in_epoch(ts_ms: int | None) -> bool:
        return ts_ms is not None and params_start <= ts_ms < params_end

    filled: dict[str, Fraction] = defaultdict(Fraction)
    for f in participant.fills:
        filled[f.order_id] += f.amount  # all reported fills: whether the order was filled in full
    cancelled = sum(1 for o in participant.orders if in_epoch(o.closed_ms) and filled[o.order_id] < o.amount)
    per_second: dict[int, int] = defaultdict(int)
    for o in participant.orders:
        if in_epoch(o.created_ms):
            per_second[o.created_ms // 1000] += 1
    address = participant.address
    return Flags(
        not_on_exchange=tuple(sorted(o.order_id for o in participant.orders if not o.confirmed)),
        not_visible=depth.not_visible[address],
        over_claimed=depth.over_claimed[address],
        cancelled=cancelled,
        fills=sum(1 for f in participant.fills if in_epoch(f.ts_ms)),
        orders_per_second_peak=max(per_second.values(), default=0),
    )


def score_epoch(inputs: EpochInputs, *, depth_path: DepthPath = "auto") -> EpochScores:
    """Every step of the reward model for one epoch. `depth_path` "auto" uses the vectorized depth computation
    when its int64 bounds hold (checked up front) and the exact reference otherwise; both give the same numbers."""
    ctx = sample_context(inputs)
    outcome: DepthOutcome | None = None
    used = "reference"
    if depth_path != "reference":
        outcome = depth_vector(inputs, ctx)
        if outcome is None and depth_path == "vector":
            raise ValueError("the vectorized depth path cannot take this epoch within int64")
        used = "vector"
    if outcome is None:
        outcome = depth_reference(inputs, ctx)
        used = "reference"
    group_of = linked_groups(inputs.participants)
    own_volume, exclusions = volume_scores(inputs, ctx, group_of)
    depth: dict[str, int] = defaultdict(int)
    volume: dict[str, int] = defaultdict(int)
    for p in inputs.participants:
        lead = group_of[p.address]
        depth[lead] += outcome.depth[p.address]
        volume[lead] += own_volume[p.address]
    members: dict[str, list[str]] = defaultdict(list)
    for address, lead in group_of.items():
        members[lead].append(address)
    groups = tuple(sorted(tuple(sorted(m)) for m in members.values() if len(m) > 1))
    credited_d = {p.address: depth.get(p.address, 0) for p in inputs.participants}
    credited_v = {p.address: volume.get(p.address, 0) for p in inputs.participants}
    share = shares(depth=credited_d, volume=credited_v, depth_weight=inputs.params.depth_weight)
    paid = amounts(budget=inputs.params.epoch_budget, shares_by_account=share)
    start, end = inputs.params.epoch_start_ms, inputs.params.epoch_end_ms
    results = tuple(
        ParticipantScore(
            address=p.address,
            depth=credited_d[p.address],
            volume=credited_v[p.address],
            share=share.get(p.address, Fraction(0)),
            amount=paid.get(p.address, 0),
            group=group_of[p.address] if len(members[group_of[p.address]]) > 1 else None,
            flags=review_flags(p, outcome, start, end),
            exclusions=exclusions[p.address],
        )
        for p in inputs.participants
    )
    return EpochScores(participants=results, gaps=ctx.gaps, groups=groups, median_move=ctx.median_move, depth_path=used)
