"""The admin API and `python -m devnet.exchange`."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
from pathlib import Path

import ccxt
import pytest

from devnet.exchange.config import SimConfig
from devnet.exchange.domain.model import Side
from devnet.exchange.fixtures import run_exchange
from devnet.ports import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[3]


def test_admin_accounts_keys_credit_and_step(exchange):
    created = exchange.admin("POST", "/_devnet/accounts", {"permissions": ["read"], "balances": {"USDT": "12.5"}})
    assert created["permissions"] == ["read"]
    assert len(created["secret"]) == 64
    client = exchange.make_ccxt(created["api_key"], created["secret"])
    assert client.fetch_balance()["USDT"]["free"] == 12.5
    trader = exchange.admin("POST", f"/_devnet/accounts/{created['account_id']}/keys", {"permissions": ["trade"]})
    assert trader["account_id"] == created["account_id"]
    assert trader["permissions"] == ["read", "trade"]
    after = exchange.admin(
        "POST", f"/_devnet/accounts/{created['account_id']}/credit", {"asset": "BTC", "amount": "0.1"}
    )
    assert after["balances"]["BTC"] == {"free": "0.10000000", "locked": "0.00000000"}
    fair = exchange.admin("POST", "/_devnet/market/step", {"steps": 3, "seconds": "1"})
    assert set(fair) == {"BTCUSDT", "ETHUSDT", "MMTUSDT"}
    info = exchange.admin("GET", "/_devnet/info")
    assert info["funds"] is None
    assert "lost_cancel_ack" in info["fault_kinds"]


def test_the_makers_of_one_side_stop_and_resume(exchange):
    books = exchange.sim.engine.books["MMTUSDT"]
    exchange.sim.market.seed_books()
    assert books.best(Side.SELL) is not None
    stopped = exchange.admin("POST", "/_devnet/market/makers", {"symbol": "MMT/USDT", "side": "sell", "quoting": False})
    assert stopped == {"symbol": "MMTUSDT", "stopped": ["SELL"]}
    exchange.admin("POST", "/_devnet/market/step", {"steps": 3, "seconds": "1"})
    assert books.best(Side.SELL) is None  # nobody else quotes it here
    assert books.best(Side.BUY) is not None
    exchange.admin("POST", "/_devnet/market/makers", {"symbol": "MMTUSDT", "side": "SELL", "quoting": True})
    assert books.best(Side.SELL) is not None


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/_devnet/accounts", {"permissions": ["root"]}, 400),
        ("POST", "/_devnet/accounts", {"balances": {"USDT": "-1"}}, 400),
        ("POST", "/_devnet/accounts/acct-999/keys", {}, 404),
        ("POST", "/_devnet/accounts/acct-999/credit", {"asset": "USDT", "amount": "1"}, 404),
        ("GET", "/_devnet/accounts/acct-999", None, 404),
        ("POST", "/_devnet/market/step", {"steps": 0}, 400),
        ("POST", "/_devnet/chain/poll", {}, 400),
        ("POST", "/_devnet/market/makers", {"symbol": "NOPE/USDT", "side": "SELL"}, 404),
        ("POST", "/_devnet/market/makers", {"symbol": "MMT/USDT", "side": "UP"}, 400),
    ],
)
def test_admin_rejects(exchange, method, path, body, status):
    with pytest.raises(urllib.error.HTTPError) as info:
        exchange.admin(method, path, body)
    assert info.value.code == status


def test_admin_token():
    with run_exchange(SimConfig(run_market=False, admin_token="s3cret")) as ex:
        with pytest.raises(urllib.error.HTTPError) as info:
            ex.admin("GET", "/_devnet/info")
        assert info.value.code == 401


def test_module_entry_point_serves_ccxt():
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "devnet.exchange", "--port", str(port), "--tick", "0.2"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    try:
        assert wait_for_port(port, timeout=30)
        from devnet.exchange.fixtures import make_ccxt

        base = f"http://127.0.0.1:{port}"
        public = make_ccxt(base)
        assert public.fetch_order_book("BTC/USDT")["bids"]
        with pytest.raises(ccxt.AuthenticationError):
            make_ccxt(base, "a" * 64, "b" * 64).fetch_balance()
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert b"deposits and withdrawals are off" in err
