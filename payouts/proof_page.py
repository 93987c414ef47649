"""What the "depth is real" page (`/proof/`, and `/proof/campaigns/<chain_id>/<address>` for one campaign) shows:
every executor in good standing with its measurement, TCB status, evidence, last verification, uptime and what the
oracle saw of its reports; and, per running campaign, the share of the market's in-band depth — in the oracle's own
book snapshots of the open epoch so far — that orders reported by attested executors account for
(`payouts.domain.attested_depth`, kept with the epoch preview). docs/proof.md says what each figure means."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any

from django.db.models import BooleanField, ExpressionWrapper, OuterRef, Q, Subquery
from django.urls import reverse
from django.utils import timezone

from attestation.models import AttestationRecord, ExecutorRecord
from attestation.selectors import STANDING_STATES, Behaviour, executor_behaviour
from campaigns.domain.rules import percent_of_fraction
from campaigns.models import Campaign
from execution.models import ExecutionReport
from payouts.campaign_page import NODE_WINDOW_SECONDS
from payouts.domain.attested_depth import UNATTRIBUTED
from payouts.errors import CampaignUnknown
from payouts.models import EpochPreview, ExternalReport
from wire.measurement import expected_rtmr3

CENT = Decimal("0.01")


@dataclass(frozen=True)
class ProofExecutor:
    id: int
    state: str
    hardware: bool
    build_version: str
    source_commit: str
    mrtd: str
    rtmrs: tuple[str, ...]
    tcb_status: str
    evidence_kind: str
    last_verified_at: datetime | None
    checks_total: int
    uptime_text: str
    reports_accepted: int
    reports_refused: int
    quoting_now: bool
    behaviour: Behaviour
    deviation_text: str
    signing_key: str
    tags: tuple[str, ...]
    evidence_url: str | None
    allowlist_entry_id: int | None = None
    image_digest: str = ""  # the executor image the allowlist entry was made for
    expected_rtmr3: str = ""  # what that image implies (wire.measurement)
    rtmr3_matches: bool | None = None  # the executor's measured RTMR3 against it; None without an image

    @property
    def deviating(self) -> bool:
        return self.behaviour.deviating


@dataclass(frozen=True)
class ShareRow:
    """One identity's part of a campaign's in-band depth."""

    executor_id: int | None  # None: not an executor in good standing (unknown key, or trust withdrawn since)
    hardware: bool
    share: Fraction
    share_text: str


@dataclass(frozen=True)
class CampaignShare:
    chain_id: int
    address: str
    title: str
    epoch: int
    as_of: datetime
    samples: int
    book_depth_text: str  # Σ over the samples of the book's in-band depth, quote units
    attested: Fraction
    attested_text: str
    hardware_text: str
    dev_text: str
    other_text: str  # depth no attested executor reported (other makers, or unattested)
    rows: tuple[ShareRow, ...]
    campaign_url: str
    proof_url: str


@dataclass(frozen=True)
class ProofPage:
    executors: tuple[ProofExecutor, ...]
    campaigns: tuple[CampaignShare, ...]
    quoting_window_seconds: int


def _evidence_kind(record: AttestationRecord | None) -> str:
    if record is None:
        return "—"
    quote, token = getattr(record, "has_quote", False), getattr(record, "has_token", False)
    if quote and token:
        return "TDX quote + Intel Trust Authority token"
    return "TDX quote" if quote else "Intel Trust Authority token"


def _latest_accepted(executors: list[ExecutorRecord]) -> dict[int, AttestationRecord]:
    """Each executor's latest accepted attestation, without its heavy fields (quote, token, runtime config): one
    query for the ids, one for the rows, however many times they re-attested."""
    newest = AttestationRecord.objects.filter(executor=OuterRef("pk"), ok=True).order_by("-id").values("id")[:1]
    ids = [
        i
        for i in ExecutorRecord.objects.filter(pk__in=[e.pk for e in executors])
        .annotate(latest=Subquery(newest))
        .values_list("latest", flat=True)
        if i is not None
    ]
    rows = (
        AttestationRecord.objects.filter(pk__in=ids)
        .select_related("allowlist_entry")
        .defer("quote_b64", "ita_token", "runtime_config", "advisory_ids")
        .annotate(
            has_quote=ExpressionWrapper(~Q(quote_b64=""), output_field=BooleanField()),
            has_token=ExpressionWrapper(~Q(ita_token=""), output_field=BooleanField()),
        )
    )
    return {r.executor_id: r for r in rows}


def _quoting_keys(keys: list[str], *, now: datetime) -> set[str]:
    since = now - timedelta(seconds=NODE_WINDOW_SECONDS)
    found: set[str] = set()
    for model in (ExecutionReport, ExternalReport):
        found.update(
            model.objects.filter(signing_key__in=keys, received_at__gte=since)
            .values_list("signing_key", flat=True)
            .distinct()
        )
    return found


def proof_executors(*, only: set[int] | None = None, now: datetime | None = None) -> list[ProofExecutor]:
    """Executors in good standing (verified, or verified and missed a check since), quoting ones first."""
    now = now or timezone.now()
    records = ExecutorRecord.objects.filter(state__in=STANDING_STATES).order_by("id")
    if only is not None:
        records = records.filter(pk__in=only)
    executors = list(records)
    latest = _latest_accepted(executors)
    behaviour = executor_behaviour(e.pk for e in executors)
    quoting = _quoting_keys([e.signing_key for e in executors if e.signing_key], now=now)
    out = []
    for e in executors:
        record = latest.get(e.pk)
        seen = behaviour.get(e.pk, Behaviour())
        entry = record.allowlist_entry if record else None
        expected = expected_rtmr3(entry.image_digest) if entry and entry.image_digest else ""
        measured_rtmr3 = e.rtmrs[3] if len(e.rtmrs) == 4 else ""
        out.append(
            ProofExecutor(
                id=e.pk,
                state=e.state,
                hardware=e.hardware_attested,
                build_version=e.build_version,
                source_commit=entry.source_commit if entry else "",
                mrtd=e.mrtd,
                rtmrs=tuple(e.rtmrs),
                tcb_status=e.tcb_status,
                evidence_kind=_evidence_kind(record),
                last_verified_at=e.last_verified_at,
                checks_total=e.checks_total,
                uptime_text=f"{e.checks_ok * 100 // e.checks_total} % of {e.checks_total} checks"
                if e.checks_total
                else "—",
                reports_accepted=e.reports_accepted,
                reports_refused=e.reports_refused,
                quoting_now=bool(e.signing_key) and e.signing_key in quoting,
                behaviour=seen,
                deviation_text=_deviation_text(seen),
                signing_key=e.signing_key,
                tags=tuple(str(t) for t in e.tags),
                evidence_url=reverse("executor-evidence", args=[e.pk]) if record else None,
                allowlist_entry_id=entry.pk if entry else None,
                image_digest=entry.image_digest if entry else "",
                expected_rtmr3=expected,
                rtmr3_matches=(measured_rtmr3 == expected) if expected else None,
            )
        )
    return sorted(out, key=lambda x: (not x.quoting_now, x.id))


def _deviation_text(seen: Behaviour) -> str:
    parts = []
    if seen.orders_checked:
        share = percent_of_fraction(Fraction(seen.orders_not_visible, seen.orders_checked))
        parts.append(f"{share} of {seen.orders_checked} order checks not in the book")
    if seen.fills_checked:
        share = percent_of_fraction(Fraction(seen.fills_unconfirmed, seen.fills_checked))
        parts.append(f"{share} of {seen.fills_checked} fills not on the exchange")
    return "; ".join(parts) or "nothing checked yet"


def _key_executors(keys: list[str]) -> dict[str, ExecutorRecord]:
    """Signing key → the executor in good standing whose accepted attestation bound it."""
    pairs = (
        AttestationRecord.objects.filter(signing_key__in=keys, ok=True, executor__state__in=STANDING_STATES)
        .order_by("signing_key", "-id")
        .values_list("signing_key", "executor_id")
    )
    owner: dict[str, int] = {}
    for key, executor_id in pairs:
        owner.setdefault(key, executor_id)
    executors = ExecutorRecord.objects.in_bulk(set(owner.values()))
    return {key: executors[i] for key, i in owner.items()}


def _quote_text(value: Fraction, pair: str) -> str:
    """Quote units to the cent, half-even, with the pair's quote currency."""
    quote = pair.split("/")[1] if "/" in pair else ""
    cents = (Decimal(value.numerator) / Decimal(value.denominator)).quantize(CENT, rounding=ROUND_HALF_EVEN)
    return f"{cents:,} {quote}".strip()


def campaign_share(preview: EpochPreview) -> CampaignShare | None:
    """The campaign's attested share of in-band depth over its open epoch so far; None before any sample."""
    data: dict[str, Any] = preview.attested_depth or {}
    samples = int(data.get("samples", 0))
    book = Fraction(str(data.get("book_quote", "0")))
    if not samples or not book:
        return None
    campaign = preview.campaign
    by_identity: dict[str, Any] = data.get("by_identity", {})
    executors = _key_executors([k for k in by_identity if k != UNATTRIBUTED])
    per_executor: dict[int | None, tuple[bool, Fraction]] = {}
    for key, figures in by_identity.items():
        depth = Fraction(str(figures["depth_quote"]))
        if not depth:
            continue
        executor = executors.get(key)
        ident = executor.pk if executor else None
        is_hardware, so_far = per_executor.get(ident, (bool(executor and executor.hardware_attested), Fraction(0)))
        per_executor[ident] = (is_hardware, so_far + depth / book)
    rows = tuple(
        ShareRow(ident, is_hw, share, percent_of_fraction(share))
        for ident, (is_hw, share) in sorted(per_executor.items(), key=lambda kv: -kv[1][1])
    )
    attested = sum((r.share for r in rows if r.executor_id is not None), Fraction(0))
    hardware = sum((r.share for r in rows if r.executor_id is not None and r.hardware), Fraction(0))
    return CampaignShare(
        chain_id=campaign.chain_id,
        address=campaign.address,
        title=f"{campaign.pair} on {campaign.exchange}" if campaign.pair else campaign.address,
        epoch=preview.epoch,
        as_of=datetime.fromtimestamp(preview.as_of_ms / 1000, tz=timezone.get_current_timezone()),
        samples=samples,
        book_depth_text=_quote_text(book, campaign.pair),
        attested=attested,
        attested_text=percent_of_fraction(attested),
        hardware_text=percent_of_fraction(hardware),
        dev_text=percent_of_fraction(attested - hardware),
        other_text=percent_of_fraction(1 - attested),
        rows=rows,
        campaign_url=reverse("campaign-page", args=[campaign.chain_id, campaign.address]),
        proof_url=reverse("campaign-proof", args=[campaign.chain_id, campaign.address]),
    )


def proof_page(*, now: datetime | None = None) -> ProofPage:
    now = now or timezone.now()
    previews = (
        EpochPreview.objects.select_related("campaign")
        .defer("bundle")
        .filter(campaign__end__gt=now)
        .order_by("campaign_id")
    )
    shares = tuple(s for s in (campaign_share(p) for p in previews) if s is not None)
    return ProofPage(
        executors=tuple(proof_executors(now=now)), campaigns=shares, quoting_window_seconds=NODE_WINDOW_SECONDS
    )


@dataclass(frozen=True)
class CampaignProofPage:
    campaign: Campaign
    share: CampaignShare | None
    executors: tuple[ProofExecutor, ...]
    quoting_window_seconds: int
    campaign_url: str


def campaign_proof_page(*, chain_id: int, address: str, now: datetime | None = None) -> CampaignProofPage:
    campaign = Campaign.objects.filter(chain_id=chain_id, address=address.lower()).first()
    if campaign is None:
        raise CampaignUnknown(f"no campaign {address} on chain {chain_id} is known here")
    preview = EpochPreview.objects.select_related("campaign").defer("bundle").filter(campaign=campaign).first()
    share = campaign_share(preview) if preview is not None else None
    involved = {r.executor_id for r in share.rows if r.executor_id is not None} if share else set()
    return CampaignProofPage(
        campaign=campaign,
        share=share,
        executors=tuple(proof_executors(only=involved, now=now)),
        quoting_window_seconds=NODE_WINDOW_SECONDS,
        campaign_url=reverse("campaign-page", args=[campaign.chain_id, campaign.address]),
    )
