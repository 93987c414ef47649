"""Builders of small scoring inputs documents (plain dicts, as the oracle publishes them) for the scoring tests."""

from __future__ import annotations

import copy
from typing import Any

from payouts.domain.scoring.inputs import EpochInputs

A, B, C, D, E = ("0x" + c * 40 for c in "abcde")
T0 = 1_700_000_040_000  # the epoch start (ms)
STEP = 60_000
BEFORE = T0 - 120_000  # orders placed this early have rested long enough at every sample

# mid 100: best bid 99.95, best ask 100.05
BOOK = {
    "bids": [["99.95", "2"], ["99.9", "10"], ["99.8", "10"]],
    "asks": [["100.05", "5"], ["100.1", "10"], ["100.3", "10"]],
}


def params(samples: int = 3, **over: Any) -> dict[str, Any]:
    p: dict[str, Any] = {
        "epoch_index": 0,
        "epoch_start_ms": T0,
        "epoch_end_ms": T0 + samples * STEP,
        "epoch_seconds": samples * 60,
        "sample_seconds": 60,
        "max_spread_bps": 100,
        "min_order_quote": "50",
        "min_rest_seconds": 30,
        "single_side_divisor": 3,
        "depth_weight": "4/5",
        "volatility_weighting": False,
        "max_off_mid_trade_bps": 200,
        "epoch_budget": 1000,
    }
    p.update(over)
    return p


def order(
    oid: str,
    side: str,
    price: str,
    amount: str,
    live: list[tuple[int, int | None, str]] | None = None,
    *,
    confirmed: bool = True,
    exchange: dict[str, Any] | None = None,
) -> dict[str, Any]:
    intervals = live if live is not None else [(BEFORE, None, amount)]
    if exchange is None and confirmed:
        exchange = {
            "side": side,
            "price": price,
            "amount": amount,
            "created_ms": intervals[0][0],
            "closed_ms": intervals[-1][1],
        }
    return {
        "order_id": oid,
        "side": side,
        "price": price,
        "amount": amount,
        "live": [{"live_from_ms": a, "live_to_ms": b, "remaining": r} for a, b, r in intervals],
        "exchange": exchange,
    }


def fill(
    tid: str, side: str, price: str, amount: str, *, maker: bool, ts: int = T0 + 1000, confirmed: bool = True
) -> dict[str, Any]:
    return {
        "trade_id": tid,
        "order_id": "o-" + tid,
        "side": side,
        "price": price,
        "amount": amount,
        "maker": maker,
        "ts_ms": ts,
        "exchange": {"trade_id": tid, "side": side, "price": price, "amount": amount, "maker": maker}
        if confirmed
        else None,
    }


def participant(
    address: str,
    orders: list[dict[str, Any]] | None = None,
    fills: list[dict[str, Any]] | None = None,
    *,
    deposit: tuple[str, ...] = (),
    withdrawal: tuple[str, ...] = (),
) -> dict[str, Any]:
    return {
        "address": address,
        "orders": orders or [],
        "fills": fills or [],
        "links": {"deposit_addresses": list(deposit), "withdrawal_addresses": list(withdrawal)},
    }


def document(
    participants: list[dict[str, Any]],
    *,
    books: list[dict[str, Any] | None] | None = None,
    samples: int = 3,
    prior_books: list[dict[str, Any] | None] | None = None,
    **over: Any,
) -> dict[str, Any]:
    """`prior_books` are the snapshots at the sample times just before the epoch, the last at T0 − STEP (the epoch
    must then not be the first: pass `epoch_index`)."""
    chosen = books if books is not None else [BOOK] * samples
    doc: dict[str, Any] = {
        "params": params(len(chosen), **over),
        "snapshots": [{"t_ms": T0 + k * STEP, "book": b} for k, b in enumerate(chosen)],
        "participants": participants,
    }
    if prior_books is not None:
        n = len(prior_books)
        doc["prior_snapshots"] = [{"t_ms": T0 - (n - k) * STEP, "book": b} for k, b in enumerate(prior_books)]
    return copy.deepcopy(doc)


def inputs(participants: list[dict[str, Any]], **kw: Any) -> EpochInputs:
    return EpochInputs.from_json(document(participants, **kw))


def mid_book(bid: str, ask: str) -> dict[str, Any]:
    return {"bids": [[bid, "10"], ["99.8", "10"]], "asks": [[ask, "10"]]}
