"""The system status page in a real browser: staff login, every component shown, live heartbeats over WebSocket."""

from __future__ import annotations

import pytest

from mrmarket import broadcast
from mrmarket.roles import Role
from tests.browser.conftest import off_loop
from tests.factories import PASSWORD, user_with

pytestmark = pytest.mark.slow


# Users are made before the browser starts: inside Playwright's event loop Django would open a connection
# bound to that async context, which nothing closes.
@pytest.fixture
def staff(asgi_server: str):
    return user_with(Role.STAFF, username="ops")


@pytest.fixture
def operator(asgi_server: str):
    return user_with(Role.OPERATOR, username="op")


def test_status_page_updates_live(asgi_server: str, staff, browser_page, redis_clean: None) -> None:
    page = browser_page
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{asgi_server}/admin/login/?next=/admin/system-status/")
    page.fill("#id_username", staff.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/system-status/")

    for component in ("queue", "workers", "beat", "database", "redis", "chain_rpc", "executors", "easyenclave"):
        assert page.locator(f'tr[data-component="{component}"] td.state').count() == 1
    assert page.locator('tr[data-component="database"] td.state').inner_text() == "ok"
    # The state colours come from a stylesheet the CSP allows (an inline <style> would be blocked).
    color = page.locator('tr[data-component="database"] td.state').evaluate("e => getComputedStyle(e).color")
    assert color == "rgb(19, 115, 51)"
    assert blocked == []
    assert "No heartbeat received yet" in page.locator("#heartbeat-table").inner_text()

    page.wait_for_function("document.getElementById('ws-state').textContent === 'connected'")
    heartbeat = {"component": "worker:live-test", "at": "2026-11-24T10:00:00+00:00"}
    off_loop(broadcast.system_event, "system.heartbeat", heartbeat)
    row = page.locator('tr[data-heartbeat="worker:live-test"] td.at')
    row.wait_for()
    assert row.inner_text() == "2026-11-24 10:00:00"

    beat = {"name": "beat", "state": "fail", "detail": "no beat heartbeat yet", "checked_at": "2026-11-24T10:00:01"}
    off_loop(broadcast.system_event, "system.status", {"components": [beat]})
    page.wait_for_function("document.querySelector('tr[data-component=\"beat\"] td.state').textContent === 'fail'")
    assert page.locator('tr[data-component="beat"] td.detail').inner_text() == "no beat heartbeat yet"


def test_non_staff_cannot_open_the_live_socket(asgi_server: str, operator, browser_page) -> None:
    page = browser_page
    page.goto(f"{asgi_server}/admin/login/")
    page.fill("#id_username", "op")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    # The admin refuses non-staff at login; the socket refuses them too.
    assert "staff account" in page.content()
    result = page.evaluate(
        """(url) => new Promise((resolve) => {
            const ws = new WebSocket(url);
            ws.onopen = () => resolve("open");
            ws.onclose = (e) => resolve("closed:" + e.code);
        })""",
        asgi_server.replace("http", "ws") + "/ws/v1/system/status",
    )
    assert result.startswith("closed")
