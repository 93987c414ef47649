"""Campaign templates: scoring defaults a creator starts from, and the bounds within which the
wizard lets them edit. Reasons for each choice: docs/campaign-templates.md. Pure: no Django."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from campaigns.domain.metadata import SCHEMA_ID, FieldError, MetadataError, validate

Bounds = dict[str, tuple[int, int]]


@dataclass(frozen=True)
class Template:
    id: str
    title: str
    summary: str
    scoring: dict[str, Any]
    epoch_seconds: int
    bounds: Bounds  # editable integer scoring fields: (low, high), inclusive


TEMPLATES: dict[str, Template] = {
    t.id: t
    for t in (
        Template(
            id="stable_depth",
            title="Stable depth",
            summary="Tight, thick, two-sided books for a liquid pair: pay mostly for depth close to the mid.",
            scoring={
                "sample_seconds": 60,
                "max_spread_bps": 50,
                "min_order_quote": "100",
                "min_rest_seconds": 60,
                "single_side_divisor": 3,
                "depth_weight": "4/5",
                "volatility_weighting": False,
                "max_off_mid_trade_bps": 100,
            },
            epoch_seconds=86_400,
            bounds={"max_spread_bps": (10, 100), "min_rest_seconds": (30, 300), "single_side_divisor": (2, 10)},
        ),
        Template(
            id="high_volatility",
            title="High volatility",
            summary="Keep quotes up when the price moves: wider band, samples weighted by recent mid movement.",
            scoring={
                "sample_seconds": 30,
                "max_spread_bps": 200,
                "min_order_quote": "50",
                "min_rest_seconds": 30,
                "single_side_divisor": 3,
                "depth_weight": "7/10",
                "volatility_weighting": True,
                "max_off_mid_trade_bps": 400,
            },
            epoch_seconds=86_400,
            bounds={"max_spread_bps": (100, 500), "min_rest_seconds": (10, 120), "single_side_divisor": (2, 10)},
        ),
        Template(
            id="market_cap_defense",
            title="Market-cap defense",
            summary="Deep, patient books around the price for a newly listed token; two-sided in v0, long rests.",
            scoring={
                "sample_seconds": 60,
                "max_spread_bps": 100,
                "min_order_quote": "200",
                "min_rest_seconds": 300,
                "single_side_divisor": 4,
                "depth_weight": "9/10",
                "volatility_weighting": False,
                "max_off_mid_trade_bps": 200,
            },
            epoch_seconds=86_400,
            bounds={"max_spread_bps": (50, 200), "min_rest_seconds": (120, 1800), "single_side_divisor": (2, 10)},
        ),
        Template(
            id="low_cost_maintenance",
            title="Low-cost maintenance",
            summary="A modest budget that keeps a quiet market quoted: wide band, slow samples, weekly epochs.",
            scoring={
                "sample_seconds": 300,
                "max_spread_bps": 300,
                "min_order_quote": "20",
                "min_rest_seconds": 300,
                "single_side_divisor": 2,
                "depth_weight": "9/10",
                "volatility_weighting": False,
                "max_off_mid_trade_bps": 500,
            },
            epoch_seconds=604_800,
            bounds={"max_spread_bps": (150, 1000), "min_rest_seconds": (60, 1800), "single_side_divisor": (1, 5)},
        ),
    )
}


def build_metadata(
    *,
    template_id: str,
    chain_id: int,
    reward_token: dict[str, Any],
    exchange: str,
    pair: str,
    start: int,
    end: int,
    budget: int,
    dispute_window_seconds: int = 172_800,
    title: str = "",
    scoring_overrides: dict[str, Any] | None = None,
    epoch_seconds: int | None = None,
) -> dict[str, Any]:
    """The metadata a creator signs for: a template's defaults, their edits within its bounds, validated.
    `epoch_seconds` replaces the template's epoch length (the schema bounds it)."""
    template = TEMPLATES.get(template_id)
    if template is None:
        raise MetadataError(
            [FieldError("template", f"unknown template {template_id!r}; known: {', '.join(TEMPLATES)}")]
        )
    scoring = copy.deepcopy(template.scoring)
    errors = []
    for name, value in (scoring_overrides or {}).items():
        if name not in scoring:
            errors.append(FieldError(f"scoring.{name}", "is not a scoring parameter"))
            continue
        if name in template.bounds and isinstance(value, int) and not isinstance(value, bool):
            low, high = template.bounds[name]
            if not low <= value <= high:
                errors.append(FieldError(f"scoring.{name}", f"must be within [{low}, {high}] for {template.title}"))
                continue
        scoring[name] = value
    if errors:
        raise MetadataError(errors)
    metadata: dict[str, Any] = {
        "schema": SCHEMA_ID,
        "template": template_id,
        "chain_id": chain_id,
        "reward_token": copy.deepcopy(reward_token),
        "exchange": exchange,
        "pair": pair,
        "start": start,
        "end": end,
        "epoch_seconds": template.epoch_seconds if epoch_seconds is None else epoch_seconds,
        "budget": str(budget),
        "dispute_window_seconds": dispute_window_seconds,
        "scoring": scoring,
    }
    if title:
        metadata["title"] = title
    validate(metadata)
    return metadata
