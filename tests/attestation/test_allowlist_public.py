"""The measurement allowlist as a public document (`GET /api/v1/attestation/allowlist`): every build ever approved,
active or removed, with its MRTD, RTMRs, build and commit and when it was added and removed, and the history of
changes in order; who made a change is not published."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from attestation import services
from mrmarket.roles import Role
from tests.attestation.test_allowlist_and_nonces import MRTD, R0, ZERO
from tests.factories import user_with

pytestmark = pytest.mark.django_db
R1 = "ab" * 48


def test_the_allowlist_and_its_history_are_public_without_who_changed_it() -> None:
    staff = user_with(Role.STAFF, username="allowlist-keeper", email="keeper@example.org")
    first = services.allowlist_add(
        actor_id=staff.pk, mrtd=MRTD, rtmrs=(R0, ZERO, ZERO, ZERO), build_version="0.1.0", source_commit="abc123"
    )
    second = services.allowlist_add(
        actor_id=staff.pk, mrtd=MRTD, rtmrs=(R1, ZERO, ZERO, ZERO), build_version="0.2.0", source_commit="def456"
    )
    services.allowlist_remove(actor_id=staff.pk, entry_id=first.pk)

    response = APIClient().get("/api/v1/attestation/allowlist")  # no credentials: public

    assert response.status_code == 200
    body = response.json()
    assert body["schema"] == "mrmarket.measurement-allowlist/v1"
    assert [(e["id"], e["build_version"], e["source_commit"], e["active"]) for e in body["entries"]] == [
        (first.pk, "0.1.0", "abc123", False),
        (second.pk, "0.2.0", "def456", True),
    ]
    assert body["entries"][0]["mrtd"] == MRTD
    assert body["entries"][0]["rtmrs"] == [R0, ZERO, ZERO, ZERO]
    assert body["entries"][0]["removed_at"] is not None
    assert body["entries"][1]["removed_at"] is None
    assert [(h["entry_id"], h["action"]) for h in body["history"]] == [
        (first.pk, "added"),
        (second.pk, "added"),
        (first.pk, "removed"),
    ]
    text = response.content.decode()
    assert "allowlist-keeper" not in text
    assert "keeper@example.org" not in text
    assert str(staff.pk) not in [str(h.get("actor")) for h in body["history"]]


def test_an_empty_allowlist_is_an_empty_document() -> None:
    body = APIClient().get("/api/v1/attestation/allowlist").json()
    assert body == {"schema": "mrmarket.measurement-allowlist/v1", "entries": [], "history": []}
