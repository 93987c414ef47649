"""Binance's request-weight and order-count limits: always reported in headers, enforced when configured."""

from __future__ import annotations

import urllib.error
import urllib.request
from decimal import Decimal

import ccxt
import pytest

from devnet.exchange.config import SimConfig
from devnet.exchange.fixtures import run_exchange
from devnet.exchange.keys import Permission


def _repeat(call, times: int) -> None:
    for _ in range(times):
        call()


def test_weight_header_without_enforcement(exchange):
    with urllib.request.urlopen(exchange.base_url + "/api/v3/exchangeInfo", timeout=5) as response:
        assert int(response.headers["X-MBX-USED-WEIGHT-1M"]) >= 20


def test_limits_enforced_when_configured():
    with run_exchange(SimConfig(run_market=False, orders_per_10s=3, weight_per_minute=400)) as ex:
        ex.sim.market.seed_books()
        key = ex.sim.create_account(permissions=frozenset({Permission.TRADE}), balances={"USDT": Decimal(1000)})
        client = ex.make_ccxt(key.key, key.secret)
        client.load_markets()
        # A window boundary can reset a count once, so a bounded number of attempts must hit the limit.
        with pytest.raises(ccxt.DDoSProtection, match="-1015"):
            _repeat(lambda: client.create_order("BTC/USDT", "limit", "buy", "0.001", "50000"), 10)
        assert client.last_response_headers["Retry-After"].isdigit()
        with pytest.raises(ccxt.DDoSProtection, match="-1003"):
            _repeat(client.fetch_markets, 60)
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(ex.base_url + "/api/v3/ping", timeout=5)
        assert info.value.code == 429
        assert info.value.headers["Retry-After"].isdigit()
