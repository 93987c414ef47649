"""What each admin page lets even a superuser do: the ReadOnlyAdminMixin refuses everything an admin does not
name in `allowed`, and what it names stays the user's own permission."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import RequestFactory
from knox.models import AuthToken

from attestation.models import ExecutorRecord, MeasurementEntry
from campaigns.models import Campaign
from execution.models import Alert, ExchangeAccount, LedgerTransaction, MMOrder
from mrmarket.admin import ReadOnlyAdminMixin
from mrmarket.roles import Role
from tests.factories import user_with

pytestmark = pytest.mark.django_db

# model: (add, change, delete) for the page, then the same for each of its inlines, in order.
EXPECTED: dict[type[Any], tuple[tuple[bool, bool, bool], list[tuple[bool, bool, bool]]]] = {
    ExchangeAccount: ((False, True, True), []),
    LedgerTransaction: ((False, False, False), [(False, True, True)]),
    MMOrder: ((False, True, False), [(False, True, True), (False, True, True)]),
    Alert: ((False, True, False), [(False, False, False)]),
    MeasurementEntry: ((True, True, False), [(False, True, True)]),
    ExecutorRecord: ((False, True, False), [(False, True, True)]),
    # The events inline has no policy of its own: the campaign page is read-only, so Django shows it read-only.
    Campaign: ((False, False, False), [(True, True, True)]),
    AuthToken: ((False, False, True), []),
}


def _permissions(model_admin: Any, request: Any) -> tuple[bool, bool, bool]:
    is_inline = isinstance(model_admin, admin.options.InlineModelAdmin)
    add = model_admin.has_add_permission(request, None) if is_inline else model_admin.has_add_permission(request)
    return add, model_admin.has_change_permission(request), model_admin.has_delete_permission(request)


@pytest.mark.parametrize("model", list(EXPECTED), ids=lambda m: m.__name__)
def test_each_admin_keeps_exactly_its_permissions(model: type[Any]) -> None:
    request = RequestFactory().get("/admin/")
    request.user = get_user_model().objects.create_superuser("root", password="x")
    model_admin = admin.site._registry[model]
    assert isinstance(model_admin, ReadOnlyAdminMixin)
    page, inlines = EXPECTED[model]
    assert _permissions(model_admin, request) == page
    got = [_permissions(inline, request) for inline in model_admin.get_inline_instances(request)]
    assert got == inlines


def test_what_an_admin_allows_is_still_the_users_own_permission() -> None:
    request = RequestFactory().get("/admin/")
    request.user = user_with(Role.AUDITOR)
    model_admin = admin.site._registry[MMOrder]
    assert model_admin.has_change_permission(request) is request.user.has_perm("execution.change_mmorder")
