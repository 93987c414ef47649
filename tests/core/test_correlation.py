"""The correlation id: read or made per request, echoed, in the web log line, in the task it queued, outbound."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from celery.contrib.testing.worker import start_worker
from django.test import Client

from mrmarket.celery_app import app as celery_app
from mrmarket.http import outbound_client
from mrmarket.observability import context
from mrmarket.roles import Role
from tests.factories import user_with


@pytest.mark.django_db
def test_request_id_is_echoed_and_logged(client: Client, json_logs) -> None:
    response = client.get("/readyz", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"
    (line,) = [e for e in json_logs.events("http_request") if e["path"] == "/readyz"]
    assert line["request_id"] == "abc-123"
    assert line["status"] in (200, 503)
    assert line["version"]


@pytest.mark.django_db
@pytest.mark.parametrize("bad", ["x" * 200, "bad\nheader", "spaces are not ok", ""])
def test_unsafe_request_ids_are_replaced(client: Client, bad: str) -> None:
    response = client.get("/healthz", HTTP_X_REQUEST_ID=bad)
    assert response["X-Request-ID"] != bad
    assert len(response["X-Request-ID"]) == 32


@pytest.fixture
def celery_worker_thread() -> Iterator[None]:
    # A real worker (threads) consuming this test run's queue on the configured Redis broker.
    with start_worker(celery_app, pool="threads", concurrency=1, perform_ping_check=False, loglevel="WARNING"):
        yield


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_request_id_reaches_the_celery_task_log_line(json_logs, celery_worker_thread) -> None:
    staff = user_with(Role.STAFF)
    client = Client()
    client.force_login(staff)
    response = client.post("/api/v1/system/status/refresh", HTTP_X_REQUEST_ID="trace-me-42")
    assert response.status_code == 202
    assert response.json()["request_id"] == "trace-me-42"

    web = [e for e in json_logs.events("http_request") if e["path"] == "/api/v1/system/status/refresh"]
    assert web[0]["request_id"] == "trace-me-42"

    for _ in range(300):  # bounded wait (30 s) for the worker thread to run the task
        done = json_logs.events("system_status_refreshed")
        if done:
            break
        threading.Event().wait(0.1)
    else:
        pytest.fail("the task never ran")
    assert done[0]["request_id"] == "trace-me-42"
    assert done[0]["task_name"] == "mrmarket.refresh_system_status"


class _Recorder(BaseHTTPRequestHandler):
    seen: list[str | None] = []

    def do_GET(self) -> None:
        _Recorder.seen.append(self.headers.get("X-Request-ID"))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_outbound_calls_carry_the_request_id() -> None:
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        with context.bound(request_id="outbound-7"), outbound_client() as http:
            http.get(url)
        context.clear()
        with outbound_client() as http:
            http.get(url)
    finally:
        server.shutdown()
    assert _Recorder.seen == ["outbound-7", None]


def test_secret_looking_fields_are_redacted(json_logs) -> None:
    from mrmarket.observability.logging import get_logger

    get_logger("t").info("enrolled", api_secret="hunter2", password="pw", exchange="binance")
    (line,) = json_logs.events("enrolled")
    assert line["api_secret"] == "[redacted]"
    assert line["password"] == "[redacted]"
    assert line["exchange"] == "binance"
