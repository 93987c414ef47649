"""Placeholder for the vectorized depth path; returns None (use the reference)."""

from __future__ import annotations

from payouts.domain.scoring.depth import DepthOutcome, SampleContext
from payouts.domain.scoring.inputs import EpochInputs


def depth_vector(inputs: EpochInputs, ctx: SampleContext) -> DepthOutcome | None:
    return None
