"""The operator panel in a real browser: an operator signs in to the admin, sees their running order with its
exposure, PnL, estimated rewards and charts (server-drawn SVG the CSP allows, styled from the panel's stylesheet),
acknowledges then resolves an alert with its buttons; the page passes axe-core and fits a phone's width."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from attestation.models import ExecutorRecord
from execution import alerts
from execution.models import Alert
from mrmarket.roles import Role
from payouts.models import EpochPreview
from tests.browser.page_checks import check_page
from tests.factories import PASSWORD, user_with
from tests.fixtures.orders import running_order, store_report
from tests.payouts.audit_fixtures import AUDITED, DECIMALS, oracle_settings, scene

pytestmark = pytest.mark.slow
T0 = 1_700_000_000_000


# Rows are made before the browser starts: inside Playwright's event loop Django would open a connection bound to
# that async context, which nothing closes.
@pytest.fixture
def panel_world(asgi_server: str, settings, tmp_path: Path) -> dict[str, Any]:
    oracle_settings(settings, tmp_path / "oracle")
    audit = scene()
    operator = user_with(Role.OPERATOR, Role.STAFF, username="demo-operator")
    order = running_order(operator, job_id="mmo1-cafe", campaign=audit.campaign, reward_address=AUDITED)
    ExecutorRecord.objects.create(
        url=order.executor_url,
        state=ExecutorRecord.State.VERIFIED,
        last_verified_at=timezone.now() - timedelta(minutes=2),
        checks_total=4,
        checks_ok=4,
        build_version="1.2.3",
        hardware_attested=True,
    )
    for seq in range(4):
        store_report(
            order,
            seq,
            window_start_ms=T0 + seq * 60_000,
            pnl={"realized": str(seq), "unrealized": "-0.25", "fees": f"0.{seq}"},
            inventory={"MMT": str(450 + 20 * seq), "USDT": "500"},
        )
    EpochPreview.objects.create(
        campaign=audit.campaign,
        epoch=5,
        as_of_ms=T0,
        bundle={
            "participants": [
                {
                    "address": AUDITED,
                    "depth": "1",
                    "volume": "0",
                    "share": "1",
                    "amount": str(3 * 10**DECIMALS),
                    "flags": {},
                    "exclusions": [],
                }
            ]
        },
    )
    alerts.alert_raise(
        "side_missing", "the asks of MMT/USDT are gone", dedup="s:1", detail={}, owner_id=operator.pk, warning=True
    )
    return {"operator": operator, "order": order, "alert": Alert.objects.get(dedup_key="s:1")}


def test_an_operator_sees_the_panel_and_acknowledges_then_resolves_an_alert(
    asgi_server: str, panel_world: dict[str, Any], browser_page
) -> None:
    page = browser_page
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{asgi_server}/admin/login/?next=/admin/operator/")
    page.fill("#id_username", "demo-operator")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/operator/")
    order = page.locator(f'article[data-order="{panel_world["order"].pk}"]')
    assert order.locator('td[data-value="net"]').inner_text().startswith("2.45 USDT")  # 3 − 0.25 − 0.3
    assert "3 MMT" in page.locator('td[data-amount="estimate"]').inner_text()
    assert order.locator("svg.trend").count() == 3
    # The lines' colours come from the panel's stylesheet, which the CSP allows.
    stroke = order.locator("polyline.line-pnl").evaluate("e => getComputedStyle(e).stroke")
    assert stroke == "rgb(45, 114, 184)"
    check_page(page, "operator-panel")

    alert = panel_world["alert"]
    row = page.locator(f'tr[data-alert="{alert.pk}"]')
    row.locator('button[data-action="acknowledge"]').click()
    page.wait_for_url("**/admin/operator/")
    assert f"Alert {alert.pk} acknowledged." in page.locator("ul.messagelist").inner_text()
    assert "demo-operator" in row.locator("td[data-acknowledged]").inner_text()
    assert row.locator('button[data-action="acknowledge"]').count() == 0
    row.locator('button[data-action="resolve"]').click()
    page.wait_for_url("**/admin/operator/")
    assert f"Alert {alert.pk} resolved." in page.locator("ul.messagelist").inner_text()
    assert page.locator('table[data-alerts="open"] tr[data-alert]').count() == 0
    assert page.locator(f'table[data-alerts="resolved"] tr[data-alert="{alert.pk}"]').count() == 1
    assert blocked == []
