"""Reads of the execution app."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Count, Max, Q, QuerySet, Sum

from execution.domain import mm_order as mm
from execution.domain.ledger import exchange_scope, in_transit
from execution.models import ExchangeAccount, ExecutionReport, LedgerPosting, MMOrder, MMOrderTransition


def _exact_sums_in_python() -> bool:
    # SQLite would sum the text-stored amounts as floats; PostgreSQL sums NUMERIC exactly.
    return connection.vendor != "postgresql"


def ledger_balance(*, account: str) -> int:
    """The balance of one account, derived from its postings (base units)."""
    postings = LedgerPosting.objects.filter(account=account)
    if _exact_sums_in_python():
        return sum(postings.values_list("amount", flat=True))
    return int(postings.aggregate(total=Sum("amount"))["total"] or 0)


def ledger_balances(*, prefix: str = "") -> dict[str, int]:
    return _balances(LedgerPosting.objects.filter(account__startswith=prefix))


def _balances(postings: QuerySet[LedgerPosting]) -> dict[str, int]:
    """The non-zero balance of every account the postings touch (base units)."""
    totals: dict[str, int] = defaultdict(int)
    if _exact_sums_in_python():
        for account, amount in postings.values_list("account", "amount"):
            totals[account] += amount
    else:
        for row in postings.values("account").annotate(total=Sum("amount")):
            totals[row["account"]] = int(row["total"])
    return {account: total for account, total in totals.items() if total}


def exchange_account_list(*, owner_id: int) -> QuerySet[ExchangeAccount]:
    return ExchangeAccount.objects.filter(owner_id=owner_id).order_by("exchange", "label")


def mm_order_list(*, owner_id: int) -> QuerySet[MMOrder]:
    return MMOrder.objects.filter(owner_id=owner_id).order_by("-id").prefetch_related("transitions")


@dataclass(frozen=True)
class MMOrderSummary:
    """What an order's page shows beside its own row: its verified reports and the balances it moved money through."""

    reports: dict[str, int | None]  # count, fills, latest_sequence (None before the first report)
    ledger: dict[str, int]  # its transit account's and its exchange account's balances, base units


def mm_order_summaries(orders: Sequence[MMOrder]) -> dict[int, MMOrderSummary]:
    """Each order's summary, in a fixed number of queries however many orders (a list page is one read, not six
    per order). The ledger part is the balances of the accounts under the order's transit scope and its exchange
    account's scope; orders of one exchange account share the latter."""
    ids = [order.pk for order in orders]
    if not ids:
        return {}
    per_order = {
        row["order_id"]: row
        for row in ExecutionReport.objects.filter(order_id__in=ids)
        .values("order_id")
        .annotate(count=Count("id"), fills=Sum("fills"), newest=Max("id"))
    }
    newest = dict(
        ExecutionReport.objects.filter(id__in=[row["newest"] for row in per_order.values()]).values_list(
            "id", "sequence"
        )
    )
    prefixes = {f"{in_transit(pk)}:" for pk in ids} | {f"{exchange_scope(o.exchange_account_id)}:" for o in orders}
    within = Q()
    for prefix in sorted(prefixes):
        within |= Q(account__startswith=prefix)
    balances = _balances(LedgerPosting.objects.filter(within))
    summaries = {}
    for order in orders:
        row = per_order.get(order.pk)
        reports: dict[str, int | None] = (
            {"count": row["count"], "fills": int(row["fills"] or 0), "latest_sequence": newest[row["newest"]]}
            if row
            else {"count": 0, "fills": 0, "latest_sequence": None}
        )
        mine = (f"{in_transit(order.pk)}:", f"{exchange_scope(order.exchange_account_id)}:")
        ledger = {account: total for account, total in balances.items() if account.startswith(mine)}
        summaries[order.pk] = MMOrderSummary(reports=reports, ledger=ledger)
    return summaries


def mm_order_attempt(*, order_id: int) -> int:
    """The order's current attempt: how many times it failed (see `mm_order.attempt_of`)."""
    return MMOrderTransition.objects.filter(order_id=order_id, event=mm.Event.FAIL.value).count()


def order_holdings(order: MMOrder) -> dict[str, int]:
    """What this order holds on its exchange account, per asset, from its own ledger entries (keys `o<pk>-…`): every
    asset its deposit, fills and fees touched, in that asset's base units (`asset_decimals`). Negative for an
    asset it consumed but never brought (a fee paid in BNB): there is nothing of it to bring back."""
    totals: dict[str, int] = {}
    rows = LedgerPosting.objects.filter(
        transaction__key__startswith=f"o{order.pk}-",
        account__startswith=f"{exchange_scope(order.exchange_account_id)}:",
    ).values_list("asset", "amount")
    for asset, amount in rows:
        totals[asset] = totals.get(asset, 0) + int(amount)
    return {asset: amount for asset, amount in totals.items() if amount}


@dataclass(frozen=True)
class JobProofInputs:
    """What a job's proof of execution is built from (`attestation.proof.build_proof`)."""

    job_spec_digest: str
    reports: list[dict[str, Any]]  # sequence, digest, window_start_ms, window_end_ms, signing_key; in order


def job_proof_inputs(*, job_id: str) -> JobProofInputs | None:
    """The job's spec digest and its stored reports, or None when none of its reports is stored.

    The spec digest is the one the job's first stored report carries (verified against the order's spec when the
    report was ingested, and signed): an order whose job was replaced (its executor restarted) now holds the new
    job's spec, and the old job's proof must stay published — the oracle's inputs name its reports."""
    rows: list[dict[str, Any]] = [
        dict(row)
        for row in ExecutionReport.objects.filter(job_id=job_id)
        .order_by("sequence")
        .values("sequence", "digest", "window_start_ms", "window_end_ms", "signing_key")
    ]
    if not rows:
        return None
    first = ExecutionReport.objects.filter(job_id=job_id).order_by("sequence").only("envelope").first()
    assert first is not None  # rows is not empty
    spec_digest = str(json.loads(first.envelope)["report"]["job_spec_digest"])
    return JobProofInputs(job_spec_digest=spec_digest, reports=rows)
