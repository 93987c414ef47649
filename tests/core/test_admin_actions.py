"""Admin actions change things (revoke a key, fund or stop an order, drop an allowlist entry): each needs a
permission beyond view, and a staff member who may only look is refused with nothing changed."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.db import models
from django.test import Client

from attestation import services as attestation_services
from attestation.models import MeasurementEntry
from execution import accounts, tasks
from execution.domain import mm_order as mm
from execution.models import Alert, ExchangeAccount, MMOrder
from mrmarket.exchanges.credentials import ExchangeCredentials
from mrmarket.roles import Role
from tests.factories import user_with

pytestmark = pytest.mark.django_db
MRTD = "ab" * 48


def registered_actions() -> list[tuple[str, str, Any]]:
    found = []
    for model, model_admin in admin.site._registry.items():
        for func, name, _ in model_admin._get_base_actions():  # type: ignore[attr-defined]
            found.append((model._meta.label, name, func))
    return found


def test_every_admin_action_asks_for_more_than_view() -> None:
    actions = registered_actions()
    assert {("execution.ExchangeAccount", "revoke"), ("execution.MMOrder", "fund")} <= {(m, n) for m, n, _ in actions}
    for label, name, func in actions:
        allowed = set(getattr(func, "allowed_permissions", ()))
        assert allowed, f"{label} action {name!r} has no allowed_permissions"
        assert allowed & {"change", "delete", "add"}, f"{label} action {name!r} asks only for {allowed}"


def test_our_own_actions_ask_for_the_change_permission() -> None:
    ours = ("execution", "attestation", "campaigns", "payouts")
    for label, name, func in registered_actions():
        if label.split(".")[0] in ours and name != "delete_selected":
            assert "change" in func.allowed_permissions, (label, name)


def viewer_of(*model_classes: type[models.Model]) -> User:
    user = user_with(Role.STAFF)
    for model in model_classes:
        user.user_permissions.add(Permission.objects.get(codename=f"view_{model._meta.model_name}"))
    return user


def changer_of(model: type[models.Model]) -> User:
    user = viewer_of(model)
    user.user_permissions.add(Permission.objects.get(codename=f"change_{model._meta.model_name}"))
    return user


def post_action(user: User, model: type[models.Model], action: str, pk: int) -> int:
    client = Client()
    client.force_login(user)
    url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
    assert client.get(url).status_code == 200  # the viewer may look
    response = client.post(url, {"action": action, "_selected_action": [pk]})
    return response.status_code


@pytest.fixture
def account() -> ExchangeAccount:
    return accounts.exchange_account_store(
        owner_id=user_with(Role.OPERATOR).pk,
        exchange="binance",
        label="main",
        role=ExchangeAccount.Role.TRADING,
        credentials=ExchangeCredentials(api_key="key-0001", secret="s3cret-admin-test"),
    )


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []
    monkeypatch.setattr(tasks.fund_order, "delay", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(tasks.wind_down, "delay", lambda *a, **k: calls.append(a))
    return calls


def test_a_viewer_cannot_revoke_an_exchange_account(account: ExchangeAccount) -> None:
    post_action(viewer_of(ExchangeAccount), ExchangeAccount, "revoke", account.pk)
    account.refresh_from_db()
    assert account.status == ExchangeAccount.Status.ACTIVE
    assert account.revoked_at is None
    assert bytes(account.credentials_ciphertext)
    # The same action by someone with the change permission works: what refused the viewer is the permission.
    post_action(changer_of(ExchangeAccount), ExchangeAccount, "revoke", account.pk)
    account.refresh_from_db()
    assert account.status == ExchangeAccount.Status.REVOKED


def test_a_viewer_cannot_fund_or_stop_an_order(account: ExchangeAccount, queued: list[Any]) -> None:
    order = MMOrder.objects.create(
        owner_id=account.owner_id, exchange_account=account, symbol="MMT/USDT", funding_asset="USDT", funding_amount=10
    )
    viewer = viewer_of(MMOrder)
    for action in ("fund", "stop"):
        post_action(viewer, MMOrder, action, order.pk)
    order.refresh_from_db()
    assert order.state == mm.State.CREATED.value
    assert not order.transitions.exists()
    assert queued == []
    post_action(changer_of(MMOrder), MMOrder, "fund", order.pk)  # the control: the action is real
    assert queued == [(order.pk,)]


def test_a_viewer_cannot_remove_an_allowlist_entry() -> None:
    entry = attestation_services.allowlist_add(
        actor_id=user_with(Role.STAFF).pk,
        mrtd=MRTD,
        rtmrs=("", "11" * 48, "22" * 48, "33" * 48),
        build_version="0.1.0",
        source_commit="abc123",
    )
    post_action(viewer_of(MeasurementEntry), MeasurementEntry, "remove", entry.pk)
    entry.refresh_from_db()
    assert entry.removed_at is None
    post_action(changer_of(MeasurementEntry), MeasurementEntry, "remove", entry.pk)
    entry.refresh_from_db()
    assert entry.removed_at is not None


def test_a_staff_member_sees_amounts_in_token_units(account: ExchangeAccount, settings) -> None:
    settings.CUSTODY_ASSETS = {"USDT": {"token": "0x" + "ab" * 20, "decimals": 6}}
    order = MMOrder.objects.create(
        owner_id=account.owner_id,
        exchange_account=account,
        symbol="MMT/USDT",
        funding_asset="USDT",
        funding_amount=2_000_500_000,
    )
    client = Client()
    client.force_login(viewer_of(MMOrder))
    assert "2,000.5 USDT" in client.get("/admin/execution/mmorder/").content.decode()
    assert "2,000.5 USDT" in client.get(f"/admin/execution/mmorder/{order.pk}/change/").content.decode()


def test_a_viewer_cannot_resolve_an_alert_and_a_changer_can() -> None:
    alert = Alert.objects.create(kind="test", message="something", dedup_key="test:1")
    post_action(viewer_of(Alert), Alert, "resolve", alert.pk)
    alert.refresh_from_db()
    assert alert.resolved_at is None
    # The same request from someone with the change permission works: the refusal above is the permission.
    assert post_action(changer_of(Alert), Alert, "resolve", alert.pk) == 302
    alert.refresh_from_db()
    assert alert.resolved_at is not None
