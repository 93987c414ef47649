"""The operator panel in the admin: an operator's running order with its exposure at the mid against its job's limit,
its PnL (each job's latest report, fees once), the open epoch's estimated rewards and the rewards paid so far in
token units, its executor's health, trend charts drawn on the server, and alerts with acknowledge and resolve
buttons; who may see which panel, and every refused request changing nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from attestation.models import ExecutorRecord
from execution import alerts
from execution.domain.units import for_people
from execution.models import Alert
from mrmarket.roles import Role
from payouts.models import EpochPreview
from tests.factories import user_with
from tests.fixtures.orders import running_order, store_report
from tests.payouts.audit_fixtures import AUDITED, DECIMALS, SYMBOL, Scene, oracle_settings, scene
from tests.payouts.page_tree import Node, parse

pytestmark = pytest.mark.django_db
T0 = 1_700_000_000_000


@pytest.fixture
def world(settings, tmp_path: Path) -> tuple[Scene, Any, Any]:
    oracle_settings(settings, tmp_path / "oracle")
    audit = scene()
    operator = user_with(Role.OPERATOR, Role.STAFF, username="demo-operator")
    order = running_order(operator, job_id="mmo1-cafe", campaign=audit.campaign, reward_address=AUDITED)
    ExecutorRecord.objects.create(
        url=order.executor_url,
        state=ExecutorRecord.State.VERIFIED,
        last_verified_at=timezone.now() - timedelta(minutes=3),
        checks_total=10,
        checks_ok=9,
        build_version="1.2.3",
    )
    # A job the executor lost earlier (its successor is the order's job now): its latest report counts once too.
    store_report(
        order,
        0,
        window_start_ms=T0 - 600_000,
        job_id="mmo1-lost",
        pnl={"realized": "10", "unrealized": "0", "fees": "1"},
    )
    pnl = [("1", "0", "0.1"), ("2", "-0.5", "0.2"), ("5", "-1.5", "0.5")]  # cumulative per job, report by report
    for seq, (realized, unrealized, fees) in enumerate(pnl):
        store_report(
            order,
            seq,
            window_start_ms=T0 + seq * 60_000,
            pnl={"realized": realized, "unrealized": unrealized, "fees": fees},
            inventory={"MMT": str(400 + 50 * seq), "USDT": "500"},
            resting_buys=(("0.99", "100"),),
        )
    EpochPreview.objects.create(
        campaign=audit.campaign,
        epoch=5,
        as_of_ms=T0,
        bundle={
            "participants": [
                {
                    "address": AUDITED,
                    "depth": "10",
                    "volume": "0",
                    "share": "1/4",
                    "amount": str(125 * 10 ** (DECIMALS - 1)),
                    "flags": {},
                    "exclusions": [],
                }
            ]
        },
    )
    return audit, operator, order


def signed_in(user: Any, *, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def page(client: Client, url: str) -> Node:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return parse(response.content)


def test_the_panel_shows_the_operators_running_order_with_exposure_pnl_and_estimated_rewards(world) -> None:
    audit, operator, order = world
    root = page(signed_in(operator), "/admin/operator/")  # an operator's own panel
    item = root.one("article", data_order=str(order.pk))
    exposure = item.one("table", data_exposure=True)
    assert exposure.one("td", data_value="inventory").text() == "500 USDT"  # 500 MMT at the mid of 1
    assert exposure.one("td", data_value="exposure").text() == "600 USDT of 2,000 USDT (30.0 %)"  # + 100 resting buys
    pnl = item.one("table", data_pnl=True)
    # The lost job's latest (10, 0, 1) and the current job's latest (5, -1.5, 0.5): never a sum of every report.
    assert pnl.one("td", data_value="realized").text() == "15 USDT"
    assert pnl.one("td", data_value="unrealized").text() == "-1.5 USDT"
    assert pnl.one("td", data_value="fees").text() == "1.5 USDT"
    assert pnl.one("td", data_value="net").text().startswith("12 USDT (the kill switch trips at -50 USDT)")
    assert "Net PnL across these orders: 12 USDT." in root.one("p", data_pnl_total=True).text()
    executor = item.one("dd", data_executor=True).text()
    assert "verified" in executor
    assert "uptime 90 %" in executor
    assert "not hardware-attested" in executor
    campaign = root.one("tr", data_campaign=audit.campaign.address)
    assert campaign.one("td", data_amount="estimate").text() == "12.5 MMT (epoch 5 so far)"
    paid = int(audit.paying.leaves[2]["amount"])  # the audited address's leaf of the paid epoch (the other unpaid)
    assert campaign.one("td", data_amount="paid").text() == for_people(paid, DECIMALS, SYMBOL)
    charts = item.find_all("figure", class_="op-chart")
    assert [c["data-chart"] for c in charts] == ["net-pnl", "exposure-at-the-mid", "own-depth-near-the-mid"]
    pnl_line = charts[0].one("polyline")
    assert len(pnl_line["points"].split()) == 3  # the current job's three windows
    # The loss limit (-50) is far below a PnL of a few USDT: named in the caption, not drawn to flatten the trend.
    assert charts[0].find("line", data_part="limit") is None
    assert "the job's limit, -50, is far off the chart" in charts[0].text()
    assert len(charts[2].find_all("polyline")) == 3


def test_alerts_show_with_severity_and_buttons_that_post_with_csrf(world) -> None:
    _, operator, _ = world
    alerts.alert_raise("side_missing", "the asks are gone", dedup="s:1", detail={}, owner_id=operator.pk, warning=True)
    alert = Alert.objects.get(dedup_key="s:1")
    client = signed_in(operator, csrf=True)
    root = page(client, "/admin/operator/")
    row = root.one("tr", data_alert=str(alert.pk))
    assert row["data-severity"] == "warning"
    forms = row.find_all("form")
    assert [f.one("button")["data-action"] for f in forms] == ["acknowledge", "resolve"]
    assert all(f["method"] == "post" for f in forms)
    # Without the CSRF token: refused, nothing changes.
    assert client.post(forms[0]["action"], {"next": "/admin/operator/"}).status_code == 403
    alert.refresh_from_db()
    assert alert.acknowledged_at is None
    token = forms[0].one("input", name="csrfmiddlewaretoken")["value"]
    response = client.post(forms[0]["action"], {"csrfmiddlewaretoken": token, "next": "/admin/operator/"})
    assert (response.status_code, response["Location"]) == (303, "/admin/operator/")
    alert.refresh_from_db()
    assert alert.acknowledged_by_id == operator.pk
    root = page(client, "/admin/operator/")
    row = root.one("tr", data_alert=str(alert.pk))
    assert "demo-operator" in row.one("td", data_acknowledged=True).text()
    (resolve,) = row.find_all("form")
    client.post(resolve["action"], {"csrfmiddlewaretoken": token, "next": "https://elsewhere.example/"})
    alert.refresh_from_db()
    assert alert.resolved_by_id == operator.pk


def test_refused_alert_requests_are_typed_and_change_nothing(world) -> None:
    _, operator, _ = world
    other = user_with(Role.OPERATOR, Role.STAFF)
    alerts.alert_raise("x", "theirs", dedup="o:1", detail={}, owner_id=other.pk)
    alerts.alert_raise("x", "mine", dedup="m:1", detail={}, owner_id=operator.pk)
    theirs, mine = Alert.objects.get(dedup_key="o:1"), Alert.objects.get(dedup_key="m:1")
    client = signed_in(operator)
    assert client.post(f"/admin/operator/alerts/{theirs.pk}/resolve/").status_code == 403
    assert client.post(f"/admin/operator/alerts/{theirs.pk + mine.pk + 100}/resolve/").status_code == 404
    assert client.post(f"/admin/operator/alerts/{mine.pk}/delete/").status_code == 404
    assert client.get(f"/admin/operator/alerts/{mine.pk}/resolve/").status_code == 405
    theirs.refresh_from_db()
    assert theirs.resolved_at is None
    alerts.alert_resolve(alert_id=mine.pk, user=operator)
    mine.refresh_from_db()
    before = (mine.resolved_at, mine.resolved_by_id)
    response = client.post(f"/admin/operator/alerts/{mine.pk}/resolve/", follow=True)
    assert "alert_already_resolved" in response.content.decode()
    mine.refresh_from_db()
    assert (mine.resolved_at, mine.resolved_by_id) == before


def test_who_sees_which_panel(world) -> None:
    _, operator, order = world
    other = user_with(Role.OPERATOR, Role.STAFF)
    assert signed_in(other).get(f"/admin/operator/{operator.pk}/").status_code == 403
    assert signed_in(user_with(Role.OPERATOR)).get("/admin/operator/").status_code == 403  # not staff
    anonymous = Client().get("/admin/operator/")
    assert anonymous.status_code == 302
    assert "/admin/login/" in anonymous["Location"]
    root = user_with(Role.STAFF, is_superuser=True)
    index = page(signed_in(root), "/admin/operator/")
    listed = index.one("tr", data_operator=str(operator.pk))
    assert listed.one("a")["href"] == f"/admin/operator/{operator.pk}/"
    assert page(signed_in(root), f"/admin/operator/{operator.pk}/").find("article", data_order=str(order.pk))
    assert signed_in(root).get("/admin/operator/999999/").status_code == 404
    # The other operator's own panel has none of this operator's orders.
    assert page(signed_in(other), "/admin/operator/").find("article", data_order=str(order.pk)) is None
