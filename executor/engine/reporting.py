"""Report production for one job: windows, book samples, metrics, the hash chain and the signature.

Windows are wall-clock aligned: the first runs from the job's start to the next multiple of
`report_interval_seconds`; each next one covers one interval; the last ends when the job stops. Book samples
are taken at every multiple of `sample_seconds` (the sample carries that instant as `ts_ms`; its content is the
state the engine saw on its first tick at or after it). Events, fills and samples are placed in the window
their timestamp falls in, so a window closed a little late (ticks are discrete) still holds only its own.

Metrics per window: `uptime_ms` (time the job was running with the exchange reachable), `two_sided_ms` (time
with own resting orders on both sides), `depth_quote` (the mean over the window's samples of the quote value
of own resting orders within ±1/2/5 % of the mid), `spread_bps` (mean own spread over two-sided samples),
`inventory` (base and quote held at the end), `pnl` (cumulative at the end, `accounting.Position`) and `polling_ms`
(time the job quoted by REST polling because the exchange's streams were down or not offered).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from executor.strategy.base import Book
from wire.keys import SigningKey
from wire.reports import REPORT_SCHEMA, SignedReport, sign_report

BANDS = (("1pct", Decimal("0.01")), ("2pct", Decimal("0.02")), ("5pct", Decimal("0.05")))
Q = Decimal("1e-8")
ZERO = Decimal(0)


def dec(value: Decimal) -> str:
    """A decimal string as the wire wants it: plain notation, no exponent."""
    text = format(value, "f")
    return "0" if text in ("-0", "") else text


def _wire(item: dict[str, Any]) -> dict[str, Any]:
    return {k: dec(v) if isinstance(v, Decimal) else v for k, v in item.items()}


@dataclass
class _Window:
    start_ms: int
    end_ms: int
    uptime_ms: int = 0
    two_sided_ms: int = 0
    polling_ms: int = 0
    samples: list[dict[str, Any]] = field(default_factory=list)
    depth_sums: dict[str, Decimal] = field(default_factory=lambda: {b: ZERO for b, _ in BANDS})
    spread_sum: Decimal = ZERO
    spread_n: int = 0


@dataclass
class ReportBuilder:
    job_id: str
    job_spec_digest: str
    exchange: str
    symbol: str
    signing_key: SigningKey
    build_version: str
    measurement: str
    interval_ms: int
    sample_ms: int
    start_ms: int
    reports: list[SignedReport] = field(default_factory=list)
    _window: _Window = field(init=False)
    _next_sample_ms: int = field(init=False)
    _events: list[dict[str, Any]] = field(default_factory=list)
    _fills: list[dict[str, Any]] = field(default_factory=list)
    _unsigned: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._window = _Window(self.start_ms, self._boundary_after(self.start_ms, self.interval_ms))
        self._next_sample_ms = self._boundary_after(self.start_ms - 1, self.sample_ms)

    @staticmethod
    def _boundary_after(ts_ms: int, step_ms: int) -> int:
        return (ts_ms // step_ms + 1) * step_ms

    # -- inputs ------------------------------------------------------------------------------------------------

    def add(self, events: Sequence[dict[str, Any]], fills: Sequence[dict[str, Any]]) -> None:
        self._events.extend(events)
        self._fills.extend(fills)

    def account_time(self, dt_ms: int, *, up: bool, two_sided: bool, polling: bool = False) -> None:
        room = self._window.end_ms - self._window.start_ms
        if polling:
            self._window.polling_ms = min(room, self._window.polling_ms + dt_ms)
        if up:
            self._window.uptime_ms = min(room, self._window.uptime_ms + dt_ms)
        if two_sided:
            self._window.two_sided_ms = min(room, self._window.two_sided_ms + dt_ms)

    def sample_due(self, now_ms: int) -> int | None:
        """The sample instant due at `now_ms` (the latest boundary passed), or None. Missed instants are skipped."""
        if now_ms < self._next_sample_ms:
            return None
        due = (now_ms // self.sample_ms) * self.sample_ms
        self._next_sample_ms = due + self.sample_ms
        return due

    def sample(self, ts_ms: int, book: Book | None, resting: Sequence[Any]) -> None:
        """Record a book sample at `ts_ms` (a sample instant) with the job's own resting orders."""
        window = self._window
        if not window.start_ms <= ts_ms < window.end_ms:
            return  # belongs to a window already closed (a long stall): not rewritten
        bid = book.best_bid if book else None
        ask = book.best_ask if book else None
        window.samples.append(
            {
                "ts_ms": ts_ms,
                "best_bid": dec(bid) if bid is not None else None,
                "best_ask": dec(ask) if ask is not None else None,
                "resting": [
                    {
                        "client_order_id": o.client_order_id,
                        "side": o.side,
                        "price": dec(o.price),
                        "remaining": dec(o.remaining),
                        "placed_at_ms": o.placed_at_ms or o.created_ms,
                    }
                    for o in sorted(resting, key=lambda o: (o.side, o.price, o.client_order_id))
                ],
            }
        )
        mid = (bid + ask) / 2 if bid is not None and ask is not None else None
        if mid is None or mid <= 0:
            return
        for band, width in BANDS:
            window.depth_sums[band] += sum(
                (o.price * o.remaining for o in resting if abs(o.price - mid) <= mid * width), ZERO
            )
        buys = [o.price for o in resting if o.side == "buy"]
        sells = [o.price for o in resting if o.side == "sell"]
        if buys and sells:
            window.spread_sum += (min(sells) - max(buys)) / mid * 10_000
            window.spread_n += 1

    # -- windows -------------------------------------------------------------------------------------------------

    def close_due(self, now_ms: int) -> bool:
        return now_ms >= self._window.end_ms

    @property
    def count(self) -> int:
        """Reports closed so far, signed or about to be."""
        return len(self.reports) + len(self._unsigned)

    def close(
        self, *, inventory: dict[str, Decimal], pnl: dict[str, Decimal], end_ms: int | None = None, sign: bool = True
    ) -> None:
        """Close the current window (at its boundary, or at `end_ms` when the job stops) and sign its report, now
        or (`sign=False`) at the next `sign_pending`: the run loop signs after it answered the book, so a window's
        end never delays a requote. Whoever reads the reports gets them signed (`after`)."""
        window = self._window
        end = window.end_ms if end_ms is None else max(min(end_ms, window.end_ms), window.start_ms + 1)
        events = [e for e in self._events if e["ts_ms"] < end]
        fills = [f for f in self._fills if f["ts_ms"] < end]
        self._events = [e for e in self._events if e["ts_ms"] >= end]
        self._fills = [f for f in self._fills if f["ts_ms"] >= end]
        samples = [s for s in window.samples if s["ts_ms"] < end]
        n = len(samples)
        report = {
            "schema": REPORT_SCHEMA,
            "job_id": self.job_id,
            "sequence": self.count,
            "window_start_ms": window.start_ms,
            "window_end_ms": end,
            "prev_digest": None,  # the previous report's digest, set when this one is signed (in order)
            "job_spec_digest": self.job_spec_digest,
            "executor": {
                "build_version": self.build_version,
                "measurement": self.measurement,
                "signing_key": self.signing_key.public_hex,
            },
            "exchange": self.exchange,
            "symbol": self.symbol,
            "order_events": [_wire({**e, "ts_ms": max(e["ts_ms"], window.start_ms)}) for e in events],
            "fills": [_wire({**f, "ts_ms": max(f["ts_ms"], window.start_ms)}) for f in fills],
            "book_samples": samples,
            "metrics": {
                "uptime_ms": min(window.uptime_ms, end - window.start_ms),
                "two_sided_ms": min(window.two_sided_ms, end - window.start_ms),
                "polling_ms": min(window.polling_ms, end - window.start_ms),
                "depth_quote": {b: dec((window.depth_sums[b] / n).quantize(Q)) if n else "0" for b, _ in BANDS},
                "spread_bps": dec((window.spread_sum / window.spread_n).quantize(Decimal("0.01")))
                if window.spread_n
                else None,
                "inventory": {asset: dec(amount) for asset, amount in sorted(inventory.items())},
                "pnl": {k: dec(v.quantize(Q)) for k, v in pnl.items()},
            },
        }
        self._unsigned.append(report)
        self._window = _Window(end, end + self.interval_ms if end_ms is None else end + 1)
        if sign:
            self.sign_pending()

    def sign_pending(self) -> None:
        """Sign the closed reports not yet signed, oldest first, each chained to the one before."""
        pending, self._unsigned = self._unsigned, []
        for report in pending:
            report["prev_digest"] = self.reports[-1].digest if self.reports else None
            self.reports.append(sign_report(report, self.signing_key))

    def after(self, cursor: int | None, *, limit: int = 100) -> list[SignedReport]:
        """Reports with sequence > cursor (all from the first when cursor is None)."""
        self.sign_pending()
        start = 0 if cursor is None else cursor + 1
        return self.reports[start : start + limit]
