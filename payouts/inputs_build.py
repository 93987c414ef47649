"""Build one epoch's inputs document (`mrmarket.oracle-inputs/v1`) from what the oracle holds and what it asks.

What goes in (docs/scoring.md, "Published artifacts" and "Epoch close"):
- the campaign's parameters from its metadata document (the one whose SHA-256 is on chain), the epoch's bounds and
  the budget the participants can be paid, as the escrow computes them (`payouts.domain.epochs`);
- the oracle's own book snapshots at every sample time of the epoch and the few before it (gaps as gaps);
- per participant, the orders and fills of the verified reports of every job it named — the jobs of its MM orders,
  and the jobs pushed for its enrolled read-only accounts by executors elsewhere (`ExternalReport`) — each confirmed
  — or not — by the exchange's own record of the account the job traded, asked with that account's key
  (`payouts.crosscheck`), and the link keys of every account it trades through;
- the digests of every source report.

Reads only: nothing here writes. Exactly one epoch of one campaign is loaded at a time. A job whose reports cannot
be read as one event stream is left out and said so in the returned notes (its reports stay downloadable), rather
than blocking every other participant's pay.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import structlog
from django.db.models import QuerySet

from campaigns.models import Campaign, CampaignMetadata
from execution.accounts import exchange_account_client
from execution.models import ExchangeAccount, ExecutionReport, MMOrder
from mrmarket.errors import ApplicationError
from mrmarket.exchanges.errors import ExchangeUnavailable
from payouts import crosscheck
from payouts.domain.epochs import CampaignTerms
from payouts.domain.intake import IntakeError, NormalizedJob, normalize_job, order_as_of, participant_inputs
from payouts.domain.scoring.inputs import (
    INPUTS_SCHEMA,
    Fill,
    Links,
    Order,
    Params,
    Participant,
)
from payouts.errors import CampaignMetadataMissing, EpochNotStarted
from payouts.models import ExternalReport
from payouts.models import Participant as ParticipantRow
from payouts.models import ParticipantAccount as ParticipantAccountRow
from payouts.selectors import epoch_snapshots
from wire.canonical import parse
from wire.errors import WireError
from wire.reports import SignedReport

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class BuiltInputs:
    document: dict[str, Any]
    participants: int
    notes: list[dict[str, Any]] = field(default_factory=list)


def _seconds(t: datetime) -> int:
    return int(t.timestamp())


def campaign_terms(campaign: Campaign) -> CampaignTerms:
    return CampaignTerms(
        start=_seconds(campaign.start),
        end=_seconds(campaign.end),
        epoch_seconds=campaign.epoch_seconds,
        budget=int(campaign.budget),
        fee_bps=campaign.fee_bps,
    )


def campaign_scoring(campaign: Campaign) -> dict[str, Any]:
    """The scoring parameters of the campaign's metadata document (held only when its hash matched on chain)."""
    row = CampaignMetadata.objects.filter(hash=campaign.metadata_hash.lower()).first()
    if row is None:
        raise CampaignMetadataMissing(
            "the oracle does not hold the campaign's metadata document",
            extra={"campaign": campaign.address, "metadata_hash": campaign.metadata_hash},
        )
    return dict(row.document["scoring"])


def epoch_params(campaign: Campaign, epoch: int, *, until_ms: int | None = None) -> Params:
    """The epoch's parameters; with `until_ms`, those of the part of the epoch before it (a running estimate)."""
    terms = campaign_terms(campaign)
    scoring = campaign_scoring(campaign)
    start, end = terms.epoch_bounds(epoch)
    if until_ms is not None:
        end = min(end, -(-until_ms // 1000))
        if end <= start:
            raise EpochNotStarted(f"epoch {epoch} has not started", extra={"epoch": epoch})
    return Params.from_json(
        {
            "epoch_index": epoch,
            "epoch_start_ms": start * 1000,
            "epoch_end_ms": end * 1000,
            "epoch_seconds": terms.epoch_seconds,
            "sample_seconds": scoring["sample_seconds"],
            "max_spread_bps": scoring["max_spread_bps"],
            "min_order_quote": scoring["min_order_quote"],
            "min_rest_seconds": scoring["min_rest_seconds"],
            "single_side_divisor": scoring["single_side_divisor"],
            "depth_weight": scoring["depth_weight"],
            "volatility_weighting": scoring["volatility_weighting"],
            "max_off_mid_trade_bps": scoring["max_off_mid_trade_bps"],
            "epoch_budget": str(terms.epoch_payable(epoch)),
        },
        "params",
    )


def _parsed(rows: Iterable[Any]) -> Iterator[SignedReport]:
    """Stored report rows (verified when stored) read one at a time, in sequence order: a job's chain is never
    held whole. An envelope that no longer reads under the current wire schema raises WireError."""
    for row in rows:
        yield SignedReport.from_json(parse(row.envelope))


def _chains(reports: QuerySet[Any]) -> list[tuple[str, QuerySet[Any]]]:
    """Each job of a set of stored reports, with the query of its chain in sequence order."""
    job_ids = reports.order_by("job_id").values_list("job_id", flat=True).distinct()
    return [(job_id, reports.filter(job_id=job_id).order_by("sequence")) for job_id in job_ids]


def _job_reports(order: MMOrder) -> list[tuple[str, QuerySet[Any]]]:
    """Every verified report of every job the MM order ran, by job."""
    return _chains(ExecutionReport.objects.filter(order=order))


def _external_job_reports(link: ParticipantAccountRow) -> list[tuple[str, QuerySet[Any]]]:
    """Every report pushed for the enrolled account (verified when stored), by job."""
    return _chains(ExternalReport.objects.filter(account=link))


def _in_epoch_orders(orders: Iterable[Order], params: Params) -> list[Order]:
    """Orders live at some point in [start − min_rest, end): only those can be eligible at a sample time."""
    since = params.epoch_start_ms - params.min_rest_seconds * 1000
    return [
        o
        for o in orders
        if o.live[0].live_from_ms < params.epoch_end_ms and (o.closed_ms is None or o.closed_ms > since)
    ]


def _in_epoch_fills(fills: Iterable[Fill], params: Params) -> list[Fill]:
    return [f for f in fills if params.epoch_start_ms <= f.ts_ms < params.epoch_end_ms]


def _links(accounts: Sequence[ExchangeAccount], assets: Sequence[str]) -> Links:
    deposit: set[str] = set()
    withdrawal: set[str] = set()
    for account in accounts:
        found = crosscheck.link_keys(client=exchange_account_client(account=account), assets=assets)
        deposit.update(found.deposit_addresses)
        withdrawal.update(found.withdrawal_addresses)
    return Links(deposit_addresses=tuple(sorted(deposit)), withdrawal_addresses=tuple(sorted(withdrawal)))


def _note(notes: list[dict[str, Any]], address: str, left_out: str, **why: Any) -> None:
    notes.append({"participant": address, "left_out": left_out, **why})


def _normalized_jobs(
    row: ParticipantRow, campaign: Campaign, params: Params, notes: list[dict[str, Any]], sources: set[str]
) -> tuple[list[tuple[NormalizedJob, ExchangeAccount]], dict[int, ExchangeAccount]]:
    """Each job the participant is scored on, with the exchange account it traded (whose key cross-checks it):
    the jobs of its MM orders on the order's account, and the jobs pushed from executors elsewhere on the enrolled
    read-only account they were pushed for. Every account it trades through, for the link keys."""
    chains: list[tuple[str, QuerySet[Any], ExchangeAccount]] = []
    accounts: dict[int, ExchangeAccount] = {}
    for link in row.orders.select_related("mm_order__exchange_account").order_by("mm_order_id"):
        order = link.mm_order
        accounts[order.exchange_account_id] = order.exchange_account
        chains.extend((job_id, reports, order.exchange_account) for job_id, reports in _job_reports(order))
    for enrolled in row.accounts.select_related("exchange_account").order_by("exchange_account_id"):
        accounts[enrolled.exchange_account_id] = enrolled.exchange_account
        chains.extend(
            (job_id, reports, enrolled.exchange_account) for job_id, reports in _external_job_reports(enrolled)
        )
    jobs: list[tuple[NormalizedJob, ExchangeAccount]] = []
    for job_id, reports, account in chains:
        # Every report covering part of the epoch is a source, whether or not it carries an order or a fill.
        sources.update(
            reports.filter(
                window_start_ms__lt=params.epoch_end_ms, window_end_ms__gt=params.epoch_start_ms
            ).values_list("digest", flat=True)
        )
        try:
            job = normalize_job(_parsed(reports.iterator()))
        except WireError as exc:
            _note(notes, row.reward_address, "report_unreadable", job_id=job_id, why=exc.code)
            continue
        except IntakeError as exc:
            _note(notes, row.reward_address, exc.code, job_id=job_id, where=exc.path, why=exc.problem)
            log.warning("oracle_job_left_out", job_id=job_id, code=exc.code, campaign_id=campaign.pk)
            continue
        if (job.exchange, job.symbol) != (campaign.exchange, campaign.pair):
            _note(notes, row.reward_address, "market_mismatch", job_id=job_id)
            continue
        jobs.append((job, account))
    return jobs, accounts


def _participant(
    row: ParticipantRow, campaign: Campaign, params: Params, notes: list[dict[str, Any]], sources: set[str]
) -> Participant | None:
    """The participant's scoring input, or None when the exchange cannot vouch for its accounts (noted): an account
    whose link keys cannot be read could hide a wash or a sybil link, so it is not scored rather than scored
    unlinked. `ExchangeUnavailable` (an outage) propagates: the whole close is retried later."""
    symbol = campaign.pair
    jobs, accounts = _normalized_jobs(row, campaign, params, notes, sources)
    confirmed: list[NormalizedJob] = []
    for job, account in jobs:
        try:
            client = exchange_account_client(account=account)
            orders = crosscheck.confirm_orders(
                client=client, symbol=symbol, orders=_in_epoch_orders(job.orders, params)
            )
            fills = crosscheck.confirm_fills(
                client=client,
                symbol=symbol,
                fills=_in_epoch_fills(job.fills, params),
                since_ms=params.epoch_start_ms,
                until_ms=params.epoch_end_ms,
            )
        except ExchangeUnavailable:
            raise  # an outage: the whole close is retried later
        except ApplicationError as exc:
            # The account cannot be asked (revoked, untrusted credentials, a refused key) or its answer cannot be
            # read: the job is left out, never scored unconfirmed, and never holds back everybody else's close.
            _note(notes, row.reward_address, exc.code, job_id=job.job_id, why=exc.message)
            continue
        orders = tuple(order_as_of(o, params.epoch_end_ms) for o in orders)
        fills = tuple(_in_epoch_fills(fills, params))  # a confirmed fill is timed by the exchange: still in it?
        used = {o.report_digest for o in orders} | {f.report_digest for f in fills}
        sources.update(d for d in used if d is not None)
        confirmed.append(replace(job, orders=tuple(orders), fills=tuple(fills)))
    base, quote = symbol.split("/")
    try:
        links = _links(list(accounts.values()), (base, quote))
    except ExchangeUnavailable:
        raise
    except ApplicationError as exc:
        _note(notes, row.reward_address, exc.code, why=f"link keys unreadable: {exc.message}")
        return None
    try:
        return participant_inputs(confirmed, address=row.reward_address, links=links)
    except IntakeError as exc:
        # Its jobs contradict each other (one order or trade in two jobs): none of them can be trusted.
        _note(notes, row.reward_address, exc.code, where=exc.path, why=exc.problem)
        return None


def build_inputs(
    *, campaign: Campaign, epoch: int, until_ms: int | None = None, progress: Callable[[], None] | None = None
) -> BuiltInputs:
    """The inputs document of one epoch (a JSON-able dict, canonical-JSON-ready) and what was left out of it;
    with `until_ms`, of the part of a running epoch before it (for the participants' estimate, never recorded)."""
    params = epoch_params(campaign, epoch, until_ms=until_ms)
    snapshots = epoch_snapshots(campaign=campaign, sample_times=params.sample_times())
    prior = epoch_snapshots(campaign=campaign, sample_times=params.prior_sample_times())
    notes: list[dict[str, Any]] = []
    sources: set[str] = set()
    participants: list[Participant] = []
    for row in ParticipantRow.objects.filter(campaign=campaign).order_by("reward_address"):
        scored = _participant(row, campaign, params, notes, sources)
        if scored is not None:
            participants.append(scored)
        if progress is not None:
            progress()  # the close renews its lease here: a long build is not taken over while it runs
    document: dict[str, Any] = {
        "schema": INPUTS_SCHEMA,
        "campaign": {
            "chain_id": campaign.chain_id,
            "address": campaign.address,
            "metadata_hash": campaign.metadata_hash.lower(),
        },
        "epoch": params.epoch_json(),
        "parameters": params.parameters_json(),
        "snapshots": [s.as_json() for s in snapshots],
        "participants": [p.as_json() for p in participants],
        "source_reports": sorted(sources),
    }
    if prior:
        document["prior_snapshots"] = [s.as_json() for s in prior]
    return BuiltInputs(document=document, participants=len(participants), notes=notes)
