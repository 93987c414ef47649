"""The payout manifest of one epoch with 100,000 participants: a results bundle shaped as the engine writes it (flags,
one exclusion in ten, a tenth of the participants paid 0), amounts summing to an 18-decimal budget.

Times `payout_manifest` (the bundle's canonical bytes and digest, the checks, the leaves and the Merkle root over
~90,000 leaves) plus the manifest's own canonical digest, from the parsed bundle. Target: under 10 s on the 2-core
dev machine. Prints `BENCH <name> <value> <unit>` lines.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from payouts.domain.bundle import BUNDLE_SCHEMA
from payouts.domain.manifest import manifest_digest, payout_manifest

PARTICIPANTS = 100_000
BUDGET = 10**24 + 7


def generate(rng: random.Random) -> dict[str, Any]:
    accounts = sorted({"0x" + rng.randbytes(20).hex() for _ in range(PARTICIPANTS)})
    weights = [0 if rng.random() < 0.1 else rng.randrange(1, 10**9) for _ in accounts]
    total = sum(weights)
    amounts = [BUDGET * w // total for w in weights]
    amounts[weights.index(max(weights))] += BUDGET - sum(amounts)
    participants = [
        {
            "address": account,
            "depth": str(w),
            "volume": str(w // 3),
            "share": f"{w}/{total}" if w else "0/1",
            "amount": str(amount),
            "group": None,
            "flags": {
                "not_on_exchange": [],
                "not_visible": 0,
                "over_claimed": 0,
                "cancelled": 2,
                "fills": 4,
                "cancel_to_fill": "1/2",
                "orders_per_second_peak": 1,
            },
            "exclusions": [{"trade_id": f"t{n}", "side": "buy", "reason": "self_trade"}] if n % 10 == 0 else [],
        }
        for n, (account, w, amount) in enumerate(zip(accounts, weights, amounts, strict=True))
    ]
    return {
        "schema": BUNDLE_SCHEMA,
        "campaign": {"chain_id": 1, "address": "0x" + "c0" * 20, "metadata_hash": "0x" + "11" * 32},
        "epoch": {"index": 3, "start_ms": 1_700_006_400_000, "end_ms": 1_700_092_800_000},
        "parameters": {
            "epoch_seconds": 86_400,
            "sample_seconds": 60,
            "max_spread_bps": 100,
            "min_order_quote": "50",
            "min_rest_seconds": 30,
            "single_side_divisor": 3,
            "depth_weight": "4/5",
            "volatility_weighting": True,
            "max_off_mid_trade_bps": 200,
            "epoch_budget": str(BUDGET),
        },
        "inputs_digest": "ab" * 32,
        "participants": participants,
        "gaps": [],
        "groups": [],
        "volatility_median_ppm": 1000,
        "software": {"version": "0.1.0", "commit": "unknown"},
    }


def main() -> None:
    bundle = generate(random.Random(20261201))
    started = time.perf_counter()
    manifest = payout_manifest(bundle)
    digest = manifest_digest(manifest)
    done = time.perf_counter()
    assert manifest["total"] == str(BUDGET)
    assert len(digest) == 64
    assert manifest["merkle_root"] is not None
    print(f"BENCH payout_manifest_leaves {len(manifest['leaves'])} leaves")
    print(f"BENCH payout_manifest_100k_seconds {done - started:.3f} s")


if __name__ == "__main__":
    main()
