"""The executor registry around verification records: revocation when a build leaves the allowlist (jobs told
to wipe and stop), the public executors list, the proof of execution, and report ingestion that refuses keys
no accepted attestation bound."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from attestation import services
from attestation.models import AttestationRecord, ExecutorRecord, MeasurementEntry
from execution.domain import mm_order as mm
from execution.models import ExchangeAccount, ExecutionReport, MMOrder
from tests.attestation.test_gate import PINNED_RTMRS
from tests.factories import user_with

pytestmark = pytest.mark.django_db
MRTD = "ab" * 48


def verified_executor(url: str, *, entry: MeasurementEntry, signing_key: str, hardware: bool = False) -> ExecutorRecord:
    executor = ExecutorRecord.objects.create(
        url=url, state=ExecutorRecord.State.VERIFIED, signing_key=signing_key, mrtd=MRTD, hardware_attested=hardware
    )
    AttestationRecord.objects.create(
        executor=executor,
        nonce="00" * 32,
        signing_key=signing_key,
        sealing_key="11" * 32,
        quote_sha256="22" * 32,
        ok=True,
        tcb_status="UpToDate",
        mrtd=MRTD,
        rtmrs=["", "", "", ""],
        hardware_attested=hardware,
        allowlist_entry=entry,
    )
    return executor


@pytest.fixture
def entry() -> MeasurementEntry:
    admin = user_with()
    return services.allowlist_add(
        actor_id=admin.pk,
        service="mm-executor",
        mrtd=MRTD,
        rtmrs=PINNED_RTMRS,
        build_version="1.0.0",
        source_commit="abc123",
        note="",
    )


def order_on(url: str, *, job_id: str = "mmo1-x") -> MMOrder:
    owner = user_with()
    account = ExchangeAccount.objects.create(
        owner=owner, exchange="binance", label="t", role="trading", api_key_hint="k…"
    )
    return MMOrder.objects.create(
        owner=owner,
        exchange_account=account,
        symbol="MMT/USDT",
        funding_asset="USDT",
        funding_amount=10**9,
        state=mm.State.RUNNING,
        job_id=job_id,
        executor_url=url,
        job_spec={"job_id": job_id},
    )


def test_removing_a_build_revokes_its_executors_and_stops_their_jobs(
    entry: MeasurementEntry, django_capture_on_commit_callbacks: Any
) -> None:
    running = verified_executor("http://exec-a", entry=entry, signing_key="aa" * 32)
    other_entry = services.allowlist_add(
        actor_id=user_with().pk,
        service="mm-executor",
        mrtd="cd" * 48,
        rtmrs=PINNED_RTMRS,
        build_version="2",
        source_commit="d",
        note="",
    )
    bystander = verified_executor("http://exec-b", entry=other_entry, signing_key="bb" * 32)
    order = order_on("http://exec-a")
    order_on("http://exec-b", job_id="mmo2-y")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.allowlist_remove(actor_id=user_with().pk, entry_id=entry.pk)
    running.refresh_from_db()
    bystander.refresh_from_db()
    assert running.state == "revoked"
    assert bystander.state == "verified"
    assert len(callbacks) == 1  # exactly the job on the revoked executor is told to wipe and stop
    assert callbacks[0].args == (order.pk,)


def test_public_list_shows_verified_executors_and_marks_dev_roots(entry: MeasurementEntry) -> None:
    verified_executor("http://exec-a", entry=entry, signing_key="aa" * 32, hardware=False)
    ExecutorRecord.objects.create(url="http://exec-failed", state=ExecutorRecord.State.FAILED)
    listing = Client().get("/api/v1/attestation/executors/").json()
    assert [e["hardware_attested"] for e in listing] == [False]
    assert listing[0]["mrtd"] == MRTD
    assert "url" not in listing[0]


def test_the_proof_links_reports_to_the_attestation(entry: MeasurementEntry) -> None:
    from wire.canonical import digest

    verified_executor("http://exec-a", entry=entry, signing_key="aa" * 32)
    order = order_on("http://exec-a")
    spec_digest = digest(order.job_spec)
    for seq in range(2):
        ExecutionReport.objects.create(
            order=order,
            job_id=order.job_id,
            sequence=seq,
            digest=f"{seq:02d}" * 32,
            signing_key="aa" * 32,
            window_start_ms=seq * 10_000,
            window_end_ms=(seq + 1) * 10_000,
            envelope=json.dumps({"report": {"job_spec_digest": spec_digest}}),
        )
    old_job = order.job_id
    # The order's job is replaced (its executor restarted): the old job's proof stays published, with its own spec.
    order.job_spec = {**(order.job_spec or {}), "job_id": "replacement"}
    order.job_id = "replacement"
    order.save(update_fields=["job_spec", "job_id"])
    body = Client().get(f"/api/v1/attestation/proofs/{old_job}").json()
    assert body["proof"]["job_spec_digest"] == spec_digest
    proof = body["proof"]
    assert proof["schema"] == "mrmarket.proof-of-execution/v1"
    assert [r["sequence"] for r in proof["reports"]] == [0, 1]
    assert proof["window"] == {"start_ms": 0, "end_ms": 20_000}
    assert proof["executor"]["signing_key"] == "aa" * 32
    assert proof["attestation"]["allowlist_entry"]["source_commit"] == "abc123"
    assert proof["attestation"]["hardware_attested"] is False
    assert body["digest"] == digest(proof)
    missing = Client().get("/api/v1/attestation/proofs/nope")
    assert missing.status_code == 404


def test_reports_signed_by_an_unattested_key_are_refused(entry: MeasurementEntry, settings) -> None:
    from execution.errors import ReportRejected
    from execution.reports import ingest_reports
    from tests.wire.builders import KEY, chain

    reports = chain(1)
    order = order_on("http://exec-a", job_id=reports[0].report["job_id"])
    MMOrder.objects.filter(pk=order.pk).update(executor_signing_key=KEY.public_hex)
    order.refresh_from_db()
    with pytest.raises(ReportRejected) as caught:
        ingest_reports(order, [reports[0].as_json()])
    assert caught.value.extra["reason_code"] == "unattested_signing_key"
    assert not ExecutionReport.objects.exists()
