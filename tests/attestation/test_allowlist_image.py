"""An allowlist entry made for an executor image: RTMR3 is what the image's digest implies (filled in when left
empty, refused when it differs), an RTMR3 of zeros is refused where the unmeasured-workload rule is on, and the
published allowlist carries the image digest with its expected RTMR3 — which the proof page shows next to the
executor's measured one, and the offline verifier checks pinned registers against."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from attestation import gate, services
from attestation.admin import MeasurementEntryForm
from attestation.domain.evidence import verify_evidence
from attestation.errors import InvalidMeasurement, MeasurementImageMismatch, MeasurementUnmeasuredWorkload
from attestation.models import AllowlistAudit, ExecutorRecord, MeasurementEntry
from devnet.tdx.authority import DevQuoteAuthority
from tests.attestation.test_allowlist_and_nonces import MRTD, ZERO
from tests.attestation.test_gate import MRTD as GATE_MRTD
from tests.attestation.test_gate import FakeExecutor, trust_dev_authority
from tests.factories import user_with
from wire.measurement import expected_rtmr3

pytestmark = pytest.mark.django_db
IMAGE = "sha256:" + "4a" * 32
R1 = "ab" * 48


def add(**kw: Any) -> MeasurementEntry:
    args: dict[str, Any] = {
        "actor_id": user_with().pk,
        "mrtd": MRTD,
        "rtmrs": ("", ZERO, ZERO, ""),
        "build_version": "1.0.0",
        "source_commit": "c0ffee",
    }
    return services.allowlist_add(**{**args, **kw})


def test_rtmr3_is_filled_in_from_the_image_and_published_with_it() -> None:
    entry = add(image_digest=IMAGE.upper().replace("SHA256", "sha256"))
    assert entry.image_digest == IMAGE
    assert entry.rtmr3 == expected_rtmr3(IMAGE)
    assert AllowlistAudit.objects.get(entry=entry).snapshot["image_digest"] == IMAGE
    published = APIClient().get("/api/v1/attestation/allowlist").json()["entries"][0]
    assert published["image_digest"] == IMAGE
    assert published["expected_rtmr3"] == expected_rtmr3(IMAGE) == published["rtmrs"][3]


@pytest.mark.parametrize(
    ("kw", "error"),
    [
        ({"image_digest": IMAGE, "rtmrs": ("", ZERO, ZERO, R1)}, MeasurementImageMismatch),
        ({"image_digest": "sha256:xyz"}, InvalidMeasurement),
        ({"image_digest": "4a" * 32}, InvalidMeasurement),  # no "sha256:"
    ],
)
def test_an_image_that_does_not_fit_is_refused_and_nothing_is_stored(kw: dict[str, Any], error: type) -> None:
    with pytest.raises(error):
        add(**kw)
    assert not MeasurementEntry.objects.exists()
    assert not AllowlistAudit.objects.exists()


def test_an_unmeasured_workload_is_refused_where_the_rule_is_on(settings: Any) -> None:
    settings.ATTESTATION_REFUSE_UNMEASURED_WORKLOAD = True
    with pytest.raises(MeasurementUnmeasuredWorkload):
        add(rtmrs=("", ZERO, ZERO, ZERO))
    assert not MeasurementEntry.objects.exists()
    assert add(rtmrs=("", ZERO, ZERO, R1)).rtmr3 == R1


def test_the_admin_form_says_which_field_is_wrong() -> None:
    base = {
        "service": "mm-executor",
        "mrtd": MRTD,
        "rtmr1": ZERO,
        "rtmr2": ZERO,
        "build_version": "1",
        "source_commit": "c",
    }
    mismatch = MeasurementEntryForm(data={**base, "rtmr3": R1, "image_digest": IMAGE})
    assert not mismatch.is_valid()
    assert "rtmr3" in mismatch.errors
    malformed = MeasurementEntryForm(data={**base, "rtmr3": "", "image_digest": "sha256:nope"})
    assert not malformed.is_valid()
    assert "image_digest" in malformed.errors
    filled = MeasurementEntryForm(data={**base, "rtmr3": "", "image_digest": IMAGE})
    assert filled.is_valid(), filled.errors
    assert filled.cleaned_data["rtmr3"] == expected_rtmr3(IMAGE)


def test_the_proof_page_shows_the_expected_measurement_and_the_offline_verifier_checks_pinned_registers(
    settings: Any, tmp_path: Any
) -> None:
    authority = DevQuoteAuthority.ephemeral()
    trust_dev_authority(settings, tmp_path, authority)  # allowlists GATE_MRTD with RTMR1–3 of zeros, no image
    executor = FakeExecutor(authority)
    gate.attested_identity(executor)
    record = ExecutorRecord.objects.get(url=executor.base_url)
    html = Client().get("/proof/").content.decode()
    assert "no image digest was recorded with this entry" in html
    # An entry made for an image (its RTMR3 the image's): the quote's RTMR3 of zeros is not it.
    entry = MeasurementEntry.objects.get()
    MeasurementEntry.objects.filter(pk=entry.pk).update(image_digest=IMAGE)
    html = Client().get("/proof/").content.decode()
    block = html[html.index(f'data-executor="{record.pk}"') :].split("</article>")[0]
    assert IMAGE in block
    assert expected_rtmr3(IMAGE) in block
    assert "the quote shows another RTMR3" in block
    # The offline verifier holds the evidence against every register an entry pins, not only the MRTD.
    evidence = Client().get(f"/proof/executors/{record.pk}/evidence.json").content
    published = APIClient().get("/api/v1/attestation/allowlist").json()
    assert verify_evidence(evidence, allowlist=published, root_ca_der=authority.root_ca_der).ok
    bent = json.loads(json.dumps(published))
    bent["entries"][0]["rtmrs"][1] = R1  # the same MRTD, another kernel
    result = verify_evidence(evidence, allowlist=bent, root_ca_der=authority.root_ca_der)
    assert [c.name for c in result.checks if not c.ok] == ["allowlisted"]
    assert bent["entries"][0]["mrtd"] == GATE_MRTD.hex()
