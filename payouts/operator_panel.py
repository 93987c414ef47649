"""Reads of the operator panel (`/admin/operator/`, `payouts.admin_views`): per operator, the campaigns their orders
serve with the open epoch's estimated rewards and the rewards paid so far, each order's job with its exposure and
PnL from its latest signed report against the limits of its job spec, the health of its executor, trend charts over
the job's report windows, and the operator's alerts (docs/operators.md, "The operator panel").

At the top layer: it reads execution, attestation, campaigns and payouts. Amounts are exact (Decimal from the
reports' strings, integers of base units from the oracle) and shown in token units; only chart coordinates are
drawn, by `payouts.domain.trend_chart`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Q

from attestation.models import ExecutorRecord
from campaigns.models import Campaign
from campaigns.selectors import campaign_metadata_documents, campaign_status, reward_token
from execution.alerts import alert_may_handle
from execution.domain import mm_order as mm
from execution.domain.units import for_people
from execution.models import Alert, ExecutionReport, MMOrder
from mrmarket.errors import NotFound
from mrmarket.roles import Role
from payouts.domain.epochs import CloseState
from payouts.domain.trend_chart import Series, TrendChart, trend_chart
from payouts.models import EpochClose
from payouts.selectors import LeafStatus, participant_estimate, payout_leaf_proof
from wire.canonical import parse
from wire.errors import WireError
from wire.jobs import RiskLimits

CHART_REPORTS = 60  # the latest report windows a chart spans
RECENT_RESOLVED = 10
ACTIVE_STATES = [s.value for s in mm.State if s not in mm.TERMINAL]
PAID = (LeafStatus.DISTRIBUTED, LeafStatus.CLAIMED)


def amount_text(value: Decimal, asset: str) -> str:
    """An exact decimal in token units for people: thousands separators, no trailing zeros, its sign kept."""
    text = f"{value:,f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    return f"{text} {asset}".strip()


def _percent(part: Decimal, whole: Decimal) -> str:
    return f"{(part / whole * 100).quantize(Decimal('0.1'))} %" if whole else "—"


# --- what the panel shows -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PanelCampaign:
    campaign: Campaign
    title: str
    status: str
    band_bps: int | None
    reward_addresses: tuple[str, ...]
    estimated_reward: str | None  # the open epoch so far, in token units (None: no preview names these addresses)
    estimate_epoch: int | None
    rewards_paid: str  # paid by the recorded epochs' manifests so far, in token units


@dataclass(frozen=True)
class ExecutorHealth:
    url: str
    state: str
    last_verified_at: datetime | None
    uptime: str  # the share of its scheduled checks it passed
    hardware_attested: bool
    build_version: str


@dataclass(frozen=True)
class Exposure:
    """A job's inventory at the mid of its latest report, and what it would hold with every resting buy filled
    (what the executor's `max_exposure_quote` bounds), against that limit."""

    base_asset: str
    quote_asset: str
    base_held: str
    quote_held: str
    mid: str
    inventory_value: str  # base held × mid, in the quote asset
    exposure: str  # (base held + resting buys) × mid
    limit: str
    used: str  # exposure / limit
    over_limit: bool


@dataclass(frozen=True)
class Pnl:
    """Realized, unrealized and fees of the order's jobs (each job's latest report: the figures are cumulative per
    job, so each is counted once), and the net of them, in the quote asset; the job's loss limit beside it."""

    asset: str
    realized: str
    unrealized: str
    fees: str
    net: str
    net_value: Decimal
    loss_limit: str | None


@dataclass(frozen=True)
class PanelOrder:
    order: MMOrder
    campaign_address: str
    reports: int
    last_report_at: datetime | None
    exposure: Exposure | None
    pnl: Pnl | None
    executor: ExecutorHealth | None
    charts: tuple[TrendChart, ...]


@dataclass(frozen=True)
class PanelAlert:
    alert: Alert
    can_handle: bool  # whether the viewer may acknowledge and resolve it


@dataclass(frozen=True)
class OperatorPanel:
    operator: Any  # the user
    campaigns: tuple[PanelCampaign, ...]
    orders: tuple[PanelOrder, ...]
    open_alerts: tuple[PanelAlert, ...]
    resolved_alerts: tuple[PanelAlert, ...]
    pnl_totals: tuple[str, ...]  # net PnL per quote asset across the active orders


@dataclass(frozen=True)
class OperatorSummary:
    operator: Any
    active_orders: int
    running_orders: int
    open_alerts: int
    critical_alerts: int


@dataclass(frozen=True)
class OperatorIndex:
    operators: tuple[OperatorSummary, ...]
    system_alerts: tuple[PanelAlert, ...]  # open alerts that concern no operator


# --- the latest report of a job ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Window:
    end_ms: int
    metrics: dict[str, Any]
    mid: Decimal | None
    resting_buys: Decimal


def _window(row: ExecutionReport) -> _Window:
    report = parse(row.envelope)["report"]
    mid, buys = None, Decimal(0)
    for sample in reversed(report["book_samples"]):
        if sample["best_bid"] is not None and sample["best_ask"] is not None:
            mid = (Decimal(sample["best_bid"]) + Decimal(sample["best_ask"])) / 2
            buys = sum((Decimal(o["remaining"]) for o in sample["resting"] if o["side"] == "buy"), Decimal(0))
            break
    return _Window(end_ms=int(report["window_end_ms"]), metrics=report["metrics"], mid=mid, resting_buys=buys)


def _limits(order: MMOrder) -> RiskLimits | None:
    try:
        return RiskLimits.parse((order.job_spec or {}).get("risk"))
    except WireError:
        return None


def _exposure(order: MMOrder, window: _Window, limits: RiskLimits | None) -> Exposure | None:
    base, quote = order.symbol.split("/")
    inventory = window.metrics.get("inventory") or {}
    if window.mid is None or base not in inventory:
        return None
    held = Decimal(inventory[base])
    value = held * window.mid
    exposure = (held + window.resting_buys) * window.mid
    limit = limits.max_exposure_quote if limits is not None else None
    return Exposure(
        base_asset=base,
        quote_asset=quote,
        base_held=amount_text(held, base),
        quote_held=amount_text(Decimal(inventory.get(quote, "0")), quote),
        mid=amount_text(window.mid, quote),
        inventory_value=amount_text(value.quantize(Decimal("0.01")), quote),
        exposure=amount_text(exposure.quantize(Decimal("0.01")), quote),
        limit=amount_text(limit, quote) if limit is not None else "—",
        used=_percent(exposure, limit) if limit is not None else "—",
        over_limit=limit is not None and exposure > limit,
    )


def _net(metrics: dict[str, Any]) -> Decimal:
    pnl = metrics["pnl"]
    return Decimal(pnl["realized"]) + Decimal(pnl["unrealized"]) - Decimal(pnl["fees"])


def _pnl(order: MMOrder, latest_per_job: Sequence[_Window], limits: RiskLimits | None) -> Pnl | None:
    if not latest_per_job:
        return None
    quote = order.symbol.split("/")[1]
    realized = sum((Decimal(w.metrics["pnl"]["realized"]) for w in latest_per_job), Decimal(0))
    unrealized = sum((Decimal(w.metrics["pnl"]["unrealized"]) for w in latest_per_job), Decimal(0))
    fees = sum((Decimal(w.metrics["pnl"]["fees"]) for w in latest_per_job), Decimal(0))
    net = realized + unrealized - fees  # fees apart from trading PnL (executor.engine.accounting): once
    return Pnl(
        asset=quote,
        realized=amount_text(realized, quote),
        unrealized=amount_text(unrealized, quote),
        fees=amount_text(fees, quote),
        net=amount_text(net, quote),
        net_value=net,
        loss_limit=amount_text(-limits.max_loss_quote, quote) if limits is not None else None,
    )


def _charts(order: MMOrder, windows: Sequence[_Window], limits: RiskLimits | None) -> tuple[TrendChart, ...]:
    base, quote = order.symbol.split("/")
    pnl = trend_chart(
        title="Net PnL",
        unit=quote,
        series=[Series("net PnL", "line-pnl", tuple((w.end_ms, _net(w.metrics)) for w in windows))],
        limit=-limits.max_loss_quote if limits is not None else None,
    )
    exposure_points = tuple(
        (w.end_ms, (Decimal((w.metrics.get("inventory") or {}).get(base, "0")) + w.resting_buys) * w.mid)
        for w in windows
        if w.mid is not None
    )
    exposure = trend_chart(
        title="Exposure at the mid",
        unit=quote,
        series=[Series("exposure", "line-exposure", exposure_points)],
        limit=limits.max_exposure_quote if limits is not None else None,
    )
    depth = trend_chart(
        title="Own depth near the mid",
        unit=quote,
        series=[
            Series(
                f"within {band}",
                f"line-depth-{band}",
                tuple((w.end_ms, Decimal(w.metrics["depth_quote"][band])) for w in windows),
            )
            for band in ("1pct", "2pct", "5pct")
        ],
    )
    return tuple(c for c in (pnl, exposure, depth) if c is not None)


def _executor(url: str, records: dict[str, ExecutorRecord]) -> ExecutorHealth | None:
    record = records.get(url)
    if record is None:
        return None
    return ExecutorHealth(
        url=record.url,
        state=record.state,
        last_verified_at=record.last_verified_at,
        uptime=f"{Decimal(record.uptime_permille) / 10} %",
        hardware_attested=record.hardware_attested,
        build_version=record.build_version,
    )


def _panel_order(order: MMOrder, records: dict[str, ExecutorRecord]) -> PanelOrder:
    rows = ExecutionReport.objects.filter(order=order)
    count = rows.count()
    latest_ids = [
        pk
        for pk in (
            rows.filter(job_id=job).order_by("-sequence").values_list("pk", flat=True).first()
            for job in rows.values_list("job_id", flat=True).distinct()
        )
        if pk is not None
    ]
    latest_per_job = [_window(r) for r in ExecutionReport.objects.filter(pk__in=latest_ids)]
    current = list(rows.filter(job_id=order.job_id).order_by("-sequence")[:CHART_REPORTS]) if order.job_id else []
    if not current:
        newest = rows.order_by("-received_at", "-pk").first()
        current = list(rows.filter(job_id=newest.job_id).order_by("-sequence")[:CHART_REPORTS]) if newest else []
    windows = [_window(r) for r in reversed(current)]
    limits = _limits(order)
    return PanelOrder(
        order=order,
        campaign_address=order.campaign_address,
        reports=count,
        last_report_at=current[0].received_at if current else None,
        exposure=_exposure(order, windows[-1], limits) if windows else None,
        pnl=_pnl(order, latest_per_job, limits),
        executor=_executor(order.executor_url, records) if order.executor_url else None,
        charts=_charts(order, windows, limits),
    )


# --- campaigns and rewards --------------------------------------------------------------------------------------


def _token_text(campaign: Campaign, metadata: dict[str, Any], units: int) -> str:
    symbol, decimals = reward_token(campaign, metadata)
    return for_people(units, decimals, symbol) if decimals is not None else f"{units:,} base units"


def _panel_campaigns(orders: Iterable[MMOrder]) -> tuple[PanelCampaign, ...]:
    addresses: dict[tuple[int, str], set[str]] = defaultdict(set)
    for order in orders:
        if order.campaign_chain_id is not None:
            addresses[(int(order.campaign_chain_id), order.campaign_address.lower())].add(order.reward_address.lower())
    wanted = _any_of(Q(chain_id=chain, address=address) for chain, address in addresses)
    campaigns = list(Campaign.objects.filter(wanted).order_by("end", "pk"))
    documents = campaign_metadata_documents(campaigns)
    out = []
    for campaign in campaigns:
        metadata = documents.get(campaign.metadata_hash.lower()) or {}
        rewards = tuple(sorted(addresses[(campaign.chain_id, campaign.address.lower())]))
        estimates = [e for a in rewards if (e := participant_estimate(campaign_id=campaign.pk, address=a)) is not None]
        paid = 0
        for close in EpochClose.objects.filter(campaign=campaign, state=CloseState.RECORDED.value).select_related(
            "campaign"
        ):
            for address in rewards:
                leaf = payout_leaf_proof(close=close, account=address)
                if leaf is not None and leaf.status in PAID:
                    paid += leaf.amount
        band = (metadata.get("scoring") or {}).get("max_spread_bps")
        out.append(
            PanelCampaign(
                campaign=campaign,
                title=str(metadata.get("title") or campaign.pair),
                status=campaign_status(campaign).value,
                band_bps=band if isinstance(band, int) and not isinstance(band, bool) else None,
                reward_addresses=rewards,
                estimated_reward=_token_text(campaign, metadata, sum(e.estimated_reward for e in estimates))
                if estimates
                else None,
                estimate_epoch=estimates[0].epoch if estimates else None,
                rewards_paid=_token_text(campaign, metadata, paid),
            )
        )
    return tuple(out)


def _any_of(conditions: Iterable[Q]) -> Q:
    combined = Q(pk__in=[])
    for condition in conditions:
        combined |= condition
    return combined


# --- the selectors ------------------------------------------------------------------------------------------------


def operator_get(*, user_id: int) -> AbstractBaseUser:
    operator = get_user_model().objects.filter(pk=user_id).first()
    if operator is None:
        raise NotFound(f"no user {user_id}")
    return operator


def _alerts(rows: Iterable[Alert], viewer: Any) -> tuple[PanelAlert, ...]:
    return tuple(PanelAlert(a, alert_may_handle(user=viewer, alert=a)) for a in rows)


def operator_panel(*, operator: Any, viewer: Any) -> OperatorPanel:
    """Everything the panel shows of one operator, as `viewer` may act on it."""
    orders = list(
        MMOrder.objects.filter(owner=operator, state__in=ACTIVE_STATES)
        .select_related("exchange_account")
        .order_by("pk")
    )
    records = {
        r.url: r for r in ExecutorRecord.objects.filter(url__in={o.executor_url for o in orders if o.executor_url})
    }
    panel_orders = tuple(_panel_order(order, records) for order in orders)
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for item in panel_orders:
        if item.pnl is not None:
            totals[item.pnl.asset] += item.pnl.net_value
    alerts = Alert.objects.filter(owner=operator).select_related("acknowledged_by", "resolved_by")
    return OperatorPanel(
        operator=operator,
        campaigns=_panel_campaigns(orders),
        orders=panel_orders,
        open_alerts=_alerts(alerts.filter(resolved_at__isnull=True).order_by("-created_at", "-pk"), viewer),
        resolved_alerts=_alerts(
            alerts.filter(resolved_at__isnull=False).order_by("-resolved_at", "-pk")[:RECENT_RESOLVED], viewer
        ),
        pnl_totals=tuple(amount_text(v, asset) for asset, v in sorted(totals.items())),
    )


def operator_index(*, viewer: Any) -> OperatorIndex:
    """The operators (the operators group, and whoever owns an order), with their orders and open alerts."""
    users = (
        get_user_model()
        .objects.filter(Q(groups__name=Role.OPERATOR.value) | Q(mm_orders__isnull=False))
        .distinct()
        .order_by("username")
    )
    active = dict(
        MMOrder.objects.filter(state__in=ACTIVE_STATES)
        .values_list("owner_id")
        .annotate(n=Count("pk"))
        .values_list("owner_id", "n")
    )
    running = dict(
        MMOrder.objects.filter(state=mm.State.RUNNING)
        .values_list("owner_id")
        .annotate(n=Count("pk"))
        .values_list("owner_id", "n")
    )
    open_alerts = Alert.objects.filter(resolved_at__isnull=True)
    by_owner = dict(open_alerts.values_list("owner_id").annotate(n=Count("pk")).values_list("owner_id", "n"))
    critical = dict(
        open_alerts.filter(severity=Alert.Severity.CRITICAL)
        .values_list("owner_id")
        .annotate(n=Count("pk"))
        .values_list("owner_id", "n")
    )
    return OperatorIndex(
        operators=tuple(
            OperatorSummary(u, active.get(u.pk, 0), running.get(u.pk, 0), by_owner.get(u.pk, 0), critical.get(u.pk, 0))
            for u in users
        ),
        system_alerts=_alerts(open_alerts.filter(owner__isnull=True).order_by("-created_at", "-pk"), viewer),
    )
