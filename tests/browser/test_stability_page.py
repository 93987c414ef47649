"""The stability page in a real browser: the four reports with their charts drawn (SVG with data in it), both
downloads well formed and equal to the page's figures, the epoch form, a bad epoch said plainly, axe-core and a
phone's width, and screenshots for people to look at."""

from __future__ import annotations

import csv
import io
import json
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from campaigns.models import Campaign
from payouts import stability
from tests.browser.page_checks import check_page
from tests.payouts.test_stability_page import NOW, campaign_with_rows

pytestmark = pytest.mark.slow

FIGURES = """() => Object.fromEntries([...document.querySelectorAll('[data-figure]')].map((el) =>
  [el.dataset.figure, el.tagName === 'TIME' ? el.getAttribute('datetime') : el.textContent.trim()]))"""


# Rows are made before the browser starts (Django's connection would otherwise bind to Playwright's event loop).
@pytest.fixture
def campaign(asgi_server: str, settings, monkeypatch: pytest.MonkeyPatch) -> Campaign:
    caches = dict(settings.CACHES)
    caches["default"] = {**caches["default"], "KEY_PREFIX": f"test-stability-{uuid.uuid4().hex}"}
    settings.CACHES = caches
    monkeypatch.setattr(stability, "timezone", SimpleNamespace(now=lambda: NOW))
    return campaign_with_rows()


def url(asgi_server: str, campaign: Campaign, query: str = "") -> str:
    return f"{asgi_server}/campaigns/{campaign.chain_id}/{campaign.address}/stability{query}"


def test_the_four_reports_and_their_charts(asgi_server: str, campaign: Campaign, browser_page: Any) -> None:
    page = browser_page
    page.goto(url(asgi_server, campaign))
    for report in ("uptime", "spread", "drawdown", "depth_band"):
        assert page.locator(f'section[data-report="{report}"]').is_visible()
    assert page.locator('[data-figure="uptime..uptime"]').inner_text() == "73.33"
    assert page.locator('[data-figure="drawdown..drawdown"]').inner_text() == "799.80"
    for chart in ("uptime", "spread", "depth", "bands"):
        svg = page.locator(f'svg[data-chart="{chart}"]')
        assert svg.is_visible()
        box = svg.bounding_box()
        assert box["width"] > 300
        assert box["height"] > 50
    # Drawn with data: bars of some size, paths with points.
    assert page.locator('svg[data-chart="uptime"] rect').count() == 150
    assert page.locator('svg[data-chart="uptime"] rect').first.bounding_box()["height"] > 50
    assert page.locator('svg[data-chart="spread"] [data-part="median"] rect').count() == 2
    assert page.locator('svg[data-chart="depth"] [data-part="range"]').bounding_box()["width"] > 100
    assert page.locator('svg[data-chart="depth"] [data-part="peak"]').get_attribute("d").startswith("M")
    assert page.locator('svg[data-chart="depth"] [data-part="trough-mark"]').count() == 1
    assert page.locator('svg[data-chart="bands"] [data-part="ask"]').first.bounding_box()["width"] > 10
    check_page(page, "stability")


def test_the_downloads_are_well_formed_and_the_pages_numbers(
    asgi_server: str, campaign: Campaign, browser_page: Any, tmp_path: Path
) -> None:
    page = browser_page
    page.goto(url(asgi_server, campaign, "?epoch=0"))
    shown = page.evaluate(FIGURES)
    assert shown["uptime..uptime"] == "83.33"
    with page.expect_download() as csv_download:
        page.locator('a[data-download="csv"]').click()
    assert csv_download.value.suggested_filename == f"stability-31337-{campaign.address}-epoch-0.csv"
    csv_path = tmp_path / "stability.csv"
    csv_download.value.save_as(csv_path)
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text(encoding="utf-8"))))
    assert list(rows[0]) == ["report", "item", "metric", "value", "unit"]
    by_key = {f"{r['report']}.{r['item']}.{r['metric']}": r["value"] for r in rows}
    assert {k: by_key[k] for k in shown} == shown
    with page.expect_download() as json_download:
        page.locator('a[data-download="json"]').click()
    json_path = tmp_path / "stability.json"
    json_download.value.save_as(json_path)
    doc = json.loads(json_path.read_text(encoding="utf-8"))
    assert doc["schema"] == "mrmarket.stability/v1"
    assert doc["selection"]["epoch"] == 0
    assert doc["uptime"]["uptime_percent"] == shown["uptime..uptime"]
    assert doc["drawdown"]["trough_at"] == shown["drawdown..trough_at"]
    assert [b["bid_mean"] for b in doc["depth_bands"]] == [
        shown[f"depth_band.{b['from_bps']}-{b['to_bps']}.bid_mean"] for b in doc["depth_bands"]
    ]


def test_the_epoch_form_and_a_bad_epoch(asgi_server: str, campaign: Campaign, browser_page: Any) -> None:
    page = browser_page
    page.goto(url(asgi_server, campaign))
    page.locator("#epoch").fill("1")
    page.locator("form.filters button[type=submit]").click()
    page.wait_for_url("**/stability?epoch=1")
    assert page.locator("#selection-h").inner_text() == "Epoch 1 of 24"
    assert page.locator('[data-figure="uptime..uptime"]').inner_text() == "100.00"
    page.locator('a[rel="prev"]').click()
    page.wait_for_url("**/stability?epoch=0")
    assert page.locator('[data-figure="uptime..uptime"]').inner_text() == "83.33"
    response = page.goto(url(asgi_server, campaign, "?epoch=twelve"))
    assert response.status == 400
    assert "epoch must be a whole number from 0 to 23" in page.locator("[data-error]").inner_text()
    check_page(page, "stability-bad-epoch")
