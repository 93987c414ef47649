"""Valid report documents for tests; each test mutates one thing."""

from __future__ import annotations

import copy
from typing import Any

from wire.keys import SigningKey
from wire.reports import REPORT_SCHEMA, SignedReport, empty_metrics, sign_report

KEY = SigningKey.from_seed(b"\x01" * 32)
OTHER_KEY = SigningKey.from_seed(b"\x02" * 32)
SPEC_DIGEST = "ab" * 32
WINDOW_MS = 10_000


def report(sequence: int = 0, *, prev_digest: str | None = None, key: SigningKey = KEY, job_id: str = "job-1") -> dict:
    start = 1_700_000_000_000 + sequence * WINDOW_MS
    return {
        "schema": REPORT_SCHEMA,
        "job_id": job_id,
        "sequence": sequence,
        "window_start_ms": start,
        "window_end_ms": start + WINDOW_MS,
        "prev_digest": prev_digest,
        "job_spec_digest": SPEC_DIGEST,
        "executor": {"build_version": "0.1.0", "measurement": "", "signing_key": key.public_hex},
        "exchange": "binance",
        "symbol": "MRM/USDT",
        "order_events": [
            {
                "ts_ms": start + 1,
                "exchange_ts_ms": start,
                "event": "placed",
                "client_order_id": f"j1-{sequence}-b0",
                "exchange_order_id": "1001",
                "side": "buy",
                "price": "0.9950",
                "amount": "100.0",
                "reason": None,
            }
        ],
        "fills": [
            {
                "ts_ms": start + 500,
                "exchange_ts_ms": start + 480,
                "trade_id": f"t{sequence}",
                "client_order_id": f"j1-{sequence}-b0",
                "exchange_order_id": "1001",
                "side": "buy",
                "price": "0.9950",
                "amount": "25.5",
                "fee": "0.0255",
                "fee_asset": "MRM",
                "liquidity": "maker",
            }
        ],
        "book_samples": [
            {
                "ts_ms": start,
                "best_bid": "0.9950",
                "best_ask": "1.0050",
                "resting": [
                    {
                        "client_order_id": f"j1-{sequence}-b0",
                        "side": "buy",
                        "price": "0.9950",
                        "remaining": "74.5",
                        "placed_at_ms": start - 40_000,
                    }
                ],
            }
        ],
        "metrics": copy.deepcopy(dict(empty_metrics())),
    }


def chain(n: int, *, key: SigningKey = KEY) -> list[SignedReport]:
    out: list[SignedReport] = []
    for i in range(n):
        out.append(sign_report(report(i, prev_digest=out[-1].digest if out else None, key=key), key))
    return out


def mutated(doc: dict, path: str, value: Any) -> dict:
    doc = copy.deepcopy(doc)
    target: Any = doc
    parts = path.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target[part]
    last = parts[-1]
    if value is DELETE:
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return doc


DELETE = object()
