"""Execution reports: schema `mrmarket.report/v1`, the signed envelope, and chain verification.

A report covers one window `[window_start_ms, window_end_ms)` of one job. Its digest is SHA-256 of its
canonical JSON; the envelope carries the digest and the executor's Ed25519 signature over it. Report n holds
the digest of report n-1 (`prev_digest`), so a verifier detects a missing, reordered or rewritten report.
The recording oracle scores from these (docs/scoring.md): resting orders at each book sample with the time they
were placed, and fills with exchange trade ids. Field by field: `docs/api/report-v1.md`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from wire import schema as s
from wire.canonical import canonical_bytes, digest
from wire.errors import ChainError, DigestMismatch, SchemaError, SignatureError
from wire.keys import SigningKey, verify_signature

REPORT_SCHEMA = "mrmarket.report/v1"
SYMBOL_RE = re.compile(r"[A-Z0-9]{1,20}/[A-Z0-9]{1,20}")

# Size caps: a report over one is refused (TooLarge) before its digest is computed or anything is booked. An
# executor within its risk limits (orders per second) stays far below them over any report interval.
MAX_ORDER_EVENTS = 20_000
MAX_FILLS = 5_000
MAX_BOOK_SAMPLES = 10_000
MAX_RESTING = 1_000

_side = s.one_of("buy", "sell")
_ts = s.integer(minimum=0)
_id = s.string(pattern=s.ID_RE)

# `ts_ms` is when the executor saw the event (it orders the stream); `exchange_ts_ms` is the exchange's own time
# of it, null when the exchange did not say: a placement's creation time, a close's update time, a fill's trade
# time. The recording oracle compares the exchange's times with what the exchange answers, exactly.
ORDER_EVENT = s.obj(
    {
        "ts_ms": _ts,
        "exchange_ts_ms": s.nullable(_ts),
        "event": s.one_of("placed", "cancelled", "rejected", "expired", "filled"),
        "client_order_id": _id,
        "exchange_order_id": s.nullable(_id),
        "side": _side,
        "price": s.nullable(s.decimal(positive=True)),
        "amount": s.decimal(non_negative=True),
        "reason": s.nullable(s.string(max_len=512)),
    }
)
FILL = s.obj(
    {
        "ts_ms": _ts,
        "exchange_ts_ms": _ts,
        "trade_id": _id,
        "client_order_id": _id,
        "exchange_order_id": _id,
        "side": _side,
        "price": s.decimal(positive=True),
        "amount": s.decimal(positive=True),
        "fee": s.decimal(non_negative=True),
        "fee_asset": s.string(pattern=re.compile(r"[A-Z0-9]{1,20}")),
        "liquidity": s.one_of("maker", "taker"),
    }
)
RESTING_ORDER = s.obj(
    {
        "client_order_id": _id,
        "side": _side,
        "price": s.decimal(positive=True),
        "remaining": s.decimal(positive=True),
        "placed_at_ms": _ts,
    }
)
BOOK_SAMPLE = s.obj(
    {
        "ts_ms": _ts,
        "best_bid": s.nullable(s.decimal(positive=True)),
        "best_ask": s.nullable(s.decimal(positive=True)),
        "resting": s.array(RESTING_ORDER, max_items=MAX_RESTING),
    }
)
METRICS = s.obj(
    {
        "uptime_ms": _ts,
        "two_sided_ms": _ts,
        "depth_quote": s.obj({band: s.decimal(non_negative=True) for band in ("1pct", "2pct", "5pct")}),
        "spread_bps": s.nullable(s.decimal(non_negative=True)),
        "inventory": s.mapping(s.string(pattern=re.compile(r"[A-Z0-9]{1,20}")), s.decimal()),
        "pnl": s.obj({"realized": s.decimal(), "unrealized": s.decimal(), "fees": s.decimal(non_negative=True)}),
    },
    # Time in the window the job quoted by polling because the exchange's streams were down or not offered
    # (added with the streaming executor; reports signed before it have no such key).
    optional={"polling_ms": _ts},
)
REPORT = s.obj(
    {
        "schema": s.one_of(REPORT_SCHEMA),
        "job_id": _id,
        "sequence": s.integer(minimum=0),
        "window_start_ms": _ts,
        "window_end_ms": _ts,
        "prev_digest": s.nullable(s.hex_string(32)),
        "job_spec_digest": s.hex_string(32),
        "executor": s.obj(
            {
                "build_version": s.string(max_len=64),
                "measurement": s.string(pattern=re.compile(r"([0-9a-f]{96})?")),
                "signing_key": s.hex_string(32),
            }
        ),
        "exchange": s.string(pattern=re.compile(r"[a-z0-9_]{1,32}")),
        "symbol": s.string(pattern=SYMBOL_RE),
        "order_events": s.array(ORDER_EVENT, max_items=MAX_ORDER_EVENTS),
        "fills": s.array(FILL, max_items=MAX_FILLS),
        "book_samples": s.array(BOOK_SAMPLE, max_items=MAX_BOOK_SAMPLES),
        "metrics": METRICS,
    }
)


def validate_report(report: Any) -> None:
    """Schema plus the rules a schema cannot say: window order, timestamps inside it, chain start."""
    REPORT(report, "report")
    start, end = report["window_start_ms"], report["window_end_ms"]
    if end <= start:
        raise SchemaError("window_end_ms must be after window_start_ms", path="report.window_end_ms")
    if (report["sequence"] == 0) != (report["prev_digest"] is None):
        raise SchemaError("prev_digest is null exactly for sequence 0", path="report.prev_digest")
    for key in ("order_events", "fills", "book_samples"):
        previous = start
        for index, item in enumerate(report[key]):
            ts = item["ts_ms"]
            if not start <= ts < end:
                raise SchemaError("timestamp outside the report window", path=f"report.{key}[{index}].ts_ms")
            if ts < previous:
                raise SchemaError("timestamps must not go backwards", path=f"report.{key}[{index}].ts_ms")
            previous = ts
    trade_ids = [f["trade_id"] for f in report["fills"]]
    if len(trade_ids) != len(set(trade_ids)):
        raise SchemaError("a trade id appears twice", path="report.fills")


@dataclass(frozen=True)
class SignedReport:
    report: dict[str, Any]
    digest: str
    signature: str

    @property
    def sequence(self) -> int:
        return int(self.report["sequence"])

    def as_json(self) -> dict[str, Any]:
        return {"report": self.report, "digest": self.digest, "signature": self.signature}

    @classmethod
    def from_json(cls, data: Any) -> SignedReport:
        if not isinstance(data, dict) or set(data) != {"report", "digest", "signature"}:
            raise SchemaError("an envelope has exactly report, digest and signature", path="envelope")
        s.hex_string(32)(data["digest"], "envelope.digest")
        s.hex_string(64)(data["signature"], "envelope.signature")
        return cls(report=data["report"], digest=data["digest"], signature=data["signature"])


def sign_report(report: dict[str, Any], key: SigningKey) -> SignedReport:
    validate_report(report)
    if report["executor"]["signing_key"] != key.public_hex:
        raise SchemaError("executor.signing_key is not the key signing the report", path="report.executor")
    report_digest = digest(report)
    return SignedReport(report=report, digest=report_digest, signature=key.sign(bytes.fromhex(report_digest)))


def verify_report(signed: SignedReport, *, signing_key: str) -> None:
    """Schema, digest and signature of one report, under the key the attestation bound (not the one it claims)."""
    validate_report(signed.report)
    if signed.report["executor"]["signing_key"] != signing_key:
        raise SignatureError(
            "report names another signing key than the attested one", path="report.executor.signing_key"
        )
    actual = digest(signed.report)
    if actual != signed.digest:
        raise DigestMismatch(f"digest {signed.digest} does not match the report's canonical form ({actual})")
    verify_signature(signing_key, bytes.fromhex(signed.digest), signed.signature)


def verify_chain(
    reports: Iterable[SignedReport],
    *,
    signing_key: str,
    after: SignedReport | None = None,
    job_spec_digest: str | None = None,
) -> list[SignedReport]:
    """Verify reports that must follow `after` (or start the chain) with no gap, reorder or overlap."""
    verified: list[SignedReport] = []
    previous = after
    for signed in reports:
        verify_report(signed, signing_key=signing_key)
        r = signed.report
        if job_spec_digest is not None and r["job_spec_digest"] != job_spec_digest:
            raise ChainError(f"report {r['sequence']} belongs to another job spec")
        if previous is None:
            if r["sequence"] != 0:
                raise ChainError(f"the chain starts at sequence {r['sequence']}, expected 0 (reports missing)")
        else:
            p = previous.report
            if r["job_id"] != p["job_id"]:
                raise ChainError(f"report {r['sequence']} belongs to job {r['job_id']}, not {p['job_id']}")
            if r["sequence"] != p["sequence"] + 1:
                raise ChainError(f"gap: sequence {r['sequence']} follows {p['sequence']}")
            if r["prev_digest"] != previous.digest:
                raise ChainError(f"report {r['sequence']} does not link to the digest of report {p['sequence']}")
            if r["window_start_ms"] != p["window_end_ms"]:
                raise ChainError(f"report {r['sequence']}'s window does not start where {p['sequence']}'s ended")
        verified.append(signed)
        previous = signed
    return verified


def report_bytes(signed: SignedReport) -> bytes:
    """The envelope in canonical form: what is stored verbatim and served."""
    return canonical_bytes(signed.as_json())


def empty_metrics() -> Mapping[str, Any]:
    return {
        "uptime_ms": 0,
        "two_sided_ms": 0,
        "depth_quote": {"1pct": "0", "2pct": "0", "5pct": "0"},
        "spread_bps": None,
        "inventory": {},
        "pnl": {"realized": "0", "unrealized": "0", "fees": "0"},
    }
