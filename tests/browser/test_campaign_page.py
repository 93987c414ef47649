"""The campaign page in a real browser: with JavaScript disabled every figure is there (the server drew the chart);
with JavaScript the script runs under the CSP, says it is reconnecting while no stream answers, and says "live"
and redraws the chart when a frame comes through the market's Channels group."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from campaigns import live
from campaigns.models import Campaign
from tests.browser.conftest import off_loop
from tests.browser.page_checks import SCREENSHOTS, check_page
from tests.payouts.test_campaign_page import DOWN, FRAME, campaign_with

pytestmark = pytest.mark.slow


# Rows are made before the browser starts (Django's connection would otherwise bind to Playwright's event loop).
@pytest.fixture
def campaign(asgi_server: str, settings, monkeypatch: pytest.MonkeyPatch) -> Campaign:
    settings.CHAIN_RPC_URL = DOWN
    monkeypatch.setattr(live, "latest_frame", lambda exchange, symbol: FRAME)
    return campaign_with()


def url(asgi_server: str, campaign: Campaign) -> str:
    return f"{asgi_server}/campaigns/{campaign.chain_id}/{campaign.address}/"


def test_without_javascript_every_figure_is_shown(asgi_server: str, campaign: Campaign, browser_page: Any) -> None:
    context = browser_page.context.browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(url(asgi_server, campaign))
    assert page.locator("h1").inner_text() == "Stable depth on MMT/USDT"
    assert "orders within 0.50 % of the mid count" in page.locator("[data-rules]").inner_text()
    assert "chain unreachable" in page.locator("[data-budget-left]").inner_text()
    assert "attested executors quoting this market now" in page.locator("[data-nodes]").inner_text()
    assert page.locator("svg[data-depth-chart]").is_visible()
    assert page.locator('svg [data-part="band"]').bounding_box()["width"] > 0
    assert page.locator("[data-stream-status]").inner_text().startswith("Snapshot of")
    assert page.locator("table[data-permissions] tbody tr").count() == 6
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "campaign-no-js.png"), full_page=True)
    context.close()


def test_with_javascript_the_script_runs_and_reconnects_while_no_stream_answers(
    asgi_server: str, campaign: Campaign, browser_page: Any, settings
) -> None:
    page = browser_page
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    # No stream answers (whether the depth consumer is deployed or not): each socket is closed as it opens.
    page.route_web_socket("**/ws/v1/campaigns/**", lambda ws: ws.close())
    page.goto(url(asgi_server, campaign))
    status = page.locator("[data-stream-status]")
    page.wait_for_function("document.querySelector('[data-stream-status]').dataset.state === 'reconnecting'")
    assert status.inner_text().startswith("reconnecting in ")
    assert blocked == []


def test_the_page_is_accessible_and_fits_a_phone(asgi_server: str, campaign: Campaign, browser_page: Any) -> None:
    browser_page.goto(url(asgi_server, campaign))
    check_page(browser_page, "campaign-with-book")  # with the chart drawn and every section filled


def test_each_frame_redraws_the_chart_and_a_down_message_is_said(
    asgi_server: str, campaign: Campaign, browser_page: Any
) -> None:
    page = browser_page
    sockets: list[Any] = []
    page.route_web_socket("**/ws/v1/campaigns/**", lambda ws: sockets.append(ws))  # the test plays the server
    page.goto(url(asgi_server, campaign))
    first_d = page.locator('svg [data-part="asks"]').get_attribute("d")
    page.wait_for_function("document.querySelector('[data-stream-status]').dataset.state === 'connecting'")
    assert sockets[0].url.endswith(f"/ws/v1/campaigns/31337/{campaign.address}/depth")
    # The same book drawn by the script is the server's drawing: the two geometries are in step.
    drawn = {p: page.locator(f'svg [data-part="{p}"]').get_attribute("d") for p in ("bids", "asks")}
    band = page.locator('svg [data-part="band"]').get_attribute("width")
    sockets[0].send(json.dumps({**FRAME, "seq": 49}))
    page.wait_for_function("document.querySelector('[data-depth-chart]').dataset.seq === '49'")
    assert {p: page.locator(f'svg [data-part="{p}"]').get_attribute("d") for p in ("bids", "asks")} == drawn
    assert page.locator('svg [data-part="band"]').get_attribute("width") == band
    frame = {**FRAME, "seq": 50, "mid": "0.1001", "asks": [["0.1003", "9000"], ["0.1005", "1"]]}
    sockets[0].send(json.dumps(frame))
    page.wait_for_function("document.querySelector('[data-depth-chart]').dataset.seq === '50'")
    assert page.locator("[data-stream-status]").inner_text() == "live"
    assert page.locator('svg [data-part="mid-label"]').text_content() == "0.1001"
    assert page.locator('svg [data-part="asks"]').get_attribute("d") != first_d
    sockets[0].send(json.dumps({"type": "depth.down", "exchange": "binance", "symbol": "MMT/USDT"}))
    page.wait_for_function("document.querySelector('[data-stream-status]').dataset.state === 'down'")
    assert page.locator("[data-stream-status]").inner_text().startswith("stream down")
    # A book with one side empty has no mid: the chart gives way to the note.
    sockets[0].send(json.dumps({**FRAME, "seq": 51, "mid": None, "asks": []}))
    page.locator("[data-chart-note]").wait_for(state="visible")
    assert page.locator("svg[data-depth-chart]").is_hidden()


def test_a_frame_through_the_channel_layer_makes_the_page_live(
    asgi_server: str, campaign: Campaign, browser_page: Any
) -> None:
    page = browser_page
    page.goto(url(asgi_server, campaign))
    moved = {**FRAME, "seq": 42, "mid": "0.1001", "asks": [["0.1003", "9000"]]}

    def push() -> None:
        async_to_sync(live.frame_publish)({**moved, "created_ms": int(time.time() * 1000)})

    page.locator("[data-stream-status][data-state]").wait_for()
    for _ in range(20):  # the consumer joins the group once its socket is open: push until the page has it
        off_loop(push)
        if page.locator(f'[data-depth-chart][data-seq="{moved["seq"]}"]').count():
            break
        page.wait_for_timeout(250)
    assert page.locator("[data-stream-status]").inner_text() == "live"
    assert page.locator('svg [data-part="mid-label"]').text_content() == "0.1001"
