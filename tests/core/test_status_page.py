"""The admin system status page: staff only, every component with a fresh check time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import Client

from mrmarket import heartbeats
from mrmarket.roles import Role
from mrmarket.selectors import STATUS_COMPONENTS
from tests.factories import user_with

pytestmark = pytest.mark.django_db


def test_anonymous_is_sent_to_login(client: Client) -> None:
    response = client.get("/admin/system-status/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.CREATOR, Role.AUDITOR])
def test_non_staff_roles_cannot_see_it(client: Client, role: Role) -> None:
    client.force_login(user_with(role))
    response = client.get("/admin/system-status/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_staff_sees_every_component_with_its_check_time(client: Client, redis_clean: None) -> None:
    heartbeats.record("worker:w1")
    heartbeats.record("beat")
    client.force_login(user_with(Role.STAFF))
    before = datetime.now(tz=UTC).strftime("%Y-%m-%d %H:%M")
    response = client.get("/admin/system-status/")
    assert response.status_code == 200
    html = response.content.decode()
    for name in STATUS_COMPONENTS:
        assert f'data-component="{name}"' in html
    checks = {c.name: c for c in response.context["checks"]}
    assert checks["executors"].detail == "no executors yet"
    assert checks["easyenclave"].detail == "EasyEnclave is not configured yet"
    assert checks["workers"].state == "ok"
    assert checks["beat"].state == "ok"
    assert checks["queue"].detail.endswith("task(s) waiting in " + repr(checks["queue"].detail.split("'")[1]))
    assert before in html  # the check time shown is this request's
    assert 'data-heartbeat="worker:w1"' in html


def test_admin_index_links_to_status_page(client: Client) -> None:
    client.force_login(user_with(Role.STAFF))
    assert 'href="/admin/system-status/"' in client.get("/admin/").content.decode()
