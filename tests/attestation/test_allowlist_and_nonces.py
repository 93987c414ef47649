"""Single-use challenge nonces and the audited measurement allowlist."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from attestation import selectors, services
from attestation.domain import allowlist
from attestation.domain.allowlist import Measurements, Rule, first_match
from attestation.errors import (
    AllowlistConflict,
    InvalidMeasurement,
    MeasurementUnpinned,
    NonceExpired,
    NonceReused,
    NonceUnknown,
)
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
        rtmrs=(R0, ZERO, ZERO, ZERO),
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
            actor_id=admin_user.pk,
            mrtd=MRTD,
            rtmrs=(R0, ZERO, ZERO, ZERO),
            build_version="0.1.0",
            source_commit="abc123",
        )
    services.allowlist_remove(actor_id=admin_user.pk, entry_id=entry.pk)
    assert selectors.measurement_allowed(measured=measured) is None
    audit = list(AllowlistAudit.objects.values_list("action", "actor_id"))
    assert audit == [("added", admin_user.pk), ("removed", admin_user.pk)]
    # Once removed, the same measurement may be approved again (a new entry, history kept).
    again = services.allowlist_add(
        actor_id=admin_user.pk, mrtd=MRTD, rtmrs=("", ZERO, ZERO, ZERO), build_version="0.1.1", source_commit="def456"
    )
    assert MeasurementEntry.objects.count() == 2
    assert selectors.measurement_allowed(measured=measured) == again


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mrtd": "abc"}, "mrtd must be 48 bytes of hex"),
        ({"mrtd": MRTD, "rtmrs": ("zz" * 48, ZERO, ZERO, ZERO)}, "rtmr0 must be 48 bytes of hex"),
        ({"mrtd": MRTD, "build_version": ""}, "build version and source commit"),
    ],
)
def test_bad_entries_are_refused_and_nothing_is_stored(kwargs: dict, message: str) -> None:
    params = {"build_version": "0.1.0", "source_commit": "abc", "rtmrs": ("", ZERO, ZERO, ZERO), **kwargs}
    with pytest.raises(InvalidMeasurement, match=message):
        services.allowlist_add(actor_id=user_with(Role.STAFF).pk, **params)
    assert not MeasurementEntry.objects.exists()
    assert not AllowlistAudit.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("rtmrs", "registers"),
    [
        (("", "", "", ""), [1, 2, 3]),  # the MRTD alone: any workload on this firmware would pass
        ((R0, "", "", ""), [1, 2, 3]),
        (("", ZERO, ZERO, ""), [3]),  # the workload register left open
        (("", "", ZERO, ZERO), [1]),
    ],
)
def test_an_entry_that_does_not_pin_the_image_registers_is_refused_and_nothing_is_stored(
    rtmrs: tuple[str, str, str, str], registers: list[int]
) -> None:
    with pytest.raises(MeasurementUnpinned) as caught:
        services.allowlist_add(
            actor_id=user_with(Role.STAFF).pk, mrtd=MRTD, rtmrs=rtmrs, build_version="0.1.0", source_commit="abc"
        )
    assert caught.value.code == "measurement_unpinned"
    assert caught.value.extra == {"registers": registers}
    assert not MeasurementEntry.objects.exists()
    assert not AllowlistAudit.objects.exists()


@pytest.mark.django_db
def test_a_stricter_deployment_may_require_rtmr0_too(settings) -> None:
    settings.ATTESTATION_REQUIRED_RTMRS = [0, 1, 2, 3]
    with pytest.raises(MeasurementUnpinned, match="rtmr0"):
        services.allowlist_add(
            actor_id=user_with(Role.STAFF).pk,
            mrtd=MRTD,
            rtmrs=("", ZERO, ZERO, ZERO),
            build_version="1",
            source_commit="a",
        )
    assert not MeasurementEntry.objects.exists()


hexes = st.binary(min_size=48, max_size=48).map(bytes.hex)


@given(hexes, st.tuples(hexes, hexes, hexes, hexes), st.booleans())
def test_an_empty_rtmr0_in_a_rule_matches_anything_and_a_named_one_only_itself(mrtd, rtmrs, name_rtmr0) -> None:
    named = [name_rtmr0, True, True, True]  # RTMR1-3 are required; only RTMR0 may be left open
    rule = Rule(1, "mm-executor", mrtd, tuple(r if n else "" for r, n in zip(rtmrs, named, strict=True)))  # type: ignore[arg-type]
    assert first_match([rule], "mm-executor", Measurements(mrtd, rtmrs)) == rule
    if any(named):
        other = tuple("f" * 96 if n else r for r, n in zip(rtmrs, named, strict=True))
        assert first_match([rule], "mm-executor", Measurements(mrtd, other)) is None  # type: ignore[arg-type]


@given(hexes, st.tuples(hexes, hexes, hexes, hexes), st.sampled_from([1, 2, 3]))
def test_a_rule_that_leaves_a_required_rtmr_open_matches_nothing(mrtd, rtmrs, open_register) -> None:
    # An entry stored before RTMRs were required: its MRTD alone would admit any workload on that firmware.
    loose = tuple("" if i == open_register else r for i, r in enumerate(rtmrs))
    rule = Rule(1, "mm-executor", mrtd, loose)  # type: ignore[arg-type]
    assert first_match([rule], "mm-executor", Measurements(mrtd, rtmrs)) is None


R1, R2, R3 = "1" * 96, "2" * 96, "3" * 96


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(" 0x" + MRTD.upper() + " ", MRTD), (MRTD, MRTD), ("0X" + R0, R0)],
)
def test_a_measurement_is_normalized_to_96_lowercase_hex_characters(raw: str, expected: str) -> None:
    assert allowlist.normalize(raw, "mrtd") == expected


@pytest.mark.parametrize("raw", ["", "  ", MRTD[:-1], MRTD + "0", "g" * 96, "0x"])
def test_a_malformed_measurement_is_refused_naming_its_field(raw: str) -> None:
    with pytest.raises(allowlist.MeasurementFormatError) as refused:
        allowlist.normalize(raw, "rtmr2")
    assert str(refused.value) == "rtmr2 must be 48 bytes of hex (96 characters)"


def test_an_optional_register_may_be_empty_but_not_malformed() -> None:
    assert allowlist.normalize(" 0x ", "rtmr0", optional=True) == ""
    assert allowlist.normalize(R0.upper(), "rtmr0", optional=True) == R0
    with pytest.raises(allowlist.MeasurementFormatError):
        allowlist.normalize("abc", "rtmr0", optional=True)


def test_the_unpinned_registers_are_the_required_ones_left_empty_in_order() -> None:
    assert allowlist.unpinned(("", R1, R2, R3)) == []  # RTMR0 is not required by default
    assert allowlist.unpinned(("", "", R2, "")) == [1, 3]
    assert allowlist.unpinned(("", R1, R2, R3), required={3, 0}) == [0]
    allowlist.require_pinned((R0, R1, R2, R3), required={0, 1, 2, 3})
    with pytest.raises(allowlist.MeasurementUnpinnedError) as stricter:
        allowlist.require_pinned(("", R1, R2, R3), required={0, 1, 2, 3})  # the deployment's set, not the default
    assert stricter.value.registers == [0]
    with pytest.raises(allowlist.MeasurementUnpinnedError) as refused:
        allowlist.require_pinned(("", "", R2, ""))
    assert refused.value.registers == [1, 3]
    assert str(refused.value) == (
        "an entry must pin rtmr1, rtmr3: the MRTD measures only the firmware, not the executor's image"
    )


def test_a_rule_matches_only_its_service_and_firmware_and_names_the_registers_that_differ() -> None:
    rule = Rule(4, "mm-executor", MRTD, ("", R1, R2, R3))
    measured = Measurements(MRTD, (R0, R1, R2, R3))
    assert rule.matches("mm-executor", measured)
    assert not rule.matches("other-service", measured)
    assert not rule.matches("mm-executor", Measurements(ZERO, (R0, R1, R2, R3)))
    assert rule.mismatched(measured) == []
    assert rule.mismatched(Measurements(MRTD, (ZERO, ZERO, R2, ZERO))) == [1, 3]  # RTMR0 is open in the rule
    # A deployment that requires RTMR0 too: the same rule (RTMR0 open) matches nothing there.
    assert not rule.matches("mm-executor", measured, required={0, 1, 2, 3})
    assert first_match([rule], "mm-executor", measured, required={0, 1, 2, 3}) is None


def test_measurements_with_the_wrong_number_of_registers_are_refused_not_compared() -> None:
    rule = Rule(4, "mm-executor", MRTD, ("", R1, R2, R3))
    short = Measurements(MRTD, (R0, R1, R2))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shorter than argument 1"):
        rule.mismatched(short)
    with pytest.raises(ValueError, match="shorter than argument 1"):
        rule.matches("mm-executor", short)


def test_the_first_matching_rule_wins() -> None:
    loose = Rule(1, "mm-executor", MRTD, ("", R1, R2, R3))
    exact = Rule(2, "mm-executor", MRTD, (R0, R1, R2, R3))
    other = Rule(3, "mm-executor", MRTD, (R0, R1, R2, ZERO))
    measured = Measurements(MRTD, (R0, R1, R2, R3))
    assert first_match([other, exact, loose], "mm-executor", measured) == exact
    assert first_match([other, loose, exact], "mm-executor", measured) == loose
    assert first_match([other], "mm-executor", measured) is None


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
        "rtmr1": ZERO,
        "rtmr2": ZERO,
        "rtmr3": ZERO,
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


@pytest.mark.django_db
def test_the_admin_refuses_an_entry_with_the_mrtd_alone(client) -> None:
    staff = user_with(Role.STAFF)
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    form = {
        "service": "mm-executor",
        "mrtd": MRTD,
        **{f"rtmr{i}": "" for i in range(4)},
        "build_version": "0.1.0",
        "source_commit": "abc",
        "note": "",
        "audit-TOTAL_FORMS": "0",
        "audit-INITIAL_FORMS": "0",
    }
    response = client.post("/admin/attestation/measuremententry/add/", form)
    assert response.status_code == 200  # the form again, with the error
    assert b"an entry must pin rtmr1, rtmr2, rtmr3" in response.content
    assert not MeasurementEntry.objects.exists()
    assert not AllowlistAudit.objects.exists()


@pytest.mark.parametrize(("value", "message"), [("0", "pins RTMR1-3"), ("1,2", "pins RTMR1-3"), ("1,2,3,4", "0 to 3")])
def test_the_prod_profile_refuses_a_weaker_register_rule(value: str, message: str) -> None:
    from tests.core.test_config import prod_env, run_manage

    result = run_manage("check", env=prod_env(ATTESTATION_REQUIRED_RTMRS=value))
    assert result.returncode == 2
    assert message in result.stderr
