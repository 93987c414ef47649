"""The recording oracle's scoring of one daily epoch: 1,000 participants × 1,440 samples (one a minute) × 10 resting
orders each (five a side, each partially filled twice, so three live intervals), plus their fills, against an
oracle book of 40 levels a side whose mid wanders by a tick or two. About one level in a hundred is over-claimed
and one sample in a hundred is a gap, so those paths are timed too.

Times the whole thing from the published inputs document (plain dicts): parsing, then `score_epoch` (vectorized
depth, exact volume, groups, shares and amounts). Targets: under 5 s and 2 GB on the 2-core dev machine.
Prints `BENCH <name> <value> <unit>` lines.
"""

from __future__ import annotations

import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from payouts.domain.scoring.engine import score_epoch
from payouts.domain.scoring.inputs import EpochInputs

PARTICIPANTS = 1000
SAMPLES = 1440
ORDERS_PER_SIDE = 5
LEVELS = 40
START = 1_700_006_400_000
STEP = 60_000
MID_TICKS = 10_000  # mid 100.00 in ticks of 0.01


def price(ticks: int) -> str:
    return f"{ticks // 100}.{ticks % 100:02d}"


def generate(rng: random.Random) -> dict[str, Any]:
    snapshots: list[dict[str, Any]] = []
    for k in range(SAMPLES):
        if rng.random() < 0.01:
            snapshots.append({"t_ms": START + k * STEP, "book": None})
            continue
        best_bid = MID_TICKS - 1 - rng.randint(0, 2)
        best_ask = MID_TICKS + 1 + rng.randint(0, 2)

        def size() -> str:
            return "3" if rng.random() < 0.01 else "100000"

        snapshots.append(
            {
                "t_ms": START + k * STEP,
                "book": {
                    "bids": [[price(best_bid - i), size()] for i in range(LEVELS)],
                    "asks": [[price(best_ask + i), size()] for i in range(LEVELS)],
                },
            }
        )
    end = START + SAMPLES * STEP
    participants = []
    for n in range(PARTICIPANTS):
        orders, fills = [], []
        for j in range(2 * ORDERS_PER_SIDE):
            side = "buy" if j < ORDERS_PER_SIDE else "sell"
            ticks = MID_TICKS - 3 - rng.randint(0, 30) if side == "buy" else MID_TICKS + 3 + rng.randint(0, 30)
            amount = rng.randint(20, 400)  # hundredths
            placed = START - 60_000
            cut1, cut2 = sorted(rng.sample(range(START, end), 2))
            third = amount // 3
            live = [
                {"live_from_ms": placed, "live_to_ms": cut1, "remaining": price(amount)},
                {"live_from_ms": cut1, "live_to_ms": cut2, "remaining": price(amount - third)},
                {"live_from_ms": cut2, "live_to_ms": None, "remaining": price(amount - 2 * third)},
            ]
            oid = f"o{n}-{j}"
            confirmed = rng.random() > 0.01
            orders.append(
                {
                    "order_id": oid,
                    "side": side,
                    "price": price(ticks),
                    "amount": price(amount),
                    "live": live,
                    "exchange": {
                        "side": side,
                        "price": price(ticks),
                        "amount": price(amount),
                        "created_ms": placed,
                        "closed_ms": None,
                    }
                    if confirmed
                    else None,
                }
            )
            for cut, tid in ((cut1, f"t{n}-{j}-a"), (cut2, f"t{n}-{j}-b")):
                conf = {"trade_id": tid, "side": side, "price": price(ticks), "amount": price(third), "maker": True}
                fills.append(
                    {
                        "trade_id": tid,
                        "order_id": oid,
                        "side": side,
                        "price": price(ticks),
                        "amount": price(third),
                        "maker": True,
                        "ts_ms": cut,
                        "exchange": conf,
                    }
                )
        participants.append(
            {
                "address": "0x" + f"{n + 1:040x}",
                "orders": orders,
                "fills": fills,
                "links": {"deposit_addresses": [f"dep-{n // 2 if n < 20 else n}"], "withdrawal_addresses": []},
            }
        )
    params = {
        "epoch_index": 3,
        "epoch_start_ms": START,
        "epoch_end_ms": end,
        "epoch_seconds": 86_400,
        "sample_seconds": 60,
        "max_spread_bps": 100,
        "min_order_quote": "50",
        "min_rest_seconds": 30,
        "single_side_divisor": 3,
        "depth_weight": "4/5",
        "volatility_weighting": True,
        "max_off_mid_trade_bps": 200,
        "epoch_budget": "1000000000000000000000",
    }
    return {"params": params, "snapshots": snapshots, "participants": participants}


def main() -> None:
    doc = generate(random.Random(20261201))
    started = time.perf_counter()
    inputs = EpochInputs.from_json(doc)
    parsed = time.perf_counter()
    scores = score_epoch(inputs)
    done = time.perf_counter()
    assert scores.depth_path == "vector"
    assert sum(p.amount for p in scores.participants) == inputs.params.epoch_budget
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes
    print(f"BENCH scoring_parse_seconds {parsed - started:.3f} s")
    print(f"BENCH scoring_score_seconds {done - parsed:.3f} s")
    print(f"BENCH scoring_epoch_seconds {done - started:.3f} s")
    print(f"BENCH scoring_epoch_peak_rss_mb {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
