"""A canary exchange secret through the whole loop (fund → attested executor given sealed credentials → job
running with fills → stop → funds home): it never appears in a log line (Django's or the executor's), an
exception text, a stored row, or an HTTP response body. The run also provokes the leaks redaction exists for: a
nested log field and a traceback carrying the secret, on both sides."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.core import serializers
from rest_framework.test import APIClient
from web3 import Web3

from attestation.models import AttestationRecord, ExecutorRecord
from devnet.exchange.fixtures import RunningExchange
from execution import accounts, homeward, orders, services, tasks
from execution.models import Alert, ExchangeAccount, ExecutionReport, LedgerTransaction, MMOrder, MMOrderTransition
from mrmarket.observability.logging import get_logger, make_formatter
from tests.execution import test_mm_loop_e2e as loop
from tests.factories import user_with

# The loop's module fixtures (chain, simulator, attested executor behind a verified control plane, a worker).
tokens, sim, authority, executor_url = loop.tokens, loop.sim, loop.authority, loop.executor_url
control_plane, worker, configured = loop.control_plane, loop.worker, loop.configured
USDT, drive, keys, seed_custody, state_of = loop.USDT, loop.drive, loop.keys, loop.seed_custody, loop.state_of

pytestmark = [pytest.mark.chain, pytest.mark.slow, pytest.mark.timeout(300)]


class Everything(logging.Handler):
    """Every record any logger emits, rendered by the production formatter (traceback included)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(make_formatter("json"))
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        with self._lock:
            self.lines.append(line)


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[str]]]:
    seen: dict[str, list[str]] = {"logs": [], "responses": [], "exceptions": []}
    handler = Everything()
    handler.lines = seen["logs"]
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)

    real_send, real_async_send = httpx.Client.send, httpx.AsyncClient.send

    def send(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        response = real_send(self, request, **kwargs)
        seen["responses"].append(response.read().decode(errors="replace"))
        return response

    async def async_send(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        response = await real_async_send(self, request, **kwargs)
        seen["responses"].append((await response.aread()).decode(errors="replace"))
        return response

    monkeypatch.setattr(httpx.Client, "send", send)
    monkeypatch.setattr(httpx.AsyncClient, "send", async_send)
    previous_hook = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        seen["exceptions"].append(f"{args.exc_type.__name__}: {args.exc_value}")
        previous_hook(args)

    threading.excepthook = hook
    try:
        yield seen
    finally:
        threading.excepthook = previous_hook
        root.removeHandler(handler)
        root.setLevel(previous_level)


def stored_rows() -> str:
    models = (MMOrder, MMOrderTransition, ExecutionReport, Alert, LedgerTransaction, AttestationRecord, ExecutorRecord)
    return "\n".join(serializers.serialize("json", model.objects.all()) for model in models)


@pytest.mark.django_db(transaction=True)
def test_a_canary_secret_never_leaves_in_logs_errors_rows_or_responses(
    configured: None,
    worker: None,
    w3: Web3,
    sim: RunningExchange,
    tokens: dict[str, str],
    executor_url: str,
    captured: dict[str, list[str]],
    capfd: pytest.CaptureFixture[str],
) -> None:
    seed_custody(w3, tokens)
    owner = user_with()
    trading, treasury = keys(sim, owner.pk)
    canaries = [_secret(trading), _secret(treasury)]
    assert all(len(c) >= 16 for c in canaries)

    order = orders.mm_order_create(
        owner_id=owner.pk,
        exchange_account_id=trading.pk,
        symbol="MMT/USDT",
        funding_asset="USDT",
        funding_amount=500 * USDT,
        strategy={
            "params": {"bid_spread": "0.001", "ask_spread": "0.001", "order_amount": "100", "levels": 1},
            "report_interval_seconds": 10,
            "sample_seconds": 1,
        },
    )
    tasks.fund_order.delay(order.pk)
    drive(w3, lambda: state_of(order) == "running", what="the job to run")

    def reports_with_fills() -> bool:
        tasks.sync_job.delay(order.pk)
        return ExecutionReport.objects.filter(order=order, fills__gt=0).exists()

    drive(w3, reports_with_fills, what="a verified report with fills", timeout=60)

    # The leaks redaction is for, provoked on both sides while the secrets are held: a secret under an innocent
    # name deep in a field, and one inside an exception message (so in the rendered traceback).
    django_log = get_logger("execution.canary")
    executor_log = logging.getLogger("executor.engine.runner")
    try:
        raise RuntimeError(f"exchange refused the signature made with {canaries[0]}")
    except RuntimeError:
        django_log.exception("provoked", context={"attempt": [{"note": canaries[1]}]})
        executor_log.exception("provoked: %s", canaries[0])

    api = APIClient()
    api.force_authenticate(owner)
    bodies = [
        api.get(f"/api/v1/execution/mm-orders/{order.pk}").content.decode(),
        api.get("/api/v1/execution/exchange-accounts").content.decode(),
    ]

    services.mm_order_stop(order_id=order.pk)
    tasks.wind_down.delay(order.pk)
    drive(w3, lambda: MMOrder.objects.get(pk=order.pk).job_id == "", what="the job to stop")
    order = homeward.mm_order_withdraw_back(order_id=order.pk, treasury_account_id=treasury.pk)
    drive(w3, lambda: state_of(order) == "settled", what="the funds to come home")
    bodies.append(api.get(f"/api/v1/execution/mm-orders/{order.pk}").content.decode())

    out, err = capfd.readouterr()
    texts = {
        "log lines": captured["logs"],
        "stdout/stderr": [out, err],
        "thread exceptions": captured["exceptions"],
        "HTTP responses (Django to executor, EasyEnclave)": captured["responses"],
        "API responses": bodies,
        "stored rows": [stored_rows()],
    }
    # The capture saw the run: the job's life and the provoked lines are there.
    assert any('"provoked"' in line for line in captured["logs"])
    assert any("provoked: [redacted]" in line for line in captured["logs"])
    assert any(
        '"job_running"' in line or "job_running" in line for line in captured["logs"] + [texts["stored rows"][0]]
    )
    assert len(captured["responses"]) > 5
    for where, items in texts.items():
        for text in items:
            for canary in canaries:
                assert canary not in text, f"the canary secret appears in {where}"


def _secret(account: ExchangeAccount) -> str:
    return accounts.exchange_account_credentials(account=account).secret
