"""The alert rules that read what the oracle sees of a campaign's market, for the operators with a job running on
it; evaluated by beat (`tasks.evaluate_alert_rules`), written through execution's alert service, idempotent by
dedup key (docs/operators.md, "Alert rules").

- `side_missing` — in the ALERT_SIDE_MISSING_SAMPLES latest book snapshots of the recorder, every one has a side
  with no level inside the campaign's band (`max_spread_bps` around the mid), or is a one-sided book. Clears when
  the latest snapshot has both sides inside the band, or the operator has no running job on the campaign left; a
  gap for another reason (the exchange down) neither raises nor clears it.
- `spread_outside_band` — the latest report of an operator's running job on a campaign shows a mean own spread of
  twice the band or more: centred on the mid, its quotes sit outside the band and score nothing. Clears when a
  report shows a narrower spread, or the job no longer runs; a report without a spread (one-sided all window)
  neither raises nor clears it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from campaigns.models import Campaign
from campaigns.selectors import campaign_metadata_documents
from execution.alerts import Finding, RuleOutcome, Severity, alert_rule_apply
from execution.domain import mm_order as mm
from execution.models import Alert, ExecutionReport, MMOrder
from payouts.domain.book_alerts import Sides, missing_sides_text, sample_sides, spread_outside_band
from payouts.models import BookSnapshot
from wire.canonical import parse

SIDE_MISSING = "side_missing"
SPREAD_OUTSIDE_BAND = "spread_outside_band"


@dataclass(frozen=True)
class CampaignJobs:
    """A campaign's market and band, and the running orders on it of one operator."""

    campaign: Campaign
    max_spread_bps: int
    owner_id: int
    orders: tuple[MMOrder, ...]


def running_campaign_jobs() -> list[CampaignJobs]:
    """Every (campaign, operator) with a running order bound to the campaign, when the campaign's metadata (which
    the oracle holds verified by its hash) sets the band."""
    by_key: dict[tuple[int, str, int], list[MMOrder]] = defaultdict(list)
    running = MMOrder.objects.filter(state=mm.State.RUNNING, campaign_chain_id__isnull=False).exclude(job_id="")
    for order in running.order_by("pk"):
        by_key[(int(order.campaign_chain_id or 0), order.campaign_address.lower(), order.owner_id)].append(order)
    campaigns: dict[tuple[int, str], Campaign] = {}
    for chain_id, address, _ in by_key:
        found = Campaign.objects.filter(chain_id=chain_id, address=address).first()
        if found is not None:
            campaigns[(chain_id, address)] = found
    documents = campaign_metadata_documents(list(campaigns.values()))
    out = []
    for (chain_id, address, owner_id), orders in sorted(by_key.items()):
        campaign = campaigns.get((chain_id, address))
        if campaign is None:
            continue
        band = ((documents.get(campaign.metadata_hash.lower()) or {}).get("scoring") or {}).get("max_spread_bps")
        if isinstance(band, int) and not isinstance(band, bool) and band > 0:
            out.append(CampaignJobs(campaign, band, owner_id, tuple(orders)))
    return out


def _open_keys(kind: str) -> set[str]:
    return set(Alert.objects.filter(kind=kind, resolved_at__isnull=True).values_list("dedup_key", flat=True))


def _market(campaign: Campaign) -> str:
    return f"{campaign.pair} on {campaign.exchange}"


def rule_side_missing(*, samples: int | None = None) -> RuleOutcome:
    needed = samples if samples is not None else int(settings.ALERT_SIDE_MISSING_SAMPLES)
    still_open = _open_keys(SIDE_MISSING)
    findings = []
    for jobs in running_campaign_jobs():
        campaign = jobs.campaign
        rows = list(BookSnapshot.objects.filter(campaign=campaign).order_by("-t_ms")[:needed])
        sides = [sample_sides(book=r.book, gap_reason=r.gap_reason, max_spread_bps=jobs.max_spread_bps) for r in rows]
        dedup = f"side-missing:c{campaign.pk}:u{jobs.owner_id}"
        missing = len(rows) == needed and all(s.missing for s in sides)
        cleared = bool(sides) and sides[0] is Sides.BOTH
        if not missing and (cleared or dedup not in still_open):
            continue
        what = missing_sides_text(sides) if missing else "a side"
        findings.append(
            Finding(
                kind=SIDE_MISSING,
                dedup=dedup,
                message=(
                    f"campaign {campaign.address} ({_market(campaign)}): {what} of the book had no level inside the "
                    f"{jobs.max_spread_bps} bps band in the last {needed} samples"
                ),
                detail={
                    "campaign_id": campaign.pk,
                    "campaign": campaign.address,
                    "chain_id": campaign.chain_id,
                    "market": _market(campaign),
                    "samples": needed,
                    "sides": [s.value for s in sides],
                    "from_ms": rows[-1].t_ms if rows else None,
                    "to_ms": rows[0].t_ms if rows else None,
                    "max_spread_bps": jobs.max_spread_bps,
                    "orders": [o.pk for o in jobs.orders],
                },
                severity=Severity.WARNING,
                owner_id=jobs.owner_id,
            )
        )
    return alert_rule_apply(kinds=[SIDE_MISSING], findings=findings)


def _latest_spread(order: MMOrder) -> str | None:
    row = ExecutionReport.objects.filter(order=order, job_id=order.job_id).order_by("-sequence").first()
    if row is None:
        return None
    spread = parse(row.envelope)["report"]["metrics"]["spread_bps"]
    return None if spread is None else str(spread)


def rule_spread_outside_band() -> RuleOutcome:
    still_open = _open_keys(SPREAD_OUTSIDE_BAND)
    findings = []
    for jobs in running_campaign_jobs():
        for order in jobs.orders:
            spread = _latest_spread(order)
            wide = spread_outside_band(spread_bps=spread, max_spread_bps=jobs.max_spread_bps)
            dedup = f"spread-outside-band:o{order.pk}"
            if not wide and not (wide is None and dedup in still_open):
                continue
            findings.append(
                Finding(
                    kind=SPREAD_OUTSIDE_BAND,
                    dedup=dedup,
                    message=(
                        f"order {order.pk} ({_market(jobs.campaign)}): its quotes are {spread or 'too wide'} bps apart "
                        f"on average; the campaign scores orders within {jobs.max_spread_bps} bps of the mid only"
                    ),
                    detail={
                        "order": order.pk,
                        "job_id": order.job_id,
                        "campaign": jobs.campaign.address,
                        "spread_bps": spread,
                        "max_spread_bps": jobs.max_spread_bps,
                    },
                    severity=Severity.WARNING,
                    owner_id=order.owner_id,
                )
            )
    return alert_rule_apply(kinds=[SPREAD_OUTSIDE_BAND], findings=findings)


RULES: tuple[Callable[[], RuleOutcome], ...] = (rule_side_missing, rule_spread_outside_band)
