"""What a lost job left on the exchange (its executor restarted or was replaced, and the job with it): its
resting orders cancelled and its unreported fills booked from the exchange's own trade history, both by the
job's client order id prefix, before a new job trades (`jobs._restart_lost_job`)."""

from __future__ import annotations

from typing import Any

import ccxt
from django.db import transaction

from execution import accounts, services
from execution.domain import mm_order as mm
from execution.errors import LedgerConflict, LedgerOverdraft, ReportRejected
from execution.models import LedgerTransaction, MMOrder
from execution.reports import order_fill_transactions, record_spending
from mrmarket.exchanges.client import exchange_call
from mrmarket.observability.logging import get_logger
from wire.jobs import client_order_prefix

log = get_logger(__name__)

LOST_FILLS_PAGE = 1000


def lost_job_book_fills(order: MMOrder, *, lost_job_id: str) -> int:
    """The fills a lost job made after its last report never reach a report: they are booked from the
    exchange's own trade history of the order's key (the record reconciliation holds the ledger to anyway),
    those of the job's orders only (recognised by their client order id prefix), each once by trade id, as a
    report would have booked it. Without this the next job would trade funds the ledger does not know of."""
    account = order.exchange_account
    client = accounts.exchange_account_client(account=account)
    started = (
        order.transitions.filter(event__in=[mm.Event.START.value, mm.Event.JOB_LOST.value])
        .values_list("created_at", flat=True)
        .last()
    )
    since = int(started.timestamp() * 1000) - 60_000 if started else None
    prefix = client_order_prefix(lost_job_id)
    with exchange_call(account.exchange, "the lost job's orders and trades"):
        ids = {o["id"] for o in _all_since(client.fetch_orders, order.symbol, since) if _cid(o).startswith(prefix)}
        trades = [t for t in _all_since(client.fetch_my_trades, order.symbol, since) if t.get("order") in ids]
    fills = [
        {
            "trade_id": str(t["id"]),
            "side": t["side"],
            "price": str(t["price"]),
            "amount": str(t["amount"]),
            "fee": str((t.get("fee") or {}).get("cost") or 0),
            "fee_asset": (t.get("fee") or {}).get("currency") or order.symbol.split("/")[1],
        }
        for t in sorted(trades, key=lambda t: (t["timestamp"], str(t["id"])))
        if not LedgerTransaction.objects.filter(key=f"o{order.pk}-fill-{t['id']}").exists()
    ]
    try:
        with transaction.atomic():
            for tx in order_fill_transactions(order, fills):
                record_spending(order, tx)  # as a report's fills are booked: a BNB fee, a rounded unit
    except (LedgerOverdraft, LedgerConflict) as exc:
        # As for a report that cannot be booked: typed, alerted, and no new job trades on unexplained numbers.
        services.alert_raise(
            "report_unbookable",
            f"order {order.pk}: the fills lost job {lost_job_id} left cannot be booked: {exc.message}",
            dedup=f"report-unbookable:{lost_job_id}:lost-fills",
            detail={"order": order.pk, "job_id": lost_job_id, "reason": exc.message, "code": exc.code},
            owner_id=order.owner_id,
        )
        raise ReportRejected(
            f"the lost job's fills cannot be booked: {exc.message}",
            extra={"order": order.pk, "job_id": lost_job_id, "reason_code": exc.code},
        ) from None
    return len(fills)


def lost_job_cancel_orders(order: MMOrder, *, lost_job_id: str) -> int:
    """Cancel what the lost job left resting on the exchange (its orders, by their client order id prefix): no
    process is left to manage them, and the new job places its own under another prefix. Cancelled before the
    lost fills are booked, so no fill lands between the booking and the new job. An order the exchange no longer
    knows was filled or cancelled meanwhile; its trades are in the history the booking reads."""
    account = order.exchange_account
    client = accounts.exchange_account_client(account=account)
    prefix = client_order_prefix(lost_job_id)
    cancelled = 0
    with exchange_call(account.exchange, "the lost job's resting orders"):
        for resting in client.fetch_open_orders(order.symbol):
            if not _cid(resting).startswith(prefix):
                continue
            try:
                client.cancel_order(resting["id"], order.symbol)
            except ccxt.OrderNotFound:
                continue
            cancelled += 1
    if cancelled:
        log.warning("lost_job_orders_cancelled", order_id=order.pk, lost_job_id=lost_job_id, cancelled=cancelled)
    return cancelled


def _cid(exchange_order: dict[str, Any]) -> str:
    return str(exchange_order.get("clientOrderId") or "")


def _all_since(fetch: Any, symbol: str, since: int | None) -> list[dict[str, Any]]:
    """Every row a ccxt history call returns from `since` on, page by page (rows sharing a page boundary's
    millisecond are fetched again and kept once)."""
    rows: dict[str, dict[str, Any]] = {}
    while True:
        page = fetch(symbol, since=since, limit=LOST_FILLS_PAGE)
        fresh = [r for r in page if str(r["id"]) not in rows]
        rows.update((str(r["id"]), r) for r in fresh)
        if len(page) < LOST_FILLS_PAGE or not fresh:
            return list(rows.values())
        since = max(int(r["timestamp"]) for r in page)
