"""Report ingestion: a page of an executor's signed reports verified against the job's signing key, spec and the
stored chain, then each stored once (by digest, chained by sequence) with its fills and fees booked in the
ledger (`execution.domain.fills` does the arithmetic); and the alert when a running job's reports are overdue."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from attestation import services as attestation_services
from attestation.selectors import signing_key_attested
from execution import selectors, services
from execution.alert_rules import order_report_gap_check
from execution.domain import fills as fill_booking
from execution.domain.ledger import Transaction, exchange_holdings, of_asset, transfer, unbooked_source
from execution.errors import LedgerConflict, LedgerOverdraft, ReportRejected
from execution.funds import asset_decimals, is_custody_asset
from execution.models import ExecutionReport, MMOrder
from wire.canonical import canonical_bytes, digest, parse
from wire.errors import ChainError, WireError
from wire.reports import SignedReport, validate_report, verify_chain


def _last_report(order: MMOrder) -> SignedReport | None:
    row = ExecutionReport.objects.filter(order=order, job_id=order.job_id).order_by("-sequence").first()
    if row is None:
        return None
    return SignedReport.from_json(parse(row.envelope))


def ingest_reports(order: MMOrder, envelopes: list[Any]) -> int:
    """Verify a page of reports against the job's signing key, spec and the stored chain, then store each
    verbatim with its fills booked. Reports are taken in order: those before the first that fails a check are
    stored; that one is refused (typed, counted, alerted) with nothing of it stored, and so is what follows it,
    which can only chain through it."""
    if envelopes and signing_key_attested(order.executor_signing_key) is None:
        services.alert_raise(
            "report_unattested",
            f"order {order.pk}: reports of job {order.job_id} are signed by a key no accepted attestation bound",
            dedup=f"report-unattested:{order.job_id}",
            detail={"order": order.pk, "job_id": order.job_id},
            owner_id=order.owner_id,
        )
        raise ReportRejected(
            "the reports' signing key is not linked to an accepted attestation",
            extra={"order": order.pk, "job_id": order.job_id, "reason_code": "unattested_signing_key"},
        )
    previous = _last_report(order)
    verified: list[tuple[SignedReport, list[Transaction]]] = []
    try:
        spec_digest = digest(order.job_spec)
        after = previous
        for envelope in envelopes:
            signed = SignedReport.from_json(envelope)
            # Schema and size caps first: every step after reads only fields of a checked, bounded report.
            validate_report(signed.report)
            if previous is not None and signed.sequence <= previous.sequence:
                stored = (
                    ExecutionReport.objects.filter(job_id=order.job_id, sequence=signed.sequence)
                    .values_list("digest", flat=True)
                    .first()
                )
                if stored != signed.digest or digest(signed.report) != signed.digest:
                    raise ChainError(
                        f"report {signed.sequence} differs from the one already stored (rewritten history)"
                    )
                continue
            verify_chain([signed], signing_key=order.executor_signing_key, after=after, job_spec_digest=spec_digest)
            verified.append((signed, order_fill_transactions(order, signed.report["fills"])))
            after = signed
    except WireError as exc:
        count = _store_verified(order, verified)
        _count_reports(order, accepted=count, refused=1)
        services.alert_raise(
            "report_rejected",
            f"order {order.pk}: a report of job {order.job_id} was refused: {exc}",
            dedup=f"report:{order.job_id}:{type(exc).__name__}",
            detail={"order": order.pk, "job_id": order.job_id, "reason": str(exc), "code": exc.code},
            owner_id=order.owner_id,
        )
        raise ReportRejected(
            f"report refused: {exc}",
            extra={"order": order.pk, "job_id": order.job_id, "reason_code": exc.code, "stored": count},
        ) from None
    count = _store_verified(order, verified)
    _count_reports(order, accepted=count)
    return count


def _store_verified(order: MMOrder, verified: list[tuple[SignedReport, list[Transaction]]]) -> int:
    """Store verified reports in order. One the ledger cannot book (it spends a custody asset the ledger says
    the account does not hold) stops the page with a typed refusal and an alert, the reports before it kept:
    booking on numbers we cannot explain is how money is lost, and an untyped error would fail every beat."""
    count = 0
    for signed, txs in verified:
        try:
            count += _store(order, signed, txs)
        except (LedgerOverdraft, LedgerConflict) as exc:
            _count_reports(order, accepted=count, refused=1)
            services.alert_raise(
                "report_unbookable",
                f"order {order.pk}: report {signed.sequence} of job {order.job_id} cannot be booked: {exc.message}",
                dedup=f"report-unbookable:{order.job_id}:{signed.sequence}",
                detail={"order": order.pk, "job_id": order.job_id, "reason": exc.message, "code": exc.code},
                owner_id=order.owner_id,
            )
            raise ReportRejected(
                f"report {signed.sequence} cannot be booked: {exc.message}",
                extra={"order": order.pk, "job_id": order.job_id, "reason_code": exc.code, "stored": count},
            ) from None
    return count


def _count_reports(order: MMOrder, *, accepted: int = 0, refused: int = 0) -> None:
    attestation_services.executor_reports_counted(url=order.executor_url, accepted=accepted, refused=refused)


def _store(order: MMOrder, signed: SignedReport, txs: list[Transaction]) -> bool:
    """Store one verified report with its ledger entries, once: a second worker storing the same report at the
    same moment finds the unique digest taken and leaves (its ledger entries are idempotent by key). True when
    this call stored it."""
    try:
        with transaction.atomic():
            return _store_once(order, signed, txs)
    except IntegrityError:
        if not ExecutionReport.objects.filter(digest=signed.digest).exists():
            raise
        return False


def _store_once(order: MMOrder, signed: SignedReport, txs: list[Transaction]) -> bool:
    r = signed.report
    if ExecutionReport.objects.filter(digest=signed.digest).exists():
        return False
    for tx in txs:
        record_spending(order, tx)
    ExecutionReport.objects.create(
        order=order,
        job_id=r["job_id"],
        sequence=r["sequence"],
        digest=signed.digest,
        prev_digest=r["prev_digest"] or "",
        signing_key=r["executor"]["signing_key"],
        window_start_ms=r["window_start_ms"],
        window_end_ms=r["window_end_ms"],
        envelope=canonical_bytes(signed.as_json()).decode(),
        fills=len(r["fills"]),
    )
    return True


def record_spending(order: MMOrder, tx: Transaction) -> None:
    """Record a fill or fee entry. An asset custody does not hold (a fee in BNB, a base custody cannot take home)
    can be spent on the exchange from a balance the ledger never saw arrive: the exchange's signed word is that
    the account held it, so the shortfall is first recognised from `external:unbooked:a<id>` (keyed by the
    account, not the order, so the order's holdings show what it consumed) and then spent. Custody's own assets
    get no such credit: a shortfall there is a real discrepancy, refused as an overdraft."""
    holdings = exchange_holdings(order.exchange_account_id)
    for posting in tx.postings:
        if (
            posting.amount >= 0
            or posting.account != of_asset(holdings, posting.asset)
            or is_custody_asset(posting.asset)
        ):
            continue
        short = -(selectors.ledger_balance(account=posting.account) + posting.amount)
        if short > 0:
            services.ledger_record(
                tx=transfer(
                    f"a{order.exchange_account_id}-unbooked-{tx.key}",
                    "unbooked_credit",
                    asset=posting.asset,
                    amount=short,
                    source=unbooked_source(order.exchange_account_id),
                    target=holdings,
                )
            )
    if not tx.kind.endswith("_rounded"):
        services.ledger_record(tx=tx)
        return
    try:
        services.ledger_record(tx=tx, memo="rounded")
    except LedgerOverdraft as exc:
        # What leaves the account is rounded up (ADR 0013); when the account holds exactly the rounded-down
        # amount (the exchange's dust below a base unit was never booked either), the unit rounding added is
        # not taken: the ledger books what it holds, and reconciliation tolerates the unit either way.
        account, short = (exc.extra or {}).get("account"), int((exc.extra or {}).get("short", 0))
        if short != 1:
            raise
        services.ledger_record(tx=fill_booking.less(tx, account=str(account), units=short), memo="rounded")


def order_fill_transactions(order: MMOrder, fills: list[dict[str, Any]]) -> list[Transaction]:
    """The ledger entries of an order's fills (`fills.fill_transactions`), each asset in the base units the
    ledger books it in (`asset_decimals`)."""
    return fill_booking.fill_transactions(
        fills,
        order_id=order.pk,
        exchange_account_id=order.exchange_account_id,
        symbol=order.symbol,
        decimals=asset_decimals,
    )


def reports_check_overdue(order: MMOrder) -> None:
    """Alert (once per gap) when a running job has sent no report for longer than its interval and the grace; clear
    the gap's alert once a report covers it (`alert_rules.order_report_gap_check`, the beat rule for one order)."""
    order_report_gap_check(order)
