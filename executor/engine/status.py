"""What a job tells its controller: state, reachability, the feed it quotes from, orders, fills, PnL, latency."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from executor.engine.orders import OrderFlow
from executor.engine.reporting import dec
from wire.redaction import redact_text


def _pct(values: Iterable[float], q: float) -> int | None:
    ordered = sorted(values)
    if not ordered:
        return None
    return int(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


class StatusView(OrderFlow):
    def _inventory(self) -> dict[str, Decimal]:
        if not self.base_asset:
            return {}
        return {self.base_asset: self.balances.base_total, self.quote_asset: self.balances.quote_total}

    def _pnl(self) -> dict[str, Decimal]:
        if self.position is None:
            return {"realized": Decimal(0), "unrealized": Decimal(0), "fees": Decimal(0)}
        mark = self.book.mid if self.book else None
        return {
            "realized": self.position.realized,
            "unrealized": self.position.unrealized(mark),
            "fees": self.position.fees,
        }

    def status(self) -> dict[str, Any]:
        now = self.clock()
        mark = self.book.mid if self.book else None
        pnl = self._pnl()
        return {
            "job_id": self.job_id,
            "state": str(self.state),
            # Both may quote an exchange's error text: masked of any secret this process holds.
            "reason": redact_text(self.reason) if self.reason else None,
            "job_spec_digest": self.spec_digest,
            "exchange": self.spec.exchange,
            "symbol": self.symbol,
            "created_ms": self.created_ms,
            "exchange_reachable": self.failures == 0 and self.last_contact_ms is not None,
            "last_contact_ms": self.last_contact_ms,
            "book_age_ms": now - self.book_seen_ms if self.book_seen_ms else None,
            # streams: the book and the account from the exchange's streams; polling: by REST every tick
            # (streams down or not offered). The feed's counters say how often it fell back and why.
            "feed": self.feed.status() if self.feed is not None else {"mode": "polling", "reason": "no streams"},
            "dead_man_tripped": self.dead_man_tripped,
            "halted_at_ms": self.halted_at_ms,
            "last_error": redact_text(self.last_error) if self.last_error else None,
            "orders": {
                "live": len(self.tracker.live()),
                "resting": [
                    {
                        "client_order_id": o.client_order_id,
                        "side": o.side,
                        "price": dec(o.price),
                        "remaining": dec(o.remaining),
                    }
                    for o in self.tracker.resting()
                ],
                "unknown": len(self.tracker.in_state("unknown")),
            },
            "fills": len(self.tracker.trade_ids),
            "inventory": {k: dec(v) for k, v in self._inventory().items()},
            "pnl": {k: dec(v.quantize(Decimal("1e-8"))) for k, v in pnl.items()},
            "mark": dec(mark) if mark is not None else None,
            "reports": self.reporter.count if self.reporter else 0,
            # Integers only: the wire refuses floats (docs/api/report-v1.md).
            "tick_to_quote_ms_p50": _pct(self.tick_to_quote_ms, 0.5),
            "tick_to_quote_ms_p99": _pct(self.tick_to_quote_ms, 0.99),
            "quote_ack_ms_p99": _pct(self.quote_ack_ms, 0.99),
            "book_events": self.book_events,
            "requotes": self.requotes,
        }
