"""Single-use challenge nonces and the audited measurement allowlist."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from attestation import selectors, services
from attestation.domain.allowlist import Measurements, Rule, first_match
from attestation.errors import AllowlistConflict, InvalidMeasurement, NonceExpired, NonceReused, NonceUnknown
from attestation.models import AllowlistAudit, AttestationNonce, MeasurementEntry
from mrmarket.roles import Role
from tests.factories import user_with

MRTD = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"
R0 = "44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0"
ZERO = "0" * 96


@pytest.mark.django_db
def test_a_nonce_is_accepted_once_and_each_refusal_has_its_reason() -> None:
    nonce = services.nonce_issue(purpose="executor")
    assert len(nonce.value) == 64
    with pytest.raises(NonceUnknown):
        services.nonce_consume(value=nonce.value, purpose="control-plane")
    services.nonce_consume(value=nonce.value, purpose="executor")
    with pytest.raises(NonceReused):
        services.nonce_consume(value=nonce.value, purpose="executor")
    stale = services.nonce_issue(purpose="executor")
    AttestationNonce.objects.filter(pk=stale.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(NonceExpired, match="expired"):
        services.nonce_consume(value=stale.value, purpose="executor")
    with pytest.raises(NonceUnknown):
        services.nonce_consume(value="ab" * 32, purpose="executor")
    codes = {NonceUnknown.code, NonceReused.code, NonceExpired.code}
    assert len(codes) == 3


@pytest.mark.django_db
def test_allowlist_changes_are_audited_and_removal_takes_effect_at_once() -> None:
    admin_user = user_with(Role.STAFF)
    entry = services.allowlist_add(
        actor_id=admin_user.pk,
        mrtd="0x" + MRTD.upper(),
        rtmrs=(R0, "", "", ""),
        build_version="0.1.0",
        source_commit="abc123",
        note="first build",
    )
    assert entry.mrtd == MRTD
    measured = Measurements(MRTD, (R0, ZERO, ZERO, ZERO))
    assert selectors.measurement_allowed(measured=measured) == entry
    assert selectors.measurement_allowed(measured=Measurements(MRTD, (ZERO, ZERO, ZERO, ZERO))) is None
    assert selectors.measurement_allowed(measured=measured, service="other") is None
    with pytest.raises(AllowlistConflict):
        services.allowlist_add(
            actor_id=admin_user.pk, mrtd=MRTD, rtmrs=(R0, "", "", ""), build_version="0.1.0", source_commit="abc123"
        )
    services.allowlist_remove(actor_id=admin_user.pk, entry_id=entry.pk)
    assert selectors.measurement_allowed(measured=measured) is None
    audit = list(AllowlistAudit.objects.values_list("action", "actor_id"))
    assert audit == [("added", admin_user.pk), ("removed", admin_user.pk)]
    # Once removed, the same measurement may be approved again (a new entry, history kept).
    again = services.allowlist_add(actor_id=admin_user.pk, mrtd=MRTD, build_version="0.1.1", source_commit="def456")
    assert MeasurementEntry.objects.count() == 2
    assert selectors.measurement_allowed(measured=measured) == again


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mrtd": "abc"}, "mrtd must be 48 bytes of hex"),
        ({"mrtd": MRTD, "rtmrs": ("zz" * 48, "", "", "")}, "rtmr0 must be 48 bytes of hex"),
        ({"mrtd": MRTD, "build_version": ""}, "build version and source commit"),
    ],
)
def test_bad_entries_are_refused_and_nothing_is_stored(kwargs: dict, message: str) -> None:
    params = {"build_version": "0.1.0", "source_commit": "abc", **kwargs}
    with pytest.raises(InvalidMeasurement, match=message):
        services.allowlist_add(actor_id=user_with(Role.STAFF).pk, **params)
    assert not MeasurementEntry.objects.exists()
    assert not AllowlistAudit.objects.exists()


hexes = st.binary(min_size=48, max_size=48).map(bytes.hex)


@given(hexes, st.tuples(hexes, hexes, hexes, hexes), st.lists(st.booleans(), min_size=4, max_size=4))
def test_an_empty_rtmr_in_a_rule_matches_anything_and_a_named_one_only_itself(mrtd, rtmrs, named) -> None:
    rule = Rule(1, "mm-executor", mrtd, tuple(r if n else "" for r, n in zip(rtmrs, named, strict=True)))  # type: ignore[arg-type]
    assert first_match([rule], "mm-executor", Measurements(mrtd, rtmrs)) == rule
    if any(named):
        other = tuple("f" * 96 if n else r for r, n in zip(rtmrs, named, strict=True))
        assert first_match([rule], "mm-executor", Measurements(mrtd, other)) is None  # type: ignore[arg-type]


@pytest.mark.django_db
def test_the_admin_adds_and_removes_through_the_audited_services(client) -> None:
    staff = user_with(Role.STAFF)
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    form = {
        "service": "mm-executor",
        "mrtd": MRTD,
        "rtmr0": "",
        "rtmr1": "",
        "rtmr2": "",
        "rtmr3": "",
        "build_version": "0.1.0",
        "source_commit": "abc",
        "note": "via admin",
        "audit-TOTAL_FORMS": "0",
        "audit-INITIAL_FORMS": "0",
    }
    response = client.post("/admin/attestation/measuremententry/add/", form)
    assert response.status_code == 302, response.content[:500]
    entry = MeasurementEntry.objects.get()
    assert list(entry.audit.values_list("action", flat=True)) == ["added"]
    client.post("/admin/attestation/measuremententry/", {"action": "remove", "_selected_action": [entry.pk]})
    entry.refresh_from_db()
    assert entry.removed_at is not None
    assert list(entry.audit.values_list("action", flat=True)) == ["added", "removed"]
