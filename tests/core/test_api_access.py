"""Every API v1 endpoint refuses anonymous and wrong-role callers (the matrix covers endpoints added later)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from mrmarket.api.permissions import PUBLIC
from mrmarket.roles import Role
from tests.factories import user_with

pytestmark = pytest.mark.django_db
METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Endpoint:
    path: str
    view: type
    methods: tuple[str, ...]

    @property
    def allowed(self) -> frozenset[str] | None:
        return getattr(self.view, "allowed_roles", None)


def _walk(patterns: list, prefix: str = "") -> list[Endpoint]:
    found = []
    for p in patterns:
        if isinstance(p, URLResolver):
            found += _walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            view = getattr(p.callback, "view_class", None) or getattr(p.callback, "cls", None)
            if view is None:
                continue
            path = "/" + prefix + str(p.pattern)
            path = re.sub(r"<int:\w+>|<pk>", "1", path)
            path = re.sub(r"<(?:str:)?\w+>", "x", path)
            methods = tuple(m for m in METHODS if hasattr(view, m))
            found.append(Endpoint(path=path, view=view, methods=methods))
    return found


def api_endpoints() -> list[Endpoint]:
    root = next(p for p in get_resolver().url_patterns if str(getattr(p, "pattern", "")) == "api/v1/")
    return _walk([root])


ENDPOINTS = api_endpoints()


def test_the_matrix_sees_the_api() -> None:
    paths = {e.path for e in ENDPOINTS}
    assert {"/api/v1/me", "/api/v1/system/status", "/api/v1/auth/token"} <= paths


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.path)
def test_every_view_declares_who_may_call_it(endpoint: Endpoint) -> None:
    assert endpoint.allowed is not None, f"{endpoint.view.__name__} must declare allowed_roles"


PROTECTED = [e for e in ENDPOINTS if e.allowed is not None and e.allowed != PUBLIC]


@pytest.mark.parametrize("endpoint", PROTECTED, ids=lambda e: e.path)
def test_anonymous_callers_are_refused(endpoint: Endpoint) -> None:
    client = APIClient()
    for method in endpoint.methods:
        response = getattr(client, method)(endpoint.path)
        assert response.status_code == 401, (method, endpoint.path, response.status_code)
        assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize("endpoint", PROTECTED, ids=lambda e: e.path)
def test_wrong_roles_are_refused_and_right_roles_pass(endpoint: Endpoint) -> None:
    for role in Role:
        user = user_with(role)
        client = APIClient()
        client.force_authenticate(user)
        for method in endpoint.methods:
            response = getattr(client, method)(endpoint.path)
            if endpoint.allowed is not None and role in endpoint.allowed:
                assert response.status_code not in (401, 403), (role, method, endpoint.path)
            else:
                assert response.status_code == 403, (role, method, endpoint.path, response.status_code)
                assert response.json()["code"] == "permission_denied"


@pytest.mark.parametrize("endpoint", PROTECTED, ids=lambda e: e.path)
def test_a_user_without_any_role_is_refused(endpoint: Endpoint) -> None:
    client = APIClient()
    client.force_authenticate(user_with())
    for method in endpoint.methods:
        assert getattr(client, method)(endpoint.path).status_code == 403


def test_token_authentication_works_for_machine_clients() -> None:
    user_with(Role.OPERATOR, username="bot")
    client = APIClient()
    token = client.post("/api/v1/auth/token", {"username": "bot", "password": "correct horse battery staple"})
    assert token.status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.json()['token']}")
    me = client.get("/api/v1/me")
    assert me.json() == {"username": "bot", "roles": ["operators"]}


def test_inactive_users_have_no_role() -> None:
    user = user_with(Role.STAFF)
    user.is_active = False
    user.save()
    client = APIClient()
    client.force_authenticate(user)
    assert client.get("/api/v1/system/status").status_code == 403
