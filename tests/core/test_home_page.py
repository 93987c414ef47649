"""The root page: what runs, and links to the admin, the executors page and the API (it answered 404)."""

from __future__ import annotations

import pytest
from django.test import Client

from mrmarket import health

pytestmark = pytest.mark.django_db


def test_root_shows_what_runs_and_where_to_go(client: Client, redis_clean: None) -> None:
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    for name in health.READYZ_CHECKS:
        assert f'data-check="{name}"' in html
    for href in ('href="/admin/"', 'href="/executors/"', 'href="/api/v1/schema"', 'href="/readyz"'):
        assert href in html
    assert response["Cache-Control"].startswith("max-age=0")


def test_root_is_read_only(client: Client) -> None:
    assert client.post("/").status_code == 405


def test_root_tells_anyone_the_state_per_check_and_only_staff_the_detail(
    client: Client, monkeypatch: pytest.MonkeyPatch, settings
) -> None:
    from django.contrib.auth import get_user_model

    leaky = "redis://:hunter2@cache.internal:6379/0 refused"
    settings.READYZ_CACHE_SECONDS = 0
    monkeypatch.setitem(health.CHECKS, "redis", lambda: ("down", leaky))
    html = client.get("/").content.decode()
    assert 'data-check="redis"' in html
    assert "hunter2" not in html
    assert "cache.internal" not in html
    staff = get_user_model().objects.create_user("ops", password="x", is_staff=True)
    client.force_login(staff)
    staff_html = client.get("/").content.decode()
    assert "cache.internal" in staff_html  # staff see the detail…
    assert "hunter2" not in staff_html  # …with the URL's password masked
