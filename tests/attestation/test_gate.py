"""The trust gate, end to end: an executor's evidence passes only when the quote verifies under the
configured root with current collateral, binds our fresh nonce and its keys, shows an allowlisted measurement
and an allowed TCB status, and is not a debug TD. Each failure has its own reason, is recorded, and no secret
leaves Django (asserted at the network boundary)."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.utils import timezone

from attestation import gate, services
from attestation.errors import NonceReused, NonceUnknown
from attestation.models import AttestationRecord, ExecutorRecord
from devnet.tdx.authority import DevQuoteAuthority
from execution.executor_client import ExecutorClient
from executor.identity import Identity
from tests.attestation.runtime import bound, deposit_confirmed_order, ours
from tests.factories import user_with

pytestmark = pytest.mark.django_db
MRTD = bytes(range(48))
OTHER_MRTD = bytes(range(1, 49))
# What the dev authority's quotes show by default in RTMR1-3 (zeros), pinned as every entry must; RTMR0 open.
PINNED_RTMRS = ("", "00" * 48, "00" * 48, "00" * 48)


@pytest.fixture(scope="module")
def authority() -> DevQuoteAuthority:
    return DevQuoteAuthority.ephemeral()


@pytest.fixture
def dev_trust(settings, tmp_path: Path, authority: DevQuoteAuthority) -> DevQuoteAuthority:
    return trust_dev_authority(settings, tmp_path, authority)


def trust_dev_authority(settings: Any, tmp_path: Path, authority: DevQuoteAuthority) -> DevQuoteAuthority:
    """Trust `authority` as the dev root (with its collateral), allow UpToDate only, allowlist MRTD."""
    root = tmp_path / "dev-root.der"
    root.write_bytes(authority.root_ca_der)
    collateral = tmp_path / "collateral.json"
    collateral.write_text(authority.collateral_json(now=int(time.time())))
    settings.ATTESTATION_DEV_ROOT_CA_FILE = str(root)
    settings.ATTESTATION_COLLATERAL_FILE = str(collateral)
    settings.ATTESTATION_TCB_ALLOWED = ["UpToDate"]
    services.allowlist_add(
        actor_id=user_with().pk, mrtd=MRTD.hex(), rtmrs=PINNED_RTMRS, build_version="1.0.0", source_commit="c0ffee"
    )
    return authority


class FakeExecutor:
    """An executor as the gate sees it (`base_url`, `attestation(nonce)`), whose evidence a test can bend."""

    def __init__(self, authority: DevQuoteAuthority, **quote_kw: Any) -> None:
        self.base_url = "http://executor.test"
        self.identity = Identity.generate()
        self.authority = authority
        self.quote_kw = {"mrtd": MRTD, **quote_kw}
        self.answer_nonce: str | None = None
        self.tamper_at: int | None = None
        self.runtime: dict[str, Any] | None = None  # what the TD runs with (default: a configuration Django accepts)
        self.claimed_runtime: dict[str, Any] | None = None  # what it says it runs with, if it lies

    def attestation(self, nonce: str) -> dict[str, Any]:
        answered = self.answer_nonce or nonce
        keys = self.identity.public()
        runtime = self.runtime or ours()
        quote = bytearray(self.authority.quote(bound(answered, keys, runtime), **self.quote_kw))
        if self.tamper_at is not None:
            quote[self.tamper_at] ^= 0x01
        return {
            "nonce": nonce,
            **keys,
            "runtime_config": self.claimed_runtime or runtime,
            "quote_b64": base64.b64encode(bytes(quote)).decode(),
        }


def refused_with(executor: Any, code: str) -> str:
    """The gate refuses `executor` with `code`, records the refusal and marks the executor failed."""
    with pytest.raises(gate.AttestationFailed) as caught:
        gate.attested_identity(executor)
    assert caught.value.code == code, caught.value.message
    record = AttestationRecord.objects.order_by("-id").first()
    assert record is not None
    assert not record.ok
    assert record.reason == code
    assert ExecutorRecord.objects.get(url=executor.base_url).state == "failed"
    return str(caught.value.message)


def test_a_good_executor_passes_and_is_marked_not_hardware_attested(dev_trust: DevQuoteAuthority) -> None:
    executor = FakeExecutor(dev_trust)
    identity = gate.attested_identity(executor)
    assert identity.attested
    assert identity.signing_key == executor.identity.signing.public_hex
    assert identity.sealing_key == executor.identity.sealing.public_hex
    record = ExecutorRecord.objects.get(url=executor.base_url)
    assert record.state == "verified"
    assert record.mrtd == MRTD.hex()
    assert record.tcb_status == "UpToDate"
    assert record.hardware_attested is False  # the dev root, never Intel's
    assert record.build_version == "1.0.0"


@pytest.mark.parametrize(
    ("bend", "code"),
    [
        ({"tamper_at": 600}, "signature_invalid"),
        ({"quote_kw": {"mrtd": OTHER_MRTD}}, "unknown_measurement"),
        ({"quote_kw": {"mrtd": MRTD, "debug": True}}, "debug_td"),
        ({"quote_kw": {"mrtd": MRTD, "tcb": "OutOfDate"}}, "tcb_status_refused"),
    ],
)
def test_each_bad_evidence_fails_with_its_own_reason(dev_trust: DevQuoteAuthority, bend: dict, code: str) -> None:
    executor = FakeExecutor(dev_trust, **bend.get("quote_kw", {}))
    executor.tamper_at = bend.get("tamper_at")
    refused_with(executor, code)


def test_an_allowlisted_mrtd_with_a_foreign_rtmr_is_refused(dev_trust: DevQuoteAuthority) -> None:
    """Same firmware, another workload: the MRTD matches, the register measuring the workload does not."""
    foreign = (b"\0" * 48, b"\0" * 48, b"\0" * 48, bytes([0xEE]) * 48)
    message = refused_with(FakeExecutor(dev_trust, rtmrs=foreign), "unknown_measurement")
    assert "allowlisted but rtmr3 differ" in message
    assert not AttestationRecord.objects.filter(ok=True).exists()


def test_an_entry_stored_with_the_mrtd_alone_admits_nothing(dev_trust: DevQuoteAuthority) -> None:
    """An entry from before RTMRs were required (written past the service) pins only the firmware: no match."""
    from attestation.models import MeasurementEntry

    MeasurementEntry.objects.update(removed_at=timezone.now())
    MeasurementEntry.objects.create(
        service="mm-executor", mrtd=MRTD.hex(), build_version="old", source_commit="c0", added_by=user_with()
    )
    foreign = (b"\0" * 48, bytes([1]) * 48, bytes([2]) * 48, bytes([3]) * 48)
    message = refused_with(FakeExecutor(dev_trust, rtmrs=foreign), "unknown_measurement")
    assert "do not pin the required RTMRs" in message
    assert not AttestationRecord.objects.filter(ok=True).exists()


def test_a_quote_for_another_nonce_fails(dev_trust: DevQuoteAuthority) -> None:
    executor = FakeExecutor(dev_trust)
    executor.answer_nonce = "ee" * 32  # evidence made for a challenge we did not send now (a replay)
    refused_with(executor, "report_data_mismatch")


def test_expired_collateral_fails(dev_trust: DevQuoteAuthority, settings, tmp_path: Path) -> None:
    stale = tmp_path / "stale.json"
    stale.write_text(dev_trust.collateral_json(now=int(time.time()) - 90 * 86_400))
    settings.ATTESTATION_COLLATERAL_FILE = str(stale)
    refused_with(FakeExecutor(dev_trust), "collateral_expired")


def test_another_root_fails_and_production_without_the_dev_root_refuses(
    dev_trust: DevQuoteAuthority, settings, tmp_path: Path
) -> None:
    other = tmp_path / "other-root.der"
    other.write_bytes(DevQuoteAuthority.ephemeral().root_ca_der)
    settings.ATTESTATION_DEV_ROOT_CA_FILE = str(other)
    refused_with(FakeExecutor(dev_trust), "untrusted_root")
    settings.ATTESTATION_DEV_ROOT_CA_FILE = ""  # production: Intel's root only
    refused_with(FakeExecutor(dev_trust), "untrusted_root")


def test_reused_and_unknown_nonces_are_refused(dev_trust: DevQuoteAuthority) -> None:
    executor = FakeExecutor(dev_trust)
    record, _ = ExecutorRecord.objects.get_or_create(url=executor.base_url)
    nonce = services.nonce_issue(purpose=gate.NONCE_PURPOSE).value
    evidence = executor.attestation(nonce)
    gate.verify_executor_evidence(record, evidence, nonce=nonce)
    with pytest.raises(NonceReused):
        gate.verify_executor_evidence(record, evidence, nonce=nonce)
    with pytest.raises(NonceUnknown):
        gate.verify_executor_evidence(record, executor.attestation("ab" * 32), nonce="ab" * 32)


def test_a_revoked_executor_gets_nothing(dev_trust: DevQuoteAuthority) -> None:
    from attestation.errors import ProvisioningRefused

    executor = FakeExecutor(dev_trust)
    ExecutorRecord.objects.create(url=executor.base_url, state=ExecutorRecord.State.REVOKED)
    with pytest.raises(ProvisioningRefused):
        gate.attested_identity(executor)


# --- the network boundary: a real executor, Django's real client, every request recorded ----------------------


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every request Django's executor client sends, as `METHOD path`."""
    from execution import jobs

    sent: list[str] = []

    def client_for(order: Any) -> ExecutorClient:
        hooks = {"request": [lambda r: sent.append(f"{r.method} {r.url.path}")]}
        return ExecutorClient(order.executor_url, client=httpx.Client(timeout=10, event_hooks=hooks))

    monkeypatch.setattr(jobs, "client_for", client_for)
    return sent


@pytest.mark.parametrize("allowlisted", [True, False])
def test_no_secret_leaves_django_unless_the_gate_passes(
    dev_trust: DevQuoteAuthority, settings, recorded: list[str], allowlisted: bool, tmp_path: Path
) -> None:
    from execution import jobs
    from execution.models import MMOrder
    from tests.execution.executor_thread import running_executor
    from tests.executor.harness import live_exchange

    mrtd = MRTD if allowlisted else OTHER_MRTD
    with (
        live_exchange(run_market=False) as ex,
        running_executor(ex.base_url, provider=_authority_provider(dev_trust, mrtd)) as url,
    ):
        order = deposit_confirmed_order(settings, ex, url)
        if allowlisted:
            started = jobs.mm_order_start_job(order_id=order.pk)
            assert started.state == "running"
            assert any(r.endswith("/credentials") for r in recorded)
            assert started.executor_signing_key == AttestationRecord.objects.get(ok=True).signing_key
            services_stop(order.pk)
        else:
            with pytest.raises(gate.AttestationFailed) as caught:
                jobs.mm_order_start_job(order_id=order.pk)
            assert caught.value.code == "unknown_measurement"
            assert recorded == ["GET /v1/attestation"]  # evidence asked for; nothing else sent, no secret
            assert MMOrder.objects.get(pk=order.pk).executor_signing_key == ""


def services_stop(order_id: int) -> None:
    from execution import jobs
    from execution import services as execution_services

    execution_services.mm_order_stop(order_id=order_id)
    for _ in range(100):
        if jobs.mm_order_wind_down(order_id=order_id).job_id == "":
            return
        time.sleep(0.2)
    pytest.fail("the job did not stop")


def _authority_provider(authority: DevQuoteAuthority, mrtd: bytes) -> Any:
    class Provider:
        name = "dev-authority"

        async def quote(self, data: bytes) -> bytes:
            return authority.quote(data, mrtd=mrtd)

    return Provider()


def test_reattestation_refreshes_the_registry_and_a_failure_stops_routing(
    dev_trust: DevQuoteAuthority, settings
) -> None:
    from attestation import tasks
    from tests.execution.executor_thread import running_executor

    settings.EXCHANGE_API_URLS = {"binance": "http://127.0.0.1:9"}  # where the executor reaches it, as attested
    with running_executor("http://127.0.0.1:9", provider=_authority_provider(dev_trust, MRTD)) as url:
        record = ExecutorRecord.objects.create(url=url)
        tasks.reattest_executor(record.pk)
        record.refresh_from_db()
        assert record.state == "verified"
        assert record.capacity_available == 10
        first = record.last_verified_at
        tasks.reattest_executor(record.pk)
        record.refresh_from_db()
        assert record.last_verified_at is not None
        assert first is not None
        assert record.last_verified_at > first
    tasks.reattest_executor(record.pk)  # the executor is gone: out of selection, but nothing says its build is bad
    record.refresh_from_db()
    assert record.state == "unreachable"
    assert (record.checks_ok, record.checks_total, record.uptime_permille) == (2, 3, 666)
    from attestation.selection import NoExecutorAvailable, select_executor

    with pytest.raises(NoExecutorAvailable):
        select_executor([url])
