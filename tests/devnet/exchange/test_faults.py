"""Each injected fault makes ccxt raise what the real exchange's failure would make it raise."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import ccxt
import pytest

from devnet.exchange.faults import Fault, FaultKind

BTC = "BTC/USDT"


def add(exchange, **fields):
    return exchange.admin("POST", "/_devnet/faults", fields)


def test_latency_delays_but_answers(exchange, new_account):
    _, client = new_account(USDT="100")
    add(exchange, kind="latency", endpoint="/api/v3/account", latency_ms=200, count=1)
    assert client.fetch_balance()["USDT"]["free"] == 100.0
    assert exchange.admin("GET", "/_devnet/faults") == []  # used up


def test_hang_is_a_request_timeout(exchange, new_account):
    _, client = new_account(timeout_ms=1000, USDT="100")
    add(exchange, kind="hang", endpoint="/api/v3/account", hang_ms=5000, count=1)
    with pytest.raises(ccxt.RequestTimeout):
        client.fetch_balance()
    assert client.fetch_balance()["USDT"]["free"] == 100.0


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, ccxt.ExchangeNotAvailable),
        (502, ccxt.ExchangeNotAvailable),
        (503, ccxt.ExchangeNotAvailable),
        (504, ccxt.RequestTimeout),
    ],
)
def test_http_5xx(exchange, new_account, status, error):
    _, client = new_account(USDT="100")
    add(exchange, kind="http_5xx", endpoint="/api/v3/order", method="POST", status=status, count=1)
    with pytest.raises(error):
        client.create_order(BTC, "limit", "buy", "0.001", "59000")
    assert client.fetch_open_orders(BTC) == []  # nothing was placed
    client.create_order(BTC, "limit", "buy", "0.001", "59000")


def test_rate_limit_is_429_with_retry_after(exchange, new_account):
    _, client = new_account(USDT="100")
    add(exchange, kind="rate_limit", endpoint="/api/v3/*", retry_after=7, count=2)
    # ccxt's binance raises DDoSProtection for any 418/429 before reading the body (real Binance does the same).
    with pytest.raises(ccxt.DDoSProtection):
        client.fetch_open_orders(BTC)
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(exchange.base_url + "/api/v3/ping", timeout=5)
    assert info.value.code == 429
    assert info.value.headers["Retry-After"] == "7"
    assert json.loads(info.value.read())["code"] == -1003


def test_maintenance_window(exchange, new_account):
    _, client = new_account(USDT="100")
    fault = add(exchange, kind="maintenance", endpoint="*")
    with pytest.raises(ccxt.OnMaintenance):
        client.fetch_order_book(BTC)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        client.create_order(BTC, "limit", "buy", "0.001", "59000")
    exchange.admin("DELETE", f"/_devnet/faults/{fault['fault_id']}")
    assert client.fetch_order_book(BTC)["bids"]
    # A window that has already ended changes nothing.
    add(exchange, kind="maintenance", endpoint="*", until_ms=exchange.sim.clock() - 1)
    assert client.fetch_order_book(BTC)["bids"]


def test_partial_fill_only(exchange, new_account):
    _, client = new_account(USDT="10000")
    add(exchange, kind="partial_fill_only", fraction="0.5")
    market = client.create_order(BTC, "market", "buy", "0.04")
    assert market["filled"] == 0.02
    assert market["status"] == "expired"
    limit = client.create_order(BTC, "limit", "buy", "0.04", "60060")
    assert limit["filled"] == 0.02
    assert limit["status"] == "open"


def test_insufficient_balance_fault(exchange, new_account):
    _, client = new_account(USDT="10000")
    add(exchange, kind="insufficient_balance", endpoint="/api/v3/order", count=1)
    with pytest.raises(ccxt.InsufficientFunds):
        client.create_order(BTC, "limit", "buy", "0.001", "59000")
    client.create_order(BTC, "limit", "buy", "0.001", "59000")


def test_lost_cancel_ack_cancels_but_times_out(exchange, new_account):
    _, client = new_account(timeout_ms=1000, USDT="1000")
    order = client.create_order(BTC, "limit", "buy", "0.001", "59000")
    add(exchange, kind="lost_cancel_ack", endpoint="/api/v3/order", hang_ms=5000, count=1)
    with pytest.raises(ccxt.RequestTimeout):
        client.cancel_order(order["id"], BTC)
    assert client.fetch_order(order["id"], BTC)["status"] == "canceled"  # it did happen
    with pytest.raises(ccxt.OrderNotFound):  # and a retry says so, as Binance would
        client.cancel_order(order["id"], BTC)


def test_lost_cancel_ack_as_5xx(exchange, new_account):
    _, client = new_account(USDT="1000")
    order = client.create_order(BTC, "limit", "buy", "0.001", "59000")
    add(exchange, kind="lost_cancel_ack", endpoint="/api/v3/*", mode="5xx", count=1)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        client.cancel_order(order["id"], BTC)
    assert client.fetch_order(order["id"], BTC)["status"] == "canceled"


def test_each_request_a_rule_acts_on_is_recorded_for_tests_to_wait_on(exchange, new_account):
    key, client = new_account(USDT="1000")
    counting = exchange.sim.faults.add(
        Fault(kind=FaultKind.LATENCY, account=key.account_id, endpoint="/api/v3/account", count=10, latency_ms=0)
    )
    client.fetch_balance()
    client.fetch_balance()
    seen = exchange.sim.faults.events(fault_id=counting.fault_id)
    assert [(e.kind, e.path, e.method, e.account) for e in seen] == [
        (FaultKind.LATENCY, "/api/v3/account", "GET", key.account_id)
    ] * 2
    assert seen[0].at_ms <= seen[1].at_ms
    order = client.create_order(BTC, "limit", "buy", "0.001", "59000", {"newClientOrderId": "lost-ack-1"})
    add(exchange, kind="lost_cancel_ack", endpoint="/api/v3/order", mode="5xx", count=1)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        client.cancel_order(order["id"], BTC)
    lost = exchange.sim.faults.events(kind=FaultKind.LOST_CANCEL_ACK)
    assert [e.detail for e in lost][-1:] == ["lost-ack-1"]


def test_faults_are_scoped_to_account_and_endpoint(exchange, new_account):
    key_a, a = new_account(USDT="100")
    _, b = new_account(USDT="100")
    add(exchange, kind="http_5xx", status=500, account=key_a.account_id, endpoint="/api/v3/account")
    with pytest.raises(ccxt.ExchangeNotAvailable):
        a.fetch_balance()
    assert b.fetch_balance()["USDT"]["free"] == 100.0  # other account
    assert a.fetch_open_orders(BTC) == []  # other endpoint


def test_admin_fault_api_rejects_bad_input(exchange):
    for body in (
        {"kind": "nope"},
        {"kind": "http_5xx", "status": 404},
        {"kind": "latency", "bogus": 1},
        {"kind": "partial_fill_only", "fraction": "2"},
        {"kind": "hang", "count": 0},
        {"kind": "lost_cancel_ack", "mode": "x"},
        {"kind": "latency", "latency_ms": "x"},
    ):
        with pytest.raises(urllib.error.HTTPError) as info:
            add(exchange, **body)
        assert info.value.code == 400
    with pytest.raises(urllib.error.HTTPError) as info:
        exchange.admin("DELETE", "/_devnet/faults/999")
    assert info.value.code == 404
    listed = add(exchange, kind="latency", latency_ms=1)
    assert exchange.admin("GET", "/_devnet/faults") == [listed]
    exchange.admin("DELETE", "/_devnet/faults")
    assert exchange.admin("GET", "/_devnet/faults") == []


def test_faults_set_from_tests_directly(exchange, new_account):
    _, client = new_account(USDT="100")
    exchange.sim.faults.add(Fault(kind=FaultKind.MAINTENANCE, endpoint="/api/v3/depth"))
    with pytest.raises(ccxt.OnMaintenance):
        client.fetch_order_book(BTC)
