"""The stability page (/campaigns/<chain_id>/<address>/stability) and its downloads, on the database: every figure of
the four reports from a campaign's recorded books (worked out by hand below), the CSV and JSON equal to the page
figure by figure, the saved state carrying over between requests, and the refusals (404, 400) changing nothing."""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from campaigns.domain.templates import TEMPLATES
from campaigns.models import Campaign, CampaignMetadata
from payouts import stability
from payouts.domain.stability import StabilityAccumulator
from payouts.models import BookSnapshot
from payouts.stability import campaign_stability
from tests.campaigns.test_api import CampaignFactory
from tests.payouts.page_tree import Node, parse

pytestmark = pytest.mark.django_db

# The campaign starts on a UTC hour; epochs of one hour, a sample every 60 s, band ±50 bps.
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
NOW = START + timedelta(hours=2, minutes=30, seconds=5)  # counted: sample times before NOW − 12 s (k < 150)
SAMPLE_MS = 60_000
# mid 0.1: the bid and the ask 10 bps away (an edge: the 10–25 bucket); the far levels outside the band.
BOOK_A = {"bids": [["0.0999", "5000"], ["0.099", "1000"]], "asks": [["0.1001", "3000"], ["0.1008", "2000"]]}
# mid 0.0996: both sides 60 bps away, outside the band: a book, but not up.
BOOK_B = {"bids": [["0.099", "100"]], "asks": [["0.1002", "100"]]}
# mid 0.1001: both sides 9.99 bps away (the 0–10 bucket).
BOOK_C = {"bids": [["0.1", "2000"]], "asks": [["0.1002", "1000"]]}


def ms(moment: datetime) -> int:
    return int(moment.timestamp()) * 1000


@pytest.fixture(autouse=True)
def own_cache(settings) -> None:
    """The real Redis cache (its JSON serializer), under a key prefix of this test's own: no saved state of another
    test, or of another run, is ever read."""
    caches = dict(settings.CACHES)
    caches["default"] = {**caches["default"], "KEY_PREFIX": f"test-stability-{uuid.uuid4().hex}"}
    settings.CACHES = caches


@pytest.fixture(autouse=True)
def frozen(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    clock = SimpleNamespace(value=NOW)
    monkeypatch.setattr(stability, "timezone", SimpleNamespace(now=lambda: clock.value))
    return clock


def make_campaign(*, with_metadata: bool = True, **fields: Any) -> Campaign:
    metadata = {
        "title": "Stable depth on MMT/USDT",
        "reward_token": {"address": "0x" + "ab" * 20, "symbol": "USDT", "decimals": 6},
        "scoring": TEMPLATES["stable_depth"].scoring,  # sample_seconds 60, max_spread_bps 50
    }
    digest = "0x" + hashlib.sha256(repr(metadata).encode()).hexdigest()
    if with_metadata:
        CampaignMetadata.objects.get_or_create(hash=digest, defaults={"document": metadata})
    return CampaignFactory.create(
        exchange="binance",
        pair="MMT/USDT",
        metadata_hash=digest,
        epoch_seconds=3_600,
        start=START,
        end=START + timedelta(hours=24),
        **fields,
    )


def record(campaign: Campaign, k: int, book: dict[str, Any] | None, reason: str = "") -> None:
    BookSnapshot.objects.create(
        campaign=campaign,
        t_ms=ms(START) + k * SAMPLE_MS,
        book=book,
        exchange_ts_ms=None,
        recorded_ms=ms(START) + k * SAMPLE_MS + 300,
        source="ws" if book is not None else "",
        gap_reason=reason if book is None else "",
    )


def campaign_with_rows() -> Campaign:
    """Epoch 0: 50 books A, 5 gap rows, 2 sample times without a row, 3 books B. Epoch 1: 30 books C, 30 books A.
    Nothing after (the recorder stopped)."""
    c = make_campaign()
    rows = [(k, BOOK_A) for k in range(50)] + [(k, None) for k in range(50, 55)] + [(k, BOOK_B) for k in (57, 58, 59)]
    rows += [(60 + k, BOOK_C) for k in range(30)] + [(90 + k, BOOK_A) for k in range(30)]
    BookSnapshot.objects.bulk_create(
        BookSnapshot(
            campaign=c,
            t_ms=ms(START) + k * SAMPLE_MS,
            book=book,
            recorded_ms=ms(START) + k * SAMPLE_MS + 300,
            source="ws" if book else "",
            gap_reason="" if book else "exchange_unavailable",
        )
        for k, book in rows
    )
    return c


@pytest.fixture
def campaign() -> Campaign:
    return campaign_with_rows()


def url(c: Campaign, suffix: str = "", query: str = "") -> str:
    return f"/campaigns/{c.chain_id}/{c.address}/stability{suffix}{query}"


def get_page(client: Client, c: Campaign, query: str = "") -> Node:
    response = client.get(url(c, "", query))
    assert response.status_code == 200, response.content.decode()[:500]
    return parse(response.content.decode())


def figures_on(page: Node) -> dict[str, str]:
    """Every `data-figure` of the page: its text, or a <time>'s datetime."""
    out = {}
    for node in page.find_all(data_figure=True):
        out[node["data-figure"]] = node["datetime"] if node.tag == "time" else node.text()
    return out


def csv_rows(client: Client, c: Campaign, query: str = "") -> list[dict[str, str]]:
    response = client.get(url(c, ".csv", query))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


WHOLE = {
    "uptime..sample_times": "150",
    "uptime..up": "110",
    "uptime..no_row": "32",  # two in epoch 0, the thirty of epoch 2 so far
    "uptime..gap_rows": "5",
    "uptime..one_side_empty": "3",
    "uptime..uptime": "73.33",
    "spread.all.samples": "113",
    "spread.all.median": "20.00",
    "spread.all.p95": "20.00",
    "spread.all.min": "19.98",
    "spread.all.max": "120.48",
    "spread.2026-03-02T08:00:00Z.samples": "53",
    "spread.2026-03-02T08:00:00Z.median": "20.00",
    "spread.2026-03-02T08:00:00Z.p95": "120.48",  # rank ⌈0.95 × 53⌉ = 51: the first of the three books B
    "spread.2026-03-02T09:00:00Z.samples": "60",
    "spread.2026-03-02T09:00:00Z.median": "19.98",  # rank 30 of 30 × 19.98 then 30 × 20.00
    "spread.2026-03-02T09:00:00Z.p95": "20.00",
    "drawdown..samples": "113",
    "drawdown..drawdown": "799.80",  # 0.0999 × 5000 + 0.1001 × 3000, down to the books B's nothing in the band
    "drawdown..drawdown_percent": "100.00",
    "drawdown..peak": "799.80",
    "drawdown..peak_at": "2026-03-02T08:49:00Z",  # the last book A before the fall
    "drawdown..trough": "0.00",
    "drawdown..trough_at": "2026-03-02T08:57:00Z",
    "drawdown..highest": "799.80",
    "drawdown..lowest": "0.00",
    "drawdown..last": "799.80",
    "depth_band.0-10.bid_mean": "53.10",  # 30 × 200 / 113
    "depth_band.0-10.ask_mean": "26.60",  # 30 × 100.2 / 113
    "depth_band.10-25.bid_mean": "353.63",  # 80 × 499.5 / 113
    "depth_band.10-25.ask_mean": "212.60",  # 80 × 300.3 / 113
    "depth_band.25-50.bid_mean": "0.00",
    "depth_band.25-50.ask_mean": "0.00",
    "selection..first_sample": "2026-03-02T08:00:00Z",
    "selection..until": "2026-03-02T10:30:00Z",
    "selection..max_spread_bps": "50",
}
EPOCH_0 = {
    "uptime..sample_times": "60",
    "uptime..up": "50",
    "uptime..no_row": "2",
    "uptime..gap_rows": "5",
    "uptime..one_side_empty": "3",
    "uptime..uptime": "83.33",
    "spread.all.samples": "53",
    "spread.all.median": "20.00",
    "spread.all.p95": "120.48",
    "drawdown..drawdown": "799.80",
    "drawdown..drawdown_percent": "100.00",
    "drawdown..trough_at": "2026-03-02T08:57:00Z",
    "drawdown..last": "0.00",
    "depth_band.0-10.bid_mean": "0.00",
    "depth_band.10-25.bid_mean": "471.23",  # 50 × 499.5 / 53
    "depth_band.10-25.ask_mean": "283.30",  # 50 × 300.3 / 53
    "selection..until": "2026-03-02T09:00:00Z",
}
EPOCH_1 = {
    "uptime..sample_times": "60",
    "uptime..up": "60",
    "uptime..uptime": "100.00",
    "spread.all.median": "19.98",
    "spread.all.p95": "20.00",
    "drawdown..drawdown": "0.00",  # 300.2, then 799.8: the depth never fell
    "drawdown..drawdown_percent": "0.00",
    "drawdown..peak": "799.80",
    "depth_band.0-10.bid_mean": "100.00",
    "depth_band.0-10.ask_mean": "50.10",
    "depth_band.10-25.bid_mean": "249.75",
    "depth_band.10-25.ask_mean": "150.15",
}


def assert_shows(shown: dict[str, str], want: dict[str, str]) -> None:
    assert {k: shown.get(k) for k in want} == want


def test_the_whole_campaign_shows_the_four_reports(client: Client, campaign: Campaign) -> None:
    page = get_page(client, campaign)
    shown = figures_on(page)
    assert_shows(shown, WHOLE)
    assert "drawdown..peak_at" in shown
    for report in ("uptime", "spread", "drawdown", "depth_band"):
        assert page.find("section", data_report=report) is not None
    assert "Stability of Stable depth on MMT/USDT" in page.one("h1").text()
    assert "Whole campaign (24 epochs)" in page.one("h2", id="selection-h").text()
    assert "counts as not up" in page.one("section", id="uptime").text()
    assert "nearest rank" in page.one("section", id="spread").text()
    assert "799.80 USDT" in page.one("section", id="drawdown").text()  # in the quote currency
    assert [tr["data-band"] for tr in page.one("table", data_bands=True).find_all("tr", data_band=True)] == [
        "0-10",
        "10-25",
        "25-50",
    ]
    assert page.find("a", href="?epoch=2") is not None  # the running epoch
    # The charts are drawn on the server: 150 sample times in 150 uptime bars, two hours of spread bars, a depth
    # range for each minute with a book and the drawdown's two marks, and the bucket bars.
    assert len(page.one("svg", data_chart="uptime").find_all("rect")) == 150
    spread_svg = page.one("svg", data_chart="spread")
    assert len(spread_svg.one("g", data_part="median").find_all("rect")) == 2
    depth_svg = page.one("svg", data_chart="depth")
    assert depth_svg.one("path", data_part="range")["d"].count("Z") == 113
    assert depth_svg.one("path", data_part="peak")["d"].startswith("M")
    peak_x = float(depth_svg.one("line", data_part="peak-mark")["x1"])
    assert peak_x < float(depth_svg.one("line", data_part="trough-mark")["x1"])
    bars = page.one("svg", data_chart="bands").find_all("rect", data_part="bid")
    assert [float(b["width"]) > 0 for b in bars] == [True, True, False]


@pytest.mark.parametrize(("query", "want"), [("?epoch=0", EPOCH_0), ("?epoch=1", EPOCH_1)])
def test_one_epoch(client: Client, campaign: Campaign, query: str, want: dict[str, str]) -> None:
    page = get_page(client, campaign, query)
    assert_shows(figures_on(page), want)
    epoch = query.rsplit("=", 1)[1]
    assert f"Epoch {epoch} of 24" in page.one("h2", id="selection-h").text()
    assert page.one("input", id="epoch")["value"] == epoch


def test_an_epoch_not_yet_started_has_nothing_to_count(client: Client, campaign: Campaign) -> None:
    page = get_page(client, campaign, "?epoch=5")
    assert "No sample time to count yet" in page.one(data_unavailable=True).text()
    assert page.find("section", data_report="uptime") is None
    rows = csv_rows(client, campaign, "?epoch=5")
    assert [r["metric"] for r in rows if r["report"] != "selection"] == []


@pytest.mark.parametrize("query", ["", "?epoch=0", "?epoch=1", "?epoch=2"])
def test_the_csv_and_the_json_are_the_pages_numbers(client: Client, campaign: Campaign, query: str) -> None:
    shown = figures_on(get_page(client, campaign, query))
    rows = csv_rows(client, campaign, query)
    assert list(rows[0]) == ["report", "item", "metric", "value", "unit"]
    by_key = {f"{r['report']}.{r['item']}.{r['metric']}": r for r in rows}
    assert len(by_key) == len(rows)  # no figure twice
    reports = [k for k in by_key if not k.startswith("selection.")]
    on_page = [k for k in shown if not k.startswith("selection.")]
    # Every figure of the CSV but the per-hour lowest and highest spreads (said so on the page) is on the page.
    hidden = {k for k in reports if k.split(".")[1] not in ("", "all") and k.rsplit(".", 1)[1] in ("min", "max")}
    assert sorted(set(reports) - hidden) == sorted(on_page)
    for key in on_page:
        assert by_key[key]["value"] == shown[key], key
    for key in ("selection..first_sample", "selection..until", "selection..max_spread_bps"):
        assert by_key[key]["value"] == shown[key]
    units = {"uptime": "%", "median": "bps", "p95": "bps", "drawdown": "USDT", "bid_mean": "USDT", "samples": ""}
    assert {r["metric"] for r in rows} >= {"uptime", "samples", "bid_mean"}
    assert all(r["unit"] == units[r["metric"]] for r in rows if r["metric"] in units)
    # The selector's figures are the CSV's.
    selected = campaign_stability(chain_id=campaign.chain_id, address=campaign.address, epoch=query[7:] or None)
    assert [(f.key, f.value, f.unit) for f in selected.figures] == [
        (k, r["value"], r["unit"]) for k, r in by_key.items() if not k.startswith("selection.")
    ]
    # The JSON: one section per report, the same strings.
    doc = client.get(url(campaign, ".json", query)).json()
    assert doc["schema"] == "mrmarket.stability/v1"
    assert json_figures(doc) == {k: r["value"] for k, r in by_key.items() if not k.startswith("selection.")}
    assert doc["selection"]["epoch"] == (int(query[7:]) if query else None)


def json_figures(doc: dict[str, Any]) -> dict[str, str]:
    """The JSON's figures under the CSV's keys."""
    out: dict[str, str] = {}
    if doc["uptime"] is None:
        return out
    names = {"uptime_percent": "uptime"}
    for name, value in doc["uptime"].items():
        if value is not None:
            out[f"uptime..{names.get(name, name)}"] = str(value)
    spreads = ([("all", doc["spread"]["all"])] if doc["spread"]["all"] else []) + [
        (hour["hour"], hour) for hour in doc["spread"]["hours"]
    ]
    for item, row in spreads:
        out[f"spread.{item}.samples"] = str(row["samples"])
        for metric in ("median", "p95", "min", "max"):
            out[f"spread.{item}.{metric}"] = row[f"{metric}_bps"]
    for name, value in (doc["drawdown"] or {}).items():
        if value is not None:
            out[f"drawdown..{name}"] = str(value)
    for band in doc["depth_bands"]:
        item = f"{band['from_bps']}-{band['to_bps']}"
        out["depth_band.all.samples"] = str(band["samples"])
        out[f"depth_band.{item}.bid_mean"] = band["bid_mean"]
        out[f"depth_band.{item}.ask_mean"] = band["ask_mean"]
    return out


def test_the_saved_state_carries_over_and_only_new_rows_are_read(
    client: Client, campaign: Campaign, frozen: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = figures_on(get_page(client, campaign))
    fed: list[int] = []
    original = StabilityAccumulator.add

    def counting(self: StabilityAccumulator, t_ms: int, book: Any) -> None:
        fed.append(t_ms)
        original(self, t_ms, book)

    monkeypatch.setattr(StabilityAccumulator, "add", counting)
    assert figures_on(get_page(client, campaign)) == first
    assert fed == []  # nothing recorded since: the saved state is the answer
    # The recorder comes back: ten more minutes, five books A.
    for k in range(150, 155):
        record(campaign, k, BOOK_A)
    frozen.value = NOW + timedelta(minutes=10)
    later = figures_on(get_page(client, campaign))
    assert fed == [ms(START) + k * SAMPLE_MS for k in range(150, 155)]
    assert (later["uptime..sample_times"], later["uptime..up"], later["uptime..no_row"]) == ("160", "115", "37")
    # The same as counting everything afresh.
    settings_prefix = uuid.uuid4().hex
    with monkeypatch.context() as m:
        m.setattr(stability, "_checkpoint_key", lambda *a: f"fresh-{settings_prefix}")
        assert figures_on(get_page(client, campaign)) == later


def test_a_row_appearing_in_the_settled_past_is_counted_afresh(client: Client, campaign: Campaign) -> None:
    assert figures_on(get_page(client, campaign))["uptime..no_row"] == "32"
    record(campaign, 55, BOOK_A)  # not something the recorder does; the saved state no longer matches the rows
    shown = figures_on(get_page(client, campaign))
    assert (shown["uptime..no_row"], shown["uptime..up"]) == ("31", "111")


def test_the_campaign_page_links_here(client: Client, campaign: Campaign, settings) -> None:
    settings.CHAIN_RPC_URL = "http://127.0.0.1:9"
    page = parse(client.get(f"/campaigns/{campaign.chain_id}/{campaign.address}/").content.decode())
    assert page.one("a", data_stability_link=True)["href"] == url(campaign)


def test_without_a_known_band_the_page_says_so(client: Client) -> None:
    c = make_campaign(with_metadata=False, address="0x" + "5d" * 20)
    page = get_page(client, c)
    assert "band is not known here" in page.one(data_unavailable=True).text()
    assert page.find("section", data_report="uptime") is None
    rows = csv_rows(client, c)
    assert any(r["metric"] == "unavailable" and "band is not known" in r["value"] for r in rows)
    assert client.get(url(c, ".json")).json()["uptime"] is None


def test_an_unreadable_row_is_said_not_served_wrong(client: Client, campaign: Campaign) -> None:
    BookSnapshot.objects.filter(campaign=campaign, t_ms=ms(START)).update(book={"bids": "oops", "asks": []})
    page = get_page(client, campaign)
    assert "cannot be read" in page.one(data_unavailable=True).text()
    assert page.find("section", data_report="uptime") is None


def test_an_unknown_campaign_is_404(client: Client) -> None:
    address = "0x" + "99" * 20
    assert client.get(f"/campaigns/31337/{address}/stability").status_code == 404
    for suffix in (".csv", ".json"):
        response = client.get(f"/campaigns/31337/{address}/stability{suffix}")
        assert response.status_code == 404
        assert response.json()["code"] == "campaign_unknown"


@pytest.mark.parametrize(
    ("epoch", "says"),
    [
        ("abc", "epoch must be a whole number from 0 to 23, not 'abc'"),
        ("-1", "epoch must be a whole number from 0 to 23"),
        ("1.5", "epoch must be a whole number from 0 to 23"),
        ("24", "this campaign has 24 epochs, numbered 0 to 23: there is no epoch 24"),
        ("99999999999", "epoch must be a whole number"),
    ],
)
def test_a_bad_epoch_is_400_and_changes_nothing(client: Client, campaign: Campaign, epoch: str, says: str) -> None:
    rows_before = list(BookSnapshot.objects.filter(campaign=campaign).order_by("t_ms").values_list("t_ms", "book"))
    response = client.get(url(campaign), {"epoch": epoch})
    assert response.status_code == 400
    page = parse(response.content.decode())
    assert says in page.one(data_error=True).text()
    assert page.find("section", data_report="uptime") is None
    for suffix in (".csv", ".json"):
        answer = client.get(url(campaign, suffix), {"epoch": epoch})
        assert answer.status_code == 400
        assert answer.json()["code"] == "stability_epoch_invalid"
        assert says in answer.json()["message"]
    assert list(BookSnapshot.objects.filter(campaign=campaign).order_by("t_ms").values_list("t_ms", "book")) == (
        rows_before
    )
    # No state was saved for any selection; a good request saves its own (so the keys looked at are the right ones).
    keys = _possible_keys(campaign)
    assert not any(cache.get(k) for k in keys)
    assert client.get(url(campaign), {"epoch": "1"}).status_code == 200
    assert [k for k in keys if cache.get(k)] == [keys[2]]


def _possible_keys(c: Campaign) -> list[str]:
    out = []
    for epoch in (None, *range(24)):
        lo = ms(START) + (epoch or 0) * 3_600_000
        end = ms(START) + 24 * 3_600_000 if epoch is None else lo + 3_600_000
        acc = StabilityAccumulator.for_selection(
            start_ms=ms(START), sample_ms=SAMPLE_MS, from_ms=lo, end_ms=end, band_bps=50
        )
        out.append(stability._checkpoint_key(c, acc, end))
    return out


def test_a_blank_epoch_is_the_whole_campaign(client: Client, campaign: Campaign) -> None:
    assert figures_on(get_page(client, campaign, "?epoch="))["uptime..sample_times"] == "150"
