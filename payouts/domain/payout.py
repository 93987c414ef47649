"""Epoch shares, payout amounts and the payout manifest, exactly as docs/scoring.md specifies. Pure.

All arithmetic is on exact rationals (`fractions.Fraction`); the only rounding is the floor of each amount,
and the remainder is handed out one base unit at a time, so the amounts always sum to the epoch budget
exactly (or to zero when nobody scored, in which case the budget stays refundable to the creator).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from math import floor

from payouts.domain.merkle import PayoutLeaf, PayoutTree

ADDRESS_RE = re.compile(r"0x[0-9a-f]{40}")
MANIFEST_SCHEMA = "mrmarket.payout-manifest/v1"


class PayoutError(ValueError):
    pass


def _check_scores(name: str, scores: Mapping[str, int]) -> None:
    for account, score in scores.items():
        if not ADDRESS_RE.fullmatch(account):
            raise PayoutError(f"{name}: {account!r} is not a lower-case 0x address")
        if isinstance(score, bool) or not isinstance(score, int) or score < 0:
            raise PayoutError(f"{name}: the score of {account} must be a non-negative integer")


def shares(*, depth: Mapping[str, int], volume: Mapping[str, int], depth_weight: Fraction) -> dict[str, Fraction]:
    """share_i = λ·D_i/ΣD + (1−λ)·V_i/ΣV; an empty side's weight moves to the other; all zero → no shares."""
    _check_scores("depth", depth)
    _check_scores("volume", volume)
    if not 0 <= depth_weight <= 1:
        raise PayoutError("depth_weight must be within [0, 1]")
    total_d, total_v = sum(depth.values()), sum(volume.values())
    if total_d == 0 and total_v == 0:
        return {}
    if total_d and total_v:
        weight_d, weight_v = depth_weight, 1 - depth_weight
    elif total_d:
        weight_d, weight_v = Fraction(1), Fraction(0)
    else:
        weight_d, weight_v = Fraction(0), Fraction(1)
    result: dict[str, Fraction] = {}
    for account in set(depth) | set(volume):
        share = Fraction(0)
        if total_d:
            share += weight_d * Fraction(depth.get(account, 0), total_d)
        if total_v:
            share += weight_v * Fraction(volume.get(account, 0), total_v)
        if share:
            result[account] = share
    return result


def amounts(*, budget: int, shares_by_account: Mapping[str, Fraction]) -> dict[str, int]:
    """floor(budget × share), then the remainder R one unit each to the largest fractional parts
    (ties: ascending address). Accounts with 0 are left out."""
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
        raise PayoutError("the epoch budget is a non-negative integer of base units")
    if not shares_by_account:
        return {}
    total_share = sum(shares_by_account.values(), Fraction(0))
    if total_share != 1:
        raise PayoutError(f"shares must sum to 1, not {total_share}")
    exact = {account: budget * share for account, share in shares_by_account.items()}
    paid = {account: floor(value) for account, value in exact.items()}
    remainder = budget - sum(paid.values())
    by_fraction = sorted(exact, key=lambda a: (-(exact[a] - paid[a]), a))
    for account in by_fraction[:remainder]:
        paid[account] += 1
    return {account: amount for account, amount in sorted(paid.items()) if amount > 0}


@dataclass(frozen=True)
class Manifest:
    leaves: tuple[PayoutLeaf, ...]
    total: int
    merkle_root: str  # 0x-prefixed hex

    def as_json(
        self,
        *,
        campaign: Mapping[str, object],
        epoch: Mapping[str, object],
        results_digest: str,
        budget: int,
        software: Mapping[str, object],
    ) -> dict[str, object]:
        """The document whose canonical digest goes on chain with publishPayout (docs/scoring.md, artifact 3)."""
        return manifest_json(
            self, campaign=campaign, epoch=epoch, results_digest=results_digest, budget=budget, software=software
        )


def manifest_json(
    paid: Manifest | None,
    *,
    campaign: Mapping[str, object],
    epoch: Mapping[str, object],
    results_digest: str,
    budget: int,
    software: Mapping[str, object],
) -> dict[str, object]:
    """The manifest document; with nobody paid (`None`) it has no leaves, a total of 0 and a null root, a
    document that is published for the record but never sent with publishPayout (the contract refuses a zero
    root)."""
    return {
        "schema": MANIFEST_SCHEMA,
        "campaign": dict(campaign),
        "epoch": dict(epoch),
        "results_digest": results_digest,
        "epoch_budget": str(budget),
        "leaves": []
        if paid is None
        else [{"index": x.index, "account": x.account, "amount": str(x.amount)} for x in paid.leaves],
        "total": "0" if paid is None else str(paid.total),
        "merkle_root": None if paid is None else paid.merkle_root,
        "software": dict(software),
    }


def manifest(paid: Mapping[str, int]) -> Manifest | None:
    """Leaves sorted by account, index = position, and the Merkle root over them; None when nobody is paid."""
    if not paid:
        return None
    leaves = tuple(PayoutLeaf(i, account, paid[account]) for i, account in enumerate(sorted(paid)))
    tree = PayoutTree(leaves)
    return Manifest(leaves=leaves, total=sum(paid.values()), merkle_root="0x" + tree.root.hex())
