"""Published inputs documents (`mrmarket.oracle-inputs/v1`) built from the scoring fixtures' bare epochs."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from payouts.domain.scoring.inputs import INPUTS_SCHEMA, Params
from tests.payouts.scoring_fixtures import BEFORE, BOOK, STEP, T0, A, B, C, D, E, document, fill, order, participant

CAMPAIGN = {"chain_id": 31337, "address": "0x" + "c0" * 20, "metadata_hash": "0x" + "11" * 32}
REPORTS = [hashlib.sha256(f"report {n}".encode()).hexdigest() for n in range(3)]


def envelope(bare: dict[str, Any], *, source_reports: list[str] | None = None) -> dict[str, Any]:
    """The published document wrapping a bare epoch ({params, snapshots, participants}); a fresh tree, no value
    shared between two places (as parsed from a file)."""
    params = bare["params"]
    published = {
        "schema": INPUTS_SCHEMA,
        "campaign": CAMPAIGN,
        "epoch": {key: params[name] for name, key in Params.EPOCH_KEYS.items()},
        "parameters": {k: v for k, v in params.items() if k not in Params.EPOCH_KEYS},
        "snapshots": bare["snapshots"],
        "participants": bare["participants"],
        "source_reports": REPORTS if source_reports is None else source_reports,
    }
    if "prior_snapshots" in bare:
        published["prior_snapshots"] = bare["prior_snapshots"]
    return json.loads(json.dumps(published))


def rich_document() -> dict[str, Any]:
    """Every kind of value the document can hold: a gap, an empty side, links, unconfirmed orders and fills, report
    digests, a closed and an open order, fills in and out of the epoch."""
    orders = [
        order("b1", "buy", "99.80", "2"),
        order("a1", "sell", "100.3", "1", [(BEFORE, T0 + STEP, "1"), (T0 + STEP, T0 + 2 * STEP, "0.5")]),
        order("x1", "sell", "100.05", "3", confirmed=False),
    ]
    orders[0]["report_digest"] = REPORTS[0]
    fills = [
        fill("t1", "buy", "99.80", "0.50", maker=True),
        fill("t2", "sell", "100.3", "1", maker=False, confirmed=False),
    ]
    fills[0]["report_digest"] = REPORTS[1]
    bare = document(
        [
            participant(B, orders, fills, withdrawal=("w1",)),
            participant(A, [], [fill("t1", "sell", "99.80", "0.50", maker=False)], deposit=("d1",), withdrawal=("w1",)),
        ],
        books=[BOOK, None, {"bids": [["99", "1"]], "asks": []}, BOOK],
        volatility_weighting=True,
        epoch_budget="123456789012345678901234567890",
    )
    return envelope(bare)


def paying_document() -> dict[str, Any]:
    """Three participants paid (depth and volume, an ask-only one) and one who scores nothing, over a budget that
    does not divide evenly (so the remainder rounding shows in the amounts)."""
    bare = document(
        [
            participant(A, [order("a1", "buy", "99.80", "2"), order("a2", "sell", "100.3", "1")]),
            participant(C, [order("c1", "buy", "99.95", "3")], [fill("tc", "buy", "99.95", "1", maker=True)]),
            participant(D, [order("d1", "sell", "100.1", "4")]),
            participant(E),
        ],
        epoch_budget="1000000000000000000007",
    )
    return envelope(bare)
