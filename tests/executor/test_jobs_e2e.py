"""Acceptance of the executor: simulator + executor. A job started through the API quotes both sides at the configured
spreads and levels, is filled by the simulator's takers, keeps inventory within its caps, produces reports
that verify as a chain; stop leaves no open order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from devnet.exchange.fixtures import RunningExchange
from executor.api.app import create_app
from executor.config import Config
from executor.identity import Identity
from tests.executor.harness import CONTROLLER, Controller, job_spec, live_exchange, trading_key
from wire.reports import SignedReport, verify_chain

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def exchange() -> Iterator[RunningExchange]:
    with live_exchange() as ex:
        yield ex


@pytest.fixture
async def controller(exchange: RunningExchange) -> AsyncIterator[tuple[Controller, Identity]]:
    identity = Identity.generate()
    config = Config(
        tick_ms=200, exchange_api_urls={"binance": exchange.base_url}, controller_key=CONTROLLER.public_hex, dev=True
    )
    app = create_app(config, identity=identity)
    async with TestClient(TestServer(app)) as client:
        yield Controller(client), identity


async def wait_for(predicate: Any, timeout: float = 30.0, step: float = 0.2) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(step)


async def test_a_job_quotes_fills_reports_and_stops_clean(
    exchange: RunningExchange,
    controller: tuple[Controller, Identity],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    ctl, identity = controller
    key = trading_key(exchange)
    spec = job_spec("job-e2e-1")
    status, body = await ctl.start(spec)
    assert status == 201, body
    assert body["state"] == "pending_credentials"
    again, same = await ctl.start(spec)  # idempotent by job id
    assert again == 200
    assert same["job_spec_digest"] == body["job_spec_digest"]
    status, body = await ctl.provision("job-e2e-1", identity.sealing.public_hex, key)
    assert status == 202, body

    async def quoting() -> Any:
        s = await ctl.status("job-e2e-1")
        sides = {o["side"] for o in s["orders"]["resting"]}
        return s if s["state"] == "running" and sides == {"buy", "sell"} and len(s["orders"]["resting"]) == 4 else None

    async def quoting_on_the_exchange() -> Any:
        # The job's view and the exchange's agree: the same four orders (a taker may fill one between the two
        # reads, so the pair is read again until they do).
        s = await quoting()
        if s is None:
            return None
        book = await asyncio.to_thread(exchange.make_ccxt(key.key, key.secret).fetch_open_orders, "MMT/USDT")
        same = {o["clientOrderId"] for o in book} == {o["client_order_id"] for o in s["orders"]["resting"]}
        return (s, book) if same else None

    running, book = await wait_for(quoting_on_the_exchange)
    mark = Decimal(running["mark"])
    assert len(book) == 4
    for order in book:
        price = Decimal(str(order["price"]))
        distance = abs(price - mark) / mark
        assert Decimal("0.0005") < distance < Decimal("0.0045"), (order["side"], price, mark)

    async def filled() -> Any:
        s = await ctl.status("job-e2e-1")
        return s if s["fills"] >= 2 else None

    with_fills = await wait_for(filled, timeout=60)
    assert Decimal(with_fills["inventory"]["MMT"]) <= Decimal("6000") + Decimal("400")  # max_base + one ladder
    assert Decimal(with_fills["inventory"]["MMT"]) >= Decimal("1000") - Decimal("400")

    await asyncio.sleep(2.5)  # a few wall-clock sample instants with the ladder resting
    status, stopped = await ctl.call("POST", "/v1/jobs/stop", {"job_id": "job-e2e-1"})
    assert status == 202

    async def done() -> Any:
        s = await ctl.status("job-e2e-1")
        return s if s["state"] == "stopped" else None

    await wait_for(done)
    assert exchange.make_ccxt(key.key, key.secret).fetch_open_orders("MMT/USDT") == []

    status, page = await ctl.call("GET", "/v1/jobs/job-e2e-1/report")
    assert status == 200
    reports = [SignedReport.from_json(r) for r in page["reports"]]
    assert reports, "the stop closes a final report"
    verify_chain(reports, signing_key=identity.signing.public_hex, job_spec_digest=stopped["job_spec_digest"])
    fills = [f for r in reports for f in r.report["fills"]]
    assert len({f["trade_id"] for f in fills}) == len(fills) >= 2
    events = [e["event"] for r in reports for e in r.report["order_events"]]
    assert "placed" in events
    assert "cancelled" in events
    # Each event carries the exchange's own time of it: what the exchange says when asked about the order.
    ccxt_client = exchange.make_ccxt(key.key, key.secret)
    checked = {"placed": 0, "cancelled": 0, "filled": 0}
    for e in (e for r in reports for e in r.report["order_events"]):
        if checked.get(e["event"], 5) >= 5:
            continue
        checked[e["event"]] += 1
        if e["event"] == "filled":
            trades = {f["exchange_ts_ms"] for f in fills if f["exchange_order_id"] == e["exchange_order_id"]}
            assert e["exchange_ts_ms"] in trades
            continue
        said = ccxt_client.fetch_order(e["exchange_order_id"], "MMT/USDT")
        wanted = said["timestamp"] if e["event"] == "placed" else said["lastUpdateTimestamp"]
        assert isinstance(wanted, int)
        assert e["exchange_ts_ms"] == wanted, (e, said["timestamp"], said["lastUpdateTimestamp"])
    assert checked["placed"]
    assert checked["cancelled"]
    samples = [s for r in reports for s in r.report["book_samples"]]
    assert len(samples) >= 2
    assert all(s["ts_ms"] % 1000 == 0 for s in samples)
    assert any(s["resting"] for s in samples)
    out, err = capsys.readouterr()
    logged = out + err + caplog.text
    assert "job_running" in logged or "http_request" in logged  # the logs were captured
    assert key.secret not in logged  # the exchange secret never reaches a log
    # Time and depth are per window, and the stop's final window can be a sliver that opened just before it (an
    # interval boundary passed): the job's windows together show it up, two-sided and deep, none more than its length.
    windows = [r.report for r in reports]
    assert all(w["metrics"]["uptime_ms"] <= w["window_end_ms"] - w["window_start_ms"] for w in windows)
    assert sum(w["metrics"]["uptime_ms"] for w in windows) > 0
    assert sum(w["metrics"]["two_sided_ms"] for w in windows) > 0
    assert any(Decimal(w["metrics"]["depth_quote"]["1pct"]) > 0 for w in windows)
    metrics = reports[-1].report["metrics"]
    assert Decimal(metrics["pnl"]["fees"]) > 0
