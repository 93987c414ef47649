"""One error shape for the whole API: {code, message, extra, request_id}."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.factories import user_with

pytestmark = pytest.mark.django_db


def test_wrong_password_is_a_typed_error_and_issues_no_token() -> None:
    from knox.models import AuthToken

    user_with(username="alice")
    response = APIClient().post(
        "/api/v1/auth/token", {"username": "alice", "password": "wrong"}, HTTP_X_REQUEST_ID="req-1"
    )
    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid_credentials",
        "message": "Unknown username or wrong password.",
        "extra": {},
        "request_id": "req-1",
    }
    assert AuthToken.objects.count() == 0


def test_validation_errors_name_the_fields() -> None:
    response = APIClient().post("/api/v1/auth/token", {"username": "alice"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert "password" in body["extra"]["fields"]


def test_token_endpoint_is_throttled(settings) -> None:
    from django.core.cache import cache

    # The throttle counts per client address; start from zero and leave nothing behind (no flush: shared Redis).
    cache.delete("throttle_auth_127.0.0.1")
    settings.AXES_FAILURE_LIMIT = 100  # the lockout has its own tests; here only the rate limit answers
    client = APIClient()
    codes = [client.post("/api/v1/auth/token", {"username": "x", "password": "y"}).status_code for _ in range(12)]
    assert codes[:10] == [400] * 10
    assert codes[10] == 429
    cache.delete("throttle_auth_127.0.0.1")


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"[" * 100_000, "application/json", "nested deeper than 128 levels"),
        (b'{"a": "\xff"}', "application/json", "not text in the request's encoding"),
        (b"{}", "application/json; charset=base64", 'Unsupported charset "base64"'),
    ],
)
def test_a_body_the_json_parser_must_not_recurse_into_is_a_parse_error(
    body: bytes, content_type: str, message: str
) -> None:
    """Found by tests/fuzz: `[` × 100 000 (under the upload limit) crashed the process with a segmentation fault:
    py_ecc lifts the interpreter's recursion limit to 100 000, past what the C stack holds in json.load."""
    response = APIClient().post("/api/v1/auth/token", body, content_type=content_type)
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert message in response.json()["message"]


@pytest.mark.parametrize("path", ["/api/v1/execution/mm-orders/-1", "/api/v1/campaigns/x/y", "/api/v1/nothing-here"])
def test_a_path_no_pattern_matches_is_a_json_404_under_the_api(path: str) -> None:
    """Found by tests/fuzz: a path parameter its converter refuses (`<int:pk>` and -1) reached Django's resolver 404,
    an HTML page, where the schema documents the error shape."""
    response = APIClient().get(path, HTTP_X_REQUEST_ID="req-404")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    body = {"code": "not_found", "message": "No such resource.", "extra": {}, "request_id": "req-404"}
    assert response.json() == body


def test_outside_the_api_a_404_is_still_a_page() -> None:
    response = APIClient().get("/no-such-page")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
