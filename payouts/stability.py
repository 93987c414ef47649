"""The stability reports of a campaign (`/campaigns/<chain_id>/<address>/stability`, docs/stability.md), read from
the oracle's own book snapshots (`BookSnapshot`) only, never from what executors report.

The rows are streamed in time order in chunks (`.iterator()`) into `payouts.domain.stability.StabilityAccumulator`,
which keeps counts and sums, not books. The accumulator's state after the last settled sample time is kept in the
cache: a sample time older than the recorder's tolerance plus SETTLE_EXTRA_MS has its row or never will (the recorder
never writes a past sample time), so the next request reads only the rows recorded since. The page, the CSV and the
JSON are all made from one `StabilityPage`, so their numbers are the same strings.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign
from mrmarket.observability.logging import get_logger
from payouts.campaign_page import _moment, _rules
from payouts.domain import stability_chart as charts
from payouts.domain.stability import (
    StabilityAccumulator,
    StabilityInputError,
    StabilityReport,
    cbps_text,
    fixed2,
)
from payouts.errors import CampaignUnknown, PayoutsError
from payouts.inputs_build import campaign_terms
from payouts.models import BookSnapshot
from payouts.selectors import _metadata, _ms, duration_text

log = get_logger(__name__)

SCHEMA = "mrmarket.stability/v1"
SETTLE_EXTRA_MS = 10_000  # beyond the recorder's tolerance: its REST fallback and its database write
ROW_CHUNK = 2_000  # rows fetched at a time: a few MB of books at most
CHECKPOINT_SECONDS = 7 * 86_400  # how long a saved state is kept; a later request rebuilds it from the rows
_EPOCH_RE = re.compile(r"[0-9]{1,9}")


class StabilityEpochInvalid(PayoutsError):
    """The `epoch` asked for is not a whole number naming one of the campaign's epochs."""

    code = "stability_epoch_invalid"


# --- What the page, the CSV and the JSON show ---------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One number as shown: `report`, `item` (a row of that report: "" for the report's own, an hour, a bucket),
    `metric`, the value as text (fixed decimals, an ISO time, a count) and its unit."""

    report: str
    item: str
    metric: str
    value: str
    unit: str = ""

    @property
    def key(self) -> str:
        return f"{self.report}.{self.item}.{self.metric}"


@dataclass(frozen=True)
class UptimeView:
    sample_times: int
    up: int
    no_row: int
    gap_rows: int
    one_side_empty: int
    percent: str | None


@dataclass(frozen=True)
class SpreadRow:
    item: str  # "all", or the hour as an ISO time
    hour: datetime | None
    samples: int
    median: str
    p95: str
    low: str
    high: str


@dataclass(frozen=True)
class DrawdownView:
    samples: int
    amount: str
    percent: str | None
    peak: str
    trough: str
    peak_at: datetime | None
    trough_at: datetime | None
    highest: str
    lowest: str
    last: str


@dataclass(frozen=True)
class BandView:
    item: str  # "0-10"
    low_bps: int
    high_bps: int
    samples: int
    bid_mean: str
    ask_mean: str


@dataclass(frozen=True)
class Charts:
    uptime: charts.UptimeChart
    spread: charts.SpreadChart
    spread_top: str  # bps
    depth: charts.DepthChart
    depth_top: str  # quote units
    bands: charts.BandsChart


@dataclass(frozen=True)
class EpochNav:
    count: int
    selected: int | None
    previous: int | None
    next: int | None
    current: int | None  # the running epoch


@dataclass(frozen=True)
class StabilityPage:
    campaign: Campaign
    title: str
    quote: str
    band_bps: int | None
    sample_seconds: int | None
    epoch_length: str
    nav: EpochNav
    first: datetime | None  # the selection's first sample time
    until: datetime | None  # sample times before this are counted
    end: datetime  # the selection's end (its epoch's, or the campaign's)
    unavailable: str  # why there are no reports ("" when there are)
    settle_seconds: int
    report: StabilityReport | None
    uptime: UptimeView | None
    spread: SpreadRow | None
    spread_hours: tuple[SpreadRow, ...]
    drawdown: DrawdownView | None
    bands: tuple[BandView, ...]
    charts: Charts | None
    figures: tuple[Figure, ...]
    campaign_url: str
    page_url: str
    csv_url: str
    json_url: str


# --- Reading ---------------------------------------------------------------------------------------------------


def parse_epoch(raw: str | None, *, count: int) -> int | None:
    """`?epoch=`: absent or blank is the whole campaign; else a whole number below `count`. Raises
    `StabilityEpochInvalid`."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    last = f"0 to {count - 1}" if count > 1 else "0"
    if not _EPOCH_RE.fullmatch(text):
        raise StabilityEpochInvalid(
            f"epoch must be a whole number from {last}, not {raw!r}", extra={"epoch": raw, "epochs": count}
        )
    epoch = int(text)
    if epoch >= count:
        raise StabilityEpochInvalid(
            f"this campaign has {count} epoch{'s' if count != 1 else ''}, numbered {last}: there is no epoch {epoch}",
            extra={"epoch": raw, "epochs": count},
        )
    return epoch


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _checkpoint_key(campaign: Campaign, acc: StabilityAccumulator, end_ms: int) -> str:
    return (
        f"stability:v1:{campaign.pk}:{campaign.chain_id}:{campaign.address}:{acc.start_ms}:{acc.sample_ms}:"
        f"{acc.band_bps}:{acc.first_ms}:{end_ms}:{acc.bucket_samples}"
    )


def _resumed(campaign: Campaign, fresh: StabilityAccumulator, key: str, until_ms: int) -> StabilityAccumulator:
    """The saved state, when it is this selection's and the rows it counted are still all there; else `fresh`."""
    saved = cache.get(key)
    if saved is None:
        return fresh
    try:
        acc = StabilityAccumulator.resume(saved)
    except StabilityInputError as exc:
        log.warning("stability_checkpoint_unreadable", campaign_id=campaign.pk, error=str(exc))
        return fresh
    config = ("start_ms", "sample_ms", "first_ms", "band_bps", "bucket_samples")
    # The saved state may not reach past `until_ms`: its last sample time counted is next_ms − sample_ms.
    if any(getattr(acc, k) != getattr(fresh, k) for k in config) or acc.next_ms - acc.sample_ms >= until_ms:
        return fresh
    counted = BookSnapshot.objects.filter(campaign=campaign, t_ms__gte=acc.first_ms, t_ms__lt=acc.next_ms).count()
    if counted != acc.rows:  # rows came or went in the settled past: not the recorder's doing, so count afresh
        log.warning("stability_checkpoint_stale", campaign_id=campaign.pk, saved=acc.rows, found=counted)
        return fresh
    return acc


def stability_report(
    campaign: Campaign, *, band_bps: int, sample_ms: int, from_ms: int, end_ms: int, until_ms: int
) -> StabilityReport:
    """The reports over the campaign's sample times in [from_ms, min(end_ms, until_ms)): the saved state, then the
    rows recorded since, streamed. Raises `StabilityInputError` when a stored row cannot be read."""
    fresh = StabilityAccumulator.for_selection(
        start_ms=_ms(campaign.start), sample_ms=sample_ms, from_ms=from_ms, end_ms=end_ms, band_bps=band_bps
    )
    until = max(min(end_ms, until_ms), fresh.first_ms)
    key = _checkpoint_key(campaign, fresh, end_ms)
    acc = _resumed(campaign, fresh, key, until)
    before = acc.next_ms
    rows = (
        BookSnapshot.objects.filter(campaign=campaign, t_ms__gte=acc.next_ms, t_ms__lt=until)
        .order_by("t_ms")
        .values_list("t_ms", "book")
        .iterator(chunk_size=ROW_CHUNK)
    )
    for t_ms, book in rows:
        acc.add(t_ms, book)
    acc.advance(until)
    if acc.next_ms != before:
        cache.set(key, acc.state(), timeout=CHECKPOINT_SECONDS)
    return acc.report()


def _views(report: StabilityReport) -> tuple[Any, ...]:
    u = report.uptime
    share = u.share
    uptime = UptimeView(
        u.samples, u.up, u.missing, u.gap_rows, u.thin, fixed2(share * 100) if share is not None else None
    )

    def spread_row(item: str, hour: datetime | None, stats: Any) -> SpreadRow:
        return SpreadRow(
            item,
            hour,
            stats.samples,
            cbps_text(stats.median_cbps),
            cbps_text(stats.p95_cbps),
            cbps_text(stats.min_cbps),
            cbps_text(stats.max_cbps),
        )

    spread = spread_row("all", None, report.spread) if report.spread else None
    hours = tuple(spread_row(_iso(_moment(h.hour_ms)), _moment(h.hour_ms), h.stats) for h in report.spread_hours)
    d = report.drawdown
    drawdown = None
    if d is not None:
        fall = d.share
        drawdown = DrawdownView(
            samples=d.samples,
            amount=fixed2(d.amount),
            percent=fixed2(fall * 100) if fall is not None else None,
            peak=fixed2(d.peak),
            trough=fixed2(d.trough),
            peak_at=_moment(d.peak_ms) if d.peak_ms is not None else None,
            trough_at=_moment(d.trough_ms) if d.trough_ms is not None else None,
            highest=fixed2(d.highest),
            lowest=fixed2(d.lowest),
            last=fixed2(d.last),
        )
    bands = tuple(
        BandView(f"{b.low_bps}-{b.high_bps}", b.low_bps, b.high_bps, b.samples, fixed2(b.bid_mean), fixed2(b.ask_mean))
        for b in report.bands
    )
    drawn = Charts(
        uptime=charts.uptime_chart(report),
        spread=(spread_chart := charts.spread_chart(report)),
        spread_top=cbps_text(spread_chart.top_cbps),
        depth=(depth_chart := charts.depth_chart(report)),
        depth_top=fixed2(depth_chart.top),
        bands=charts.bands_chart(report.bands),
    )
    return uptime, spread, hours, drawdown, bands, drawn


def _figures(page_parts: dict[str, Any], quote: str) -> tuple[Figure, ...]:
    """Every number of the reports, in the order the CSV lists them; the page marks each with its key."""
    out: list[Figure] = []
    uptime: UptimeView = page_parts["uptime"]
    for metric in ("sample_times", "up", "no_row", "gap_rows", "one_side_empty"):
        out.append(Figure("uptime", "", metric, str(getattr(uptime, metric))))
    if uptime.percent is not None:
        out.append(Figure("uptime", "", "uptime", uptime.percent, "%"))
    rows: list[SpreadRow] = [r for r in (page_parts["spread"], *page_parts["spread_hours"]) if r is not None]
    for row in rows:
        out.append(Figure("spread", row.item, "samples", str(row.samples)))
        for metric, value in (("median", row.median), ("p95", row.p95), ("min", row.low), ("max", row.high)):
            out.append(Figure("spread", row.item, metric, value, "bps"))
    d: DrawdownView | None = page_parts["drawdown"]
    if d is not None:
        out.append(Figure("drawdown", "", "samples", str(d.samples)))
        out.append(Figure("drawdown", "", "drawdown", d.amount, quote))
        if d.percent is not None:
            out.append(Figure("drawdown", "", "drawdown_percent", d.percent, "%"))
        out.append(Figure("drawdown", "", "peak", d.peak, quote))
        if d.peak_at is not None:
            out.append(Figure("drawdown", "", "peak_at", _iso(d.peak_at)))
        out.append(Figure("drawdown", "", "trough", d.trough, quote))
        if d.trough_at is not None:
            out.append(Figure("drawdown", "", "trough_at", _iso(d.trough_at)))
        for metric in ("highest", "lowest", "last"):
            out.append(Figure("drawdown", "", metric, getattr(d, metric), quote))
    bands = page_parts["bands"]
    if bands:
        out.append(Figure("depth_band", "all", "samples", str(bands[0].samples)))  # the same for every bucket
    for band in bands:
        out.append(Figure("depth_band", band.item, "bid_mean", band.bid_mean, quote))
        out.append(Figure("depth_band", band.item, "ask_mean", band.ask_mean, quote))
    return tuple(out)


def _nav(count: int, selected: int | None, current: int | None) -> EpochNav:
    previous = selected - 1 if selected is not None and selected > 0 else None
    following = selected + 1 if selected is not None and selected + 1 < count else None
    return EpochNav(count, selected, previous, following, current)


def campaign_stability(
    *, chain_id: int, address: str, epoch: str | None = None, now: datetime | None = None
) -> StabilityPage:
    """The stability page of one campaign, over one epoch (`epoch`, as given in the URL) or the whole campaign so
    far. Raises `CampaignUnknown`, then `StabilityEpochInvalid`."""
    campaign = Campaign.objects.filter(chain_id=chain_id, address=address.lower()).first()
    if campaign is None:
        raise CampaignUnknown(f"no campaign {address} on chain {chain_id}")
    terms = campaign_terms(campaign)
    selected = parse_epoch(epoch, count=terms.epoch_count)
    now = now or timezone.now()
    now_ms = _ms(now)
    settle_ms = int(settings.RECORDER_TOLERANCE_MS) + SETTLE_EXTRA_MS
    start_ms, end_ms = _ms(campaign.start), _ms(campaign.end)
    if selected is None:
        from_ms, sel_end_ms = start_ms, end_ms
    else:
        lo, hi = terms.epoch_bounds(selected)
        from_ms, sel_end_ms = max(lo * 1000, start_ms), min(hi * 1000, end_ms)
    running = terms.epoch_at(now_ms // 1000)
    metadata = _metadata(campaign)
    _, reason, band = _rules(metadata, campaign.pair)
    scoring = metadata.get("scoring") if band is not None else None
    sample_seconds = scoring.get("sample_seconds") if isinstance(scoring, dict) else None
    quote = campaign.pair.split("/")[1] if "/" in campaign.pair else ""
    title = metadata.get("title")
    unavailable = ""
    report = None
    if band is None or not isinstance(sample_seconds, int):
        unavailable = f"The campaign's band is not known here: {reason or 'no scoring parameters'}."
    elif now_ms - settle_ms <= from_ms:
        unavailable = "No sample time to count yet: the selection has not started, or only just."
    else:
        try:
            report = stability_report(
                campaign,
                band_bps=band,
                sample_ms=sample_seconds * 1000,
                from_ms=from_ms,
                end_ms=sel_end_ms,
                until_ms=now_ms - settle_ms,
            )
        except StabilityInputError as exc:
            log.error("stability_rows_unreadable", campaign_id=campaign.pk, error=str(exc))
            unavailable = f"The recorded books cannot be read: {exc}."
    parts: dict[str, Any] = {"uptime": None, "spread": None, "spread_hours": (), "drawdown": None, "bands": ()}
    drawn = None
    if report is not None:
        uptime, spread, hours, drawdown, bands, drawn = _views(report)
        parts = {"uptime": uptime, "spread": spread, "spread_hours": hours, "drawdown": drawdown, "bands": bands}
    args = [campaign.chain_id, campaign.address]
    query = f"?epoch={selected}" if selected is not None else ""
    return StabilityPage(
        campaign=campaign,
        title=title if isinstance(title, str) and title else campaign.pair or "Campaign",
        quote=quote,
        band_bps=band,
        sample_seconds=sample_seconds if isinstance(sample_seconds, int) else None,
        epoch_length=duration_text(campaign.epoch_seconds),
        nav=_nav(terms.epoch_count, selected, running),
        first=_moment(report.first_ms) if report is not None else None,
        until=_moment(report.until_ms) if report is not None else None,
        end=_moment(sel_end_ms),
        unavailable=unavailable,
        settle_seconds=-(-settle_ms // 1000),
        report=report,
        charts=drawn,
        figures=_figures(parts, quote) if report is not None else (),
        campaign_url=reverse("campaign-page", args=args),
        page_url=reverse("campaign-stability", args=args) + query,
        csv_url=reverse("campaign-stability-csv", args=args) + query,
        json_url=reverse("campaign-stability-json", args=args) + query,
        **parts,
    )


# --- Downloads ---------------------------------------------------------------------------------------------------

CSV_HEADER = ("report", "item", "metric", "value", "unit")


def _selection_figures(page: StabilityPage) -> list[Figure]:
    c = page.campaign
    out = [
        Figure("selection", "", "chain_id", str(c.chain_id)),
        Figure("selection", "", "address", c.address),
        Figure("selection", "", "exchange", c.exchange),
        Figure("selection", "", "pair", c.pair),
        Figure("selection", "", "epoch", "" if page.nav.selected is None else str(page.nav.selected)),
    ]
    if page.band_bps is not None:
        out.append(Figure("selection", "", "max_spread_bps", str(page.band_bps), "bps"))
    if page.sample_seconds is not None:
        out.append(Figure("selection", "", "sample_seconds", str(page.sample_seconds), "s"))
    if page.first is not None and page.until is not None:
        out.append(Figure("selection", "", "first_sample", _iso(page.first)))
        out.append(Figure("selection", "", "until", _iso(page.until)))
    if page.unavailable:
        out.append(Figure("selection", "", "unavailable", page.unavailable))
    return out


def stability_csv(page: StabilityPage) -> str:
    """One long table, `report,item,metric,value,unit` (docs/stability.md, "Downloads"): the selection first, then
    every figure of the four reports as the page shows it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for figure in (*_selection_figures(page), *page.figures):
        writer.writerow((figure.report, figure.item, figure.metric, figure.value, figure.unit))
    return buffer.getvalue()


def stability_json(page: StabilityPage) -> dict[str, Any]:
    """The same figures as a document, one section per report; numbers are the page's strings."""
    c = page.campaign
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "campaign": {
            "chain_id": c.chain_id,
            "address": c.address,
            "exchange": c.exchange,
            "pair": c.pair,
            "quote": page.quote,
            "max_spread_bps": page.band_bps,
            "sample_seconds": page.sample_seconds,
        },
        "selection": {
            "epoch": page.nav.selected,
            "epochs": page.nav.count,
            "first_sample": _iso(page.first) if page.first else None,
            "until": _iso(page.until) if page.until else None,
        },
        "unavailable": page.unavailable or None,
        "uptime": None,
        "spread": None,
        "drawdown": None,
        "depth_bands": [],
    }
    if page.uptime is None:
        return doc
    u = page.uptime
    doc["uptime"] = {
        "sample_times": u.sample_times,
        "up": u.up,
        "no_row": u.no_row,
        "gap_rows": u.gap_rows,
        "one_side_empty": u.one_side_empty,
        "uptime_percent": u.percent,
    }

    def spread_doc(row: SpreadRow) -> dict[str, Any]:
        return {
            "samples": row.samples,
            "median_bps": row.median,
            "p95_bps": row.p95,
            "min_bps": row.low,
            "max_bps": row.high,
        }

    doc["spread"] = {
        "all": spread_doc(page.spread) if page.spread else None,
        "hours": [{"hour": row.item, **spread_doc(row)} for row in page.spread_hours],
    }
    d = page.drawdown
    if d is not None:
        doc["drawdown"] = {
            "samples": d.samples,
            "drawdown": d.amount,
            "drawdown_percent": d.percent,
            "peak": d.peak,
            "peak_at": _iso(d.peak_at) if d.peak_at else None,
            "trough": d.trough,
            "trough_at": _iso(d.trough_at) if d.trough_at else None,
            "highest": d.highest,
            "lowest": d.lowest,
            "last": d.last,
        }
    doc["depth_bands"] = [
        {
            "from_bps": b.low_bps,
            "to_bps": b.high_bps,
            "samples": b.samples,
            "bid_mean": b.bid_mean,
            "ask_mean": b.ask_mean,
        }
        for b in page.bands
    ]
    return doc


def download_name(page: StabilityPage, extension: str) -> str:
    c = page.campaign
    epoch = f"-epoch-{page.nav.selected}" if page.nav.selected is not None else ""
    return f"stability-{c.chain_id}-{c.address}{epoch}.{extension}"
