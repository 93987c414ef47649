"""MM orders on executors: start the job once the deposit is confirmed, pull and verify its reports (booking
every fill and fee in the ledger), follow its state, and wind it down on stop (issue 5).

Every step is idempotent and resumable from the database: a job id is chosen once, at START (`mmo<pk>-<random>`), the
executor makes `start` idempotent by job id, the START and JOB_RUNNING transitions are keyed, reports are
stored once by digest and chained by sequence, and ledger entries are keyed by trade id. A worker killed
between any two lines leaves a state the next beat picks up.

Provisioning: the executor's sealing and signing keys come from `provisioning_identity`, the single gate in
front of credential delivery (the attestation app's verified identity, in every profile).
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal, Inexact, InvalidOperation
from typing import Any

import ccxt
from django.conf import settings
from django.db import IntegrityError, transaction

from execution import selectors, services
from execution.domain import mm_order as mm
from execution.domain.ledger import Posting, Transaction, exchange_holdings, transfer, unbooked_source
from execution.domain.units import to_decimal
from execution.errors import ExecutorRefused, ExecutorUnavailable, LedgerConflict, LedgerOverdraft, ReportRejected
from execution.funds import asset_decimals, is_custody_asset
from execution.jobspec import build_job_spec, order_mid
from execution.models import ExecutionReport, MMOrder
from execution.provisioning import client_for, executor_lost_trust, pick_executor, provisioning_identity
from mrmarket.observability.logging import get_logger
from wire.canonical import canonical_bytes, digest
from wire.errors import ChainError, TooLarge, WireError
from wire.reports import SignedReport, validate_report, verify_chain
from wire.schema import DECIMAL_MAX_LEN

log = get_logger(__name__)


# --- start ---------------------------------------------------------------------------------------------------


def mm_order_start_job(*, order_id: int) -> MMOrder:
    """deposit_confirmed → starting → running. Safe to repeat at any point; resumes a half-done start."""
    order = MMOrder.objects.select_related("exchange_account").get(pk=order_id)
    if order.state == mm.State.DEPOSIT_CONFIRMED:
        with transaction.atomic():
            locked = MMOrder.objects.select_for_update().get(pk=order_id)
            if locked.state == mm.State.DEPOSIT_CONFIRMED and locked.job_spec is None:
                locked.executor_url = pick_executor(exchange=order.exchange_account.exchange)
                locked.job_spec = build_job_spec(order, mid=order_mid(order))
                locked.job_id = locked.job_spec["job_id"]
                locked.save(update_fields=["executor_url", "job_spec", "job_id", "updated_at"])
            order = services.mm_order_transition(
                order_id=order_id,
                event=mm.Event.START,
                key=f"o{order_id}-start",
                detail={"executor": locked.executor_url, "job_id": locked.job_id},
            )
        order = MMOrder.objects.select_related("exchange_account").get(pk=order_id)
    if order.state != mm.State.STARTING or order.job_spec is None:
        return order
    with client_for(order) as client:
        identity = provisioning_identity(client)
        client.address_to(identity.signing_key)  # start and credentials go to the attested identity only
        if order.executor_signing_key and order.executor_signing_key != identity.signing_key:
            # The executor restarted (new keys): its earlier job is gone; the same job id starts again.
            log.warning("executor_identity_changed", order_id=order_id)
        MMOrder.objects.filter(pk=order_id).update(executor_signing_key=identity.signing_key)
        try:
            status = client.start(order.job_spec)
        except ExecutorRefused as exc:
            return _fail_start(order, exc)
        if status["state"] == "pending_credentials":
            credentials = services.exchange_account_credentials(account=order.exchange_account)
            try:
                client.deliver_credentials(
                    order.job_id,
                    sealing_key=identity.sealing_key,
                    job_spec_digest=digest(order.job_spec),
                    credentials={
                        "api_key": credentials.api_key,
                        "secret": credentials.secret,
                        **({"password": credentials.password} if credentials.password else {}),
                    },
                )
            except ExecutorRefused as exc:
                if (exc.extra or {}).get("executor_code") != "credentials_not_expected":
                    return _fail_start(order, exc)
            status = client.status(order.job_id)
    if status["state"] in ("running", "starting"):
        return services.mm_order_transition(
            order_id=order_id,
            event=mm.Event.JOB_RUNNING,
            key=f"o{order_id}-job-running-{order.job_id}",  # each job (a lost one's successor too) once
            detail={"executor": order.executor_url, "signing_key": identity.signing_key, "attested": identity.attested},
        )
    if status["state"] in ("failed", "revoked", "stopped"):
        return services.mm_order_transition(
            order_id=order_id,
            event=mm.Event.FAIL,
            key=f"o{order_id}-start-failed",
            detail={"reason": f"the job ended {status['state']}: {status.get('reason') or ''}"[:400]},
        )
    return order


def _fail_start(order: MMOrder, exc: ExecutorRefused) -> MMOrder:
    return services.mm_order_transition(
        order_id=order.pk,
        event=mm.Event.FAIL,
        key=f"o{order.pk}-start-refused",
        detail={"reason": f"the executor refused the job: {exc.message}"[:400]},
    )


# --- reports -------------------------------------------------------------------------------------------------


def _last_report(order: MMOrder) -> SignedReport | None:
    row = ExecutionReport.objects.filter(order=order, job_id=order.job_id).order_by("-sequence").first()
    if row is None:
        return None
    from wire.canonical import parse

    return SignedReport.from_json(parse(row.envelope))


def ingest_reports(order: MMOrder, envelopes: list[Any]) -> int:
    """Verify a page of reports against the job's signing key, spec and the stored chain, then store each
    verbatim with its fills booked. Reports are taken in order: those before the first that fails a check are
    stored; that one is refused (typed, counted, alerted) with nothing of it stored, and so is what follows it,
    which can only chain through it."""
    if envelopes:
        from attestation.selectors import signing_key_attested

        if signing_key_attested(order.executor_signing_key) is None:
            services.alert_raise(
                "report_unattested",
                f"order {order.pk}: reports of job {order.job_id} are signed by a key no accepted attestation bound",
                dedup=f"report-unattested:{order.job_id}",
                detail={"order": order.pk, "job_id": order.job_id},
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
            verified.append((signed, _fill_transactions(order, signed.report["fills"])))
            after = signed
    except WireError as exc:
        count = _store_verified(order, verified)
        _count_reports(order, accepted=count, refused=1)
        services.alert_raise(
            "report_rejected",
            f"order {order.pk}: a report of job {order.job_id} was refused: {exc}",
            dedup=f"report:{order.job_id}:{type(exc).__name__}",
            detail={"order": order.pk, "job_id": order.job_id, "reason": str(exc), "code": exc.code},
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
            )
            raise ReportRejected(
                f"report {signed.sequence} cannot be booked: {exc.message}",
                extra={"order": order.pk, "job_id": order.job_id, "reason_code": exc.code, "stored": count},
            ) from None
    return count


def _count_reports(order: MMOrder, *, accepted: int = 0, refused: int = 0) -> None:
    from attestation import services as attestation_services

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
        _record_spending(order, tx)
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


def _record_spending(order: MMOrder, tx: Transaction) -> None:
    """Record a fill or fee entry. An asset custody does not hold (a fee in BNB, a base custody cannot take home)
    can be spent on the exchange from a balance the ledger never saw arrive: the exchange's signed word is that
    the account held it, so the shortfall is first recognised from `external:unbooked:a<id>` (keyed by the
    account, not the order, so the order's holdings show what it consumed) and then spent. Custody's own assets
    get no such credit: a shortfall there is a real discrepancy, refused as an overdraft."""
    holdings = exchange_holdings(order.exchange_account_id)
    for posting in tx.postings:
        if posting.amount >= 0 or posting.account != f"{holdings}:{posting.asset}" or is_custody_asset(posting.asset):
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
        services.ledger_record(tx=_less(tx, account=str(account), units=short), memo="rounded")


def _less(tx: Transaction, *, account: str, units: int) -> Transaction:
    """`tx` with `units` fewer leaving `account` (and arriving at its counterpart): the same key and kind."""
    postings = list(tx.postings)
    i = next(i for i, p in enumerate(postings) if p.account == account and p.amount < 0)
    asset = postings[i].asset
    j = next(j for j, p in enumerate(postings) if j != i and p.asset == asset and p.amount > 0)
    postings[i] = Posting(account, asset, postings[i].amount + units)
    postings[j] = Posting(postings[j].account, asset, postings[j].amount - units)
    return Transaction(key=tx.key, kind=tx.kind, postings=tuple(p for p in postings if p.amount))


# Exact arithmetic on wire decimals: the caps bound them (wire.schema.DECIMAL_MAX_LEN digits each), so a
# product of two, scaled to base units, never needs more digits than this; nothing is rounded implicitly.
_EXACT = Context(prec=4 * DECIMAL_MAX_LEN, traps=[InvalidOperation, Inexact])
# What a ledger amount column holds (NUMERIC(78,0), ±uint256): a fill beyond it is refused, never truncated.
_MAX_UNITS = 2**256 - 1


def _units(value: Decimal, asset: str, *, up: bool) -> tuple[int, bool]:
    """In base units: what leaves the account rounded up, what arrives rounded down (ADR 0013); and whether
    that rounded anything."""
    scaled = _EXACT.multiply(value, Decimal(10) ** asset_decimals(asset))
    whole = int(scaled.to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR))
    if whole > _MAX_UNITS:
        raise TooLarge(f"{value} {asset} is more base units than a ledger amount holds", path="report.fills")
    return whole, Decimal(whole) != scaled


def _pair(account: str, counter: str, asset: str, units: int) -> tuple[Posting, ...]:
    """`units` of `asset` into `account` from `counter`; nothing when it rounds to zero base units."""
    return (Posting(account, asset, units), Posting(counter, asset, -units)) if units else ()


def _fill_transactions(order: MMOrder, fills: list[dict[str, Any]]) -> list[Transaction]:
    """Each fill against the market, and its fee to the exchange, in base units of each asset: custody's token
    decimals, or the fixed scale `NON_CUSTODY_DECIMALS` for an asset custody does not hold (`asset_decimals`), so
    every asset the exchange reports is booked. TooLarge (refusing the report) for an amount beyond what the
    ledger holds.

    The exchange keeps balances finer than a token's base unit; where a value does not fit, we book what we
    may hold at most (what leaves the account — a buy's quote, a sale's base, fees — rounded up, what arrives
    rounded down), so the ledger never claims more than the exchange holds; such entries carry the memo
    `rounded` (reconciliation tolerates that dust)."""
    base, quote = order.symbol.split("/")
    here = exchange_holdings(order.exchange_account_id)
    out: list[Transaction] = []
    for f in fills:
        amount, price = to_decimal(f["amount"]), to_decimal(f["price"])
        buy = f["side"] == "buy"
        base_units, base_rounded = _units(amount, base, up=not buy)
        quote_units, quote_rounded = _units(_EXACT.multiply(amount, price), quote, up=buy)
        sign = 1 if buy else -1
        postings = (
            *_pair(f"{here}:{base}", f"external:market:{base}", base, sign * base_units),
            *_pair(f"{here}:{quote}", f"external:market:{quote}", quote, -sign * quote_units),
        )
        kind = "fill_settle_rounded" if base_rounded or quote_rounded else "fill_settle"
        if postings:
            out.append(Transaction(key=f"o{order.pk}-fill-{f['trade_id']}", kind=kind, postings=postings))
        fee = to_decimal(f["fee"])
        if fee > 0:
            fee_units, fee_rounded = _units(fee, f["fee_asset"], up=True)
            out.append(
                transfer(
                    f"o{order.pk}-fee-{f['trade_id']}",
                    "fee_debit_rounded" if fee_rounded else "fee_debit",
                    asset=f["fee_asset"],
                    amount=fee_units,
                    source=here,
                    target="external:fees",
                )
            )
    return out


def mm_order_pull_reports(*, order_id: int) -> int:
    """Fetch reports after the last stored one and ingest them; alert when the newest is overdue."""
    order = MMOrder.objects.get(pk=order_id)
    if not order.job_id or not order.executor_url or not order.executor_signing_key:
        return 0
    last = ExecutionReport.objects.filter(order=order, job_id=order.job_id).order_by("-sequence").first()
    with client_for(order) as client:
        page = client.reports(order.job_id, after=last.sequence if last else None)
    stored = ingest_reports(order, page.get("reports") or [])
    _check_overdue(order)
    return stored


def _check_overdue(order: MMOrder) -> None:
    import time

    if order.state != mm.State.RUNNING or order.job_spec is None:
        return
    last = ExecutionReport.objects.filter(order=order, job_id=order.job_id).order_by("-sequence").first()
    started = order.transitions.filter(event=mm.Event.JOB_RUNNING.value).values_list("created_at", flat=True).last()
    if started is None:
        return
    since_ms = last.window_end_ms if last else int(started.timestamp() * 1000)
    allowed = (order.job_spec["report_interval_seconds"] + settings.EXECUTOR_REPORT_GRACE_SECONDS) * 1000
    if time.time() * 1000 - since_ms > allowed:
        services.alert_raise(
            "report_gap",
            f"order {order.pk}: no report from job {order.job_id} since {since_ms} ms",
            dedup=f"report-gap:{order.job_id}:{since_ms}",
            detail={"order": order.pk, "job_id": order.job_id, "since_ms": since_ms},
        )


# --- while running, and stop ---------------------------------------------------------------------------------


def mm_order_sync_job(*, order_id: int) -> MMOrder:
    """Pull reports and follow the job: a halted or failed job, or one the executor no longer knows (it
    restarted), pauses the order with an alert."""
    order = MMOrder.objects.get(pk=order_id)
    if order.state not in (mm.State.RUNNING, mm.State.PAUSED) or not order.job_id:
        return order
    if executor_lost_trust(order):
        return mm_order_revoke_job(order_id=order_id)  # its revocation event was lost, or has not run yet
    try:
        mm_order_pull_reports(order_id=order_id)
        with client_for(order) as client:
            status = client.status(order.job_id)
    except ExecutorRefused as exc:
        if (exc.extra or {}).get("executor_code") != "unknown_job" and _executor_still_listed(order):
            raise
        return _restart_lost_job(order)
    except ExecutorUnavailable:
        if _executor_still_listed(order):
            raise  # an outage: the job holds on its own risk limits and the next beat asks again
        return _restart_lost_job(order)
    if order.state == mm.State.RUNNING and status["state"] in ("halted", "failed", "revoked", "stopped"):
        services.alert_raise(
            "job_" + status["state"],
            f"order {order.pk}: job {order.job_id} is {status['state']}: {status.get('reason') or ''}",
            dedup=f"job:{order.job_id}:{status['state']}:{status.get('halted_at_ms')}",
            detail={"order": order.pk, "job_id": order.job_id, "reason": status.get("reason") or ""},
        )
        return services.mm_order_transition(
            order_id=order_id,
            event=mm.Event.PAUSE,
            key=f"o{order_id}-pause-{status['state']}-{status.get('halted_at_ms') or 0}",
            detail={"reason": status.get("reason") or status["state"]},
        )
    return order


def _executor_still_listed(order: MMOrder) -> bool:
    """Whether the order's executor URL is still one of those configured or discovered for its exchange. An
    executor that came back elsewhere (another port, another host) is registered under its new URL; whatever
    answers, or does not, at the old one no longer runs the job. When discovery cannot tell, assume listed."""
    from attestation.easyenclave import EasyEnclaveError, discovered_executor_urls

    if order.executor_url in settings.EXECUTOR_URLS:
        return True
    try:
        return order.executor_url in discovered_executor_urls(exchange=order.exchange_account.exchange)
    except EasyEnclaveError:
        return True


def _restart_lost_job(order: MMOrder) -> MMOrder:
    """The executor at the order's URL answers that it has no such job: it restarted (a TD keeps its keys and
    jobs in memory only) or was replaced. A running order gets a new job, with a new id (the lost job's report
    chain ends at its last stored report), on an executor routed and attested afresh like the first; the
    funds never left the exchange. A paused order stays paused: the operator paused it, and resuming it is
    theirs to decide (stopping works, the wind-down knows the job is gone)."""
    lost = order.job_id
    if order.state != mm.State.RUNNING:
        services.alert_raise(
            "job_lost",
            f"order {order.pk}: the executor no longer knows job {lost}; the order stays {order.state}",
            dedup=f"job-lost:{lost}",
            detail={"order": order.pk, "job_id": lost},
        )
        return order
    cancelled = _cancel_lost_orders(order, lost_job_id=lost)
    booked = _book_unreported_fills(order, lost_job_id=lost)
    executor_url = pick_executor(exchange=order.exchange_account.exchange)
    spec = build_job_spec(order, mid=order_mid(order))
    with transaction.atomic():
        locked = MMOrder.objects.select_for_update().get(pk=order.pk)
        if locked.state != mm.State.RUNNING or locked.job_id != lost:
            return locked  # another worker handled it meanwhile
        locked.executor_url = executor_url
        locked.job_spec = spec
        locked.job_id = spec["job_id"]
        locked.executor_signing_key = ""
        locked.save(update_fields=["executor_url", "job_spec", "job_id", "executor_signing_key", "updated_at"])
        services.mm_order_transition(
            order_id=order.pk,
            event=mm.Event.JOB_LOST,
            key=f"o{order.pk}-job-lost-{lost}",
            detail={
                "lost_job_id": lost,
                "job_id": spec["job_id"],
                "executor": executor_url,
                "orders_cancelled": cancelled,
                "fills_booked": booked,
            },
        )
    log.warning(
        "job_lost", order_id=order.pk, lost_job_id=lost, job_id=spec["job_id"], executor=executor_url, fills=booked
    )
    return mm_order_start_job(order_id=order.pk)


LOST_FILLS_PAGE = 1000


def _book_unreported_fills(order: MMOrder, *, lost_job_id: str) -> int:
    """The fills a lost job made after its last report never reach a report: they are booked from the
    exchange's own trade history of the order's key (the record reconciliation holds the ledger to anyway),
    those of the job's orders only (recognised by their client order id prefix), each once by trade id, as a
    report would have booked it. Without this the next job would trade funds the ledger does not know of."""
    from execution.exchanges import exchange_call, exchange_client
    from execution.models import LedgerTransaction
    from wire.jobs import client_order_prefix

    account = order.exchange_account
    client = exchange_client(account.exchange, credentials=services.exchange_account_credentials(account=account))
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
            for tx in _fill_transactions(order, fills):
                _record_spending(order, tx)  # as a report's fills are booked: a BNB fee, a rounded unit
    except (LedgerOverdraft, LedgerConflict) as exc:
        # As for a report that cannot be booked: typed, alerted, and no new job trades on unexplained numbers.
        services.alert_raise(
            "report_unbookable",
            f"order {order.pk}: the fills lost job {lost_job_id} left cannot be booked: {exc.message}",
            dedup=f"report-unbookable:{lost_job_id}:lost-fills",
            detail={"order": order.pk, "job_id": lost_job_id, "reason": exc.message, "code": exc.code},
        )
        raise ReportRejected(
            f"the lost job's fills cannot be booked: {exc.message}",
            extra={"order": order.pk, "job_id": lost_job_id, "reason_code": exc.code},
        ) from None
    return len(fills)


def _cancel_lost_orders(order: MMOrder, *, lost_job_id: str) -> int:
    """Cancel what the lost job left resting on the exchange (its orders, by their client order id prefix): no
    process is left to manage them, and the new job places its own under another prefix. Cancelled before the
    lost fills are booked, so no fill lands between the booking and the new job. An order the exchange no longer
    knows was filled or cancelled meanwhile; its trades are in the history the booking reads."""
    from execution.exchanges import exchange_call, exchange_client
    from wire.jobs import client_order_prefix

    account = order.exchange_account
    client = exchange_client(account.exchange, credentials=services.exchange_account_credentials(account=account))
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


def mm_order_wind_down(*, order_id: int) -> MMOrder:
    """stopping: have the executor cancel everything and stop, book its last reports, then release the job so
    the funds can be withdrawn back. Safe to repeat until it reports `stopped`."""
    order = MMOrder.objects.get(pk=order_id)
    if order.state != mm.State.STOPPING or not order.job_id:
        return order
    if order.executor_url and order.executor_signing_key:
        with client_for(order) as client:
            try:
                status = client.stop(order.job_id)
            except ExecutorRefused as exc:
                if (exc.extra or {}).get("executor_code") != "unknown_job":
                    raise
                status = {"state": "stopped"}  # the executor never had it, or lost it when it restarted
            if status["state"] not in ("stopped", "revoked", "failed"):
                status = client.status(order.job_id)
            if status["state"] not in ("stopped", "revoked", "failed"):
                return order  # still cancelling; the next beat looks again
        if status.get("job_id"):
            try:
                mm_order_pull_reports(order_id=order_id)
            except ReportRejected as exc:
                # The executor lost its standing (revoked, or failed re-verification): its last reports are
                # refused and alerted, and the job is released all the same so the funds can come back.
                if (exc.extra or {}).get("reason_code") != "unattested_signing_key":
                    raise
    MMOrder.objects.filter(pk=order_id, job_id=order.job_id).update(job_id="")
    log.info("job_released", order_id=order_id)
    return MMOrder.objects.get(pk=order_id)


def mm_order_revoke_job(*, order_id: int) -> MMOrder:
    """The order's key was revoked: the executor wipes it at once (cancelling what rests while the key still
    works) and the order stops; wind-down then books the last reports and releases the job."""
    order = MMOrder.objects.get(pk=order_id)
    if not order.job_id or not order.executor_url:
        return order
    with client_for(order) as client:
        try:
            client.revoke(order.job_id)
        except ExecutorRefused as exc:
            if (exc.extra or {}).get("executor_code") != "unknown_job":
                raise
    if order.state in (mm.State.STARTING, mm.State.RUNNING, mm.State.PAUSED, mm.State.DEPOSIT_CONFIRMED):
        order = services.mm_order_stop(order_id=order_id, reason="exchange key revoked")
    return mm_order_wind_down(order_id=order_id)


def order_holdings(order: MMOrder) -> dict[str, int]:
    """What this order holds on its exchange account, per asset, from its own ledger entries (keys `o<pk>-…`): every
    asset its deposit, fills and fees touched, in that asset's base units (`asset_decimals`). Negative for an
    asset it consumed but never brought (a fee paid in BNB): there is nothing of it to bring back."""
    from execution.models import LedgerPosting

    totals: dict[str, int] = {}
    rows = LedgerPosting.objects.filter(
        transaction__key__startswith=f"o{order.pk}-", account__startswith=f"exchange:a{order.exchange_account_id}:"
    ).values_list("asset", "amount")
    for asset, amount in rows:
        totals[asset] = totals.get(asset, 0) + int(amount)
    return {asset: amount for asset, amount in totals.items() if amount}
