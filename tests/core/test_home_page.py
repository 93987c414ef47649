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
