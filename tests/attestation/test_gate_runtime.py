"""The gate checks what the host chose at launch (ADR 0012): the runtime configuration is bound into REPORTDATA,
and Django refuses an executor that obeys another controller, reaches an exchange elsewhere than Django does, or
runs in dev mode where that is not accepted — with a typed reason, recorded, and nothing provisioned."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from attestation import gate
from attestation.models import AttestationRecord, ExecutorRecord
from devnet.tdx.authority import DevQuoteAuthority
from execution.executor_client import ExecutorClient
from tests.attestation.runtime import bound, deposit_confirmed_order, ours
from tests.attestation.test_gate import FakeExecutor, refused_with, trust_dev_authority

pytestmark = pytest.mark.django_db
FOREIGN_KEY = "cd" * 32


@pytest.fixture(scope="module")
def authority() -> DevQuoteAuthority:
    return DevQuoteAuthority.ephemeral()


@pytest.fixture
def dev_trust(settings: Any, tmp_path: Path, authority: DevQuoteAuthority) -> DevQuoteAuthority:
    settings.EXCHANGE_API_URLS = {"binance": "https://testnet.binance.vision"}
    settings.EXECUTOR_ACCEPT_DEV_RUNTIME = False
    return trust_dev_authority(settings, tmp_path, authority)


def test_our_runtime_configuration_passes_and_is_recorded_for_the_proof(dev_trust: DevQuoteAuthority) -> None:
    executor = FakeExecutor(dev_trust)
    assert gate.attested_identity(executor).attested
    record = AttestationRecord.objects.get(ok=True)
    assert record.runtime_config == ours()  # a third party recomputes REPORTDATA from it (proof of execution)
    keys = executor.identity.public()
    assert bound(record.nonce, keys, record.runtime_config) == report_data_of(record)


def report_data_of(record: AttestationRecord) -> bytes:
    import base64

    from attestation.domain.quote import parse_quote_fields

    return bytes.fromhex(parse_quote_fields(base64.b64decode(record.quote_b64)).report_data)


@pytest.mark.parametrize(
    ("bent", "code"),
    [
        ({"controller_key": FOREIGN_KEY}, "foreign_controller"),
        ({"controller_key": None}, "foreign_controller"),
        ({"exchange_api_urls": {"binance": "https://10.0.0.1:8443"}}, "exchange_endpoint_mismatch"),
        ({"exchange_api_urls": {}}, "exchange_endpoint_mismatch"),  # ccxt's real Binance while Django uses testnet
        (
            {"exchange_api_urls": {"binance": "https://testnet.binance.vision", "okx": "https://okx.evil"}},
            "exchange_endpoint_mismatch",
        ),
        ({"dev": True}, "dev_runtime_refused"),
    ],
)
def test_a_runtime_configuration_django_does_not_expect_is_refused(
    dev_trust: DevQuoteAuthority, bent: dict[str, Any], code: str
) -> None:
    executor = FakeExecutor(dev_trust)
    executor.runtime = ours(**bent)  # truly what the TD runs with: the quote binds it
    message = refused_with(executor, code)
    assert "failed attestation" in message
    assert ExecutorRecord.objects.get(url=executor.base_url).signing_key == ""  # no identity recorded


def test_dev_mode_passes_where_it_is_accepted(dev_trust: DevQuoteAuthority, settings: Any) -> None:
    settings.EXECUTOR_ACCEPT_DEV_RUNTIME = True
    executor = FakeExecutor(dev_trust)
    executor.runtime = ours(dev=True)
    assert gate.attested_identity(executor).attested


def test_claiming_our_configuration_while_the_quote_binds_another_is_refused(dev_trust: DevQuoteAuthority) -> None:
    executor = FakeExecutor(dev_trust)
    executor.runtime = ours(controller_key=FOREIGN_KEY)
    executor.claimed_runtime = ours()
    refused_with(executor, "report_data_mismatch")


@pytest.mark.parametrize("claimed", [None, "x", {"schema": "mrmarket.executor.runtime/v1"}])
def test_evidence_without_a_valid_runtime_configuration_is_malformed(
    dev_trust: DevQuoteAuthority, claimed: Any
) -> None:
    class Bare(FakeExecutor):
        def attestation(self, nonce: str) -> dict[str, Any]:
            return {**super().attestation(nonce), "runtime_config": claimed}

    refused_with(Bare(dev_trust), "malformed_evidence")


def test_a_real_executor_obeying_another_controller_gets_nothing(
    dev_trust: DevQuoteAuthority, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end: the executor's own attested runtime config names a foreign controller key; Django's gate
    refuses it after asking for evidence, and no start, no credentials leave Django."""
    from execution import jobs
    from execution.models import MMOrder
    from tests.execution.executor_thread import running_executor
    from tests.executor.harness import live_exchange

    sent: list[str] = []

    def client_for(order: Any) -> ExecutorClient:
        hooks = {"request": [lambda r: sent.append(f"{r.method} {r.url.path}")]}
        return ExecutorClient(order.executor_url, client=httpx.Client(timeout=10, event_hooks=hooks))

    monkeypatch.setattr(jobs, "client_for", client_for)
    settings.EXECUTOR_ACCEPT_DEV_RUNTIME = True

    class Provider:
        name = "dev-authority"

        async def quote(self, data: bytes) -> bytes:
            return dev_trust.quote(data, mrtd=bytes(range(48)))

    with (
        live_exchange(run_market=False) as ex,
        running_executor(ex.base_url, provider=Provider(), controller=FOREIGN_KEY) as url,
    ):
        order = deposit_confirmed_order(settings, ex, url)
        with pytest.raises(gate.AttestationFailed) as caught:
            jobs.mm_order_start_job(order_id=order.pk)
    assert caught.value.code == "foreign_controller"
    assert sent == ["GET /v1/attestation"]  # evidence asked for; no start, no credentials
    assert MMOrder.objects.get(pk=order.pk).executor_signing_key == ""
    assert AttestationRecord.objects.get().reason == "foreign_controller"


def test_the_tests_gate_stand_in_still_refuses_another_controller() -> None:
    """The job-loop tests' stand-in for this gate (`tests/execution/gate_stand_in.py`) lets in only executors
    that obey our controller key, as the gate does."""
    from attestation.errors import ProvisioningRefused
    from mrmarket.controller import controller_key
    from tests.execution.gate_stand_in import GateStandIn

    class Reporting:
        base_url = "http://executor.test"

        def __init__(self, controller: str | None) -> None:
            self.controller = controller

        def health(self) -> dict[str, Any]:
            return {"signing_key": "aa" * 32, "sealing_key": "bb" * 32, "controller_key": self.controller}

    assert GateStandIn().identity(Reporting(controller_key().public_hex)).signing_key == "aa" * 32
    for other in (FOREIGN_KEY, None):
        with pytest.raises(ProvisioningRefused):
            GateStandIn().identity(Reporting(other))
