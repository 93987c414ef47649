"""Logins: the rate limit keys on the address our proxies saw, repeated failures lock out with a growing wait
(admin and token endpoint alike), and API tokens are stored as digests that expire and staff never see."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from mrmarket.login_security import client_address, lockout_cooloff_seconds
from mrmarket.roles import Role
from tests.factories import PASSWORD, user_with

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_throttle_history() -> object:
    keys = [f"throttle_auth_{ip}" for ip in ("127.0.0.1", "198.51.100.7", "203.0.113.9")]
    cache.delete_many(keys)
    yield None
    cache.delete_many(keys)


def test_rotating_x_forwarded_for_does_not_reset_the_token_rate_limit(settings, no_throttle_history) -> None:
    settings.AXES_FAILURE_LIMIT = 100  # only the rate limit answers here
    client = APIClient()
    codes = [
        client.post(
            "/api/v1/auth/token", {"username": "x", "password": "y"}, HTTP_X_FORWARDED_FOR=f"10.0.0.{i}"
        ).status_code
        for i in range(12)
    ]
    assert codes[:10] == [400] * 10
    assert codes[10:] == [429, 429]


def test_behind_one_trusted_proxy_the_client_is_the_address_that_proxy_saw(settings, no_throttle_history) -> None:
    settings.AXES_FAILURE_LIMIT = 100
    settings.TRUSTED_PROXY_COUNT = 1
    client = APIClient()
    # The client writes whatever it likes left of what our proxy appended: still one client.
    codes = [
        client.post(
            "/api/v1/auth/token",
            {"username": "x", "password": "y"},
            HTTP_X_FORWARDED_FOR=f"10.0.0.{i}, 198.51.100.7",
        ).status_code
        for i in range(11)
    ]
    assert codes[10] == 429
    # Another client behind the same proxy has its own budget.
    other = client.post("/api/v1/auth/token", {"username": "x", "password": "y"}, HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert other.status_code == 400


@pytest.mark.parametrize(
    ("remote", "forwarded", "proxies", "expected"),
    [
        ("10.1.1.1", None, 0, "10.1.1.1"),
        ("10.1.1.1", "6.6.6.6", 0, "10.1.1.1"),  # no proxy of ours: the header is the client's own words
        ("10.1.1.1", "6.6.6.6, 198.51.100.7", 1, "198.51.100.7"),
        ("10.1.1.1", "6.6.6.6, 198.51.100.7, 10.0.0.2", 2, "198.51.100.7"),
        ("10.1.1.1", "198.51.100.7", 3, "198.51.100.7"),  # fewer hops than proxies: the leftmost there is
        ("10.1.1.1", " , ", 1, "10.1.1.1"),
    ],
)
def test_client_address(remote: str, forwarded: str | None, proxies: int, expected: str) -> None:
    assert client_address(remote_addr=remote, forwarded_for=forwarded, trusted_proxies=proxies) == expected


def test_admin_login_locks_out_after_repeated_failures(settings) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    staff = user_with(Role.STAFF, username="ops")
    client = Client()
    for _ in range(3):
        response = client.post("/admin/login/?next=/admin/", {"username": "ops", "password": "guess"})
        assert response.status_code in (200, 429)
    # Locked out: even the right password is refused, and no session is made.
    response = client.post("/admin/login/?next=/admin/", {"username": "ops", "password": PASSWORD})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302  # still sent to the login page
    staff.refresh_from_db()
    assert staff.last_login is None


def test_admin_lockout_is_per_username_across_addresses(settings) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    user_with(Role.STAFF, username="ops")
    for i in range(3):
        Client(REMOTE_ADDR=f"192.0.2.{i}").post("/admin/login/", {"username": "ops", "password": "guess"})
    response = Client(REMOTE_ADDR="192.0.2.99").post("/admin/login/", {"username": "ops", "password": PASSWORD})
    assert response.status_code == 429


def test_token_endpoint_lockout_is_a_typed_error_and_issues_no_token(settings, no_throttle_history) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    user_with(Role.OPERATOR, username="bot")
    client = APIClient()
    for _ in range(3):
        client.post("/api/v1/auth/token", {"username": "bot", "password": "guess"})
    response = client.post("/api/v1/auth/token", {"username": "bot", "password": PASSWORD}, format="json")
    assert response.status_code == 429
    assert response.json()["code"] == "login_locked_out"
    assert AuthToken.objects.count() == 0


def test_the_lockout_wait_doubles_with_each_failure_past_the_limit() -> None:
    waits = [lockout_cooloff_seconds(n, limit=5, base_seconds=300, max_seconds=86400) for n in range(0, 12)]
    assert waits[:6] == [300] * 6
    assert waits[6:10] == [600, 1200, 2400, 4800]
    assert lockout_cooloff_seconds(40, limit=5, base_seconds=300, max_seconds=86400) == 86400
    assert lockout_cooloff_seconds(10**9, limit=5, base_seconds=300, max_seconds=86400) == 86400


def test_failures_while_locked_out_push_the_expiry_further(settings) -> None:
    from axes.models import AccessAttempt

    settings.AXES_FAILURE_LIMIT = 2
    settings.AUTH_LOCKOUT_BASE_SECONDS = 60
    user_with(Role.STAFF, username="ops")
    client = Client()
    expiries = []
    for _ in range(5):
        client.post("/admin/login/", {"username": "ops", "password": "guess"})
        attempt = AccessAttempt.objects.get(username="ops")
        expiries.append(attempt.expiration.expires_at - attempt.attempt_time)
    # Locked at the 2nd failure; every failure after that doubles how long the lockout lasts.
    assert [round(e.total_seconds()) for e in expiries] == [60, 60, 120, 240, 480]


def test_api_tokens_are_stored_as_digests_and_expire(settings, no_throttle_history) -> None:
    user = user_with(Role.OPERATOR, username="bot")
    client = APIClient()
    answer = client.post("/api/v1/auth/token", {"username": "bot", "password": PASSWORD})
    assert answer.status_code == 200, answer.json()
    token = answer.json()["token"]
    row = AuthToken.objects.get(user=user)
    stored = [str(getattr(row, f.attname)) for f in AuthToken._meta.concrete_fields]
    assert not any(token in value for value in stored)  # only a digest (and a lookup prefix) is kept
    assert row.expiry is not None
    ttl = settings.REST_KNOX["TOKEN_TTL"]
    assert abs((row.expiry - timezone.now()) - ttl) < timedelta(minutes=1)

    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/me").status_code == 200
    AuthToken.objects.filter(pk=row.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    assert client.get("/api/v1/me").status_code == 401
    assert not AuthToken.objects.filter(pk=row.pk).exists()  # an expired token is purged when presented


def test_staff_cannot_see_or_mint_api_tokens(no_throttle_history) -> None:
    user_with(Role.OPERATOR, username="bot")
    token = APIClient().post("/api/v1/auth/token", {"username": "bot", "password": PASSWORD}).json()["token"]
    row = AuthToken.objects.get()
    admin = User.objects.create_superuser("root", "root@example.invalid", PASSWORD)
    client = Client()
    client.force_login(admin)
    listing = client.get("/admin/knox/authtoken/")
    assert listing.status_code == 200
    page = listing.content.decode()
    assert "bot" in page
    # Only the SHA-512 digest (knox's primary key, in the row links) is there: it does not authenticate.
    assert token not in page
    assert row.token_key not in page
    detail = client.get(f"/admin/knox/authtoken/{row.pk}/change/").content.decode()
    assert token not in detail
    assert row.token_key not in detail
    assert client.get("/admin/knox/authtoken/add/").status_code == 403
    assert client.get("/admin/authtoken/tokenproxy/").status_code == 404  # DRF's plaintext token admin is gone
