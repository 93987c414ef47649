"""Funds on the devnet chain (Anvil): ERC-20 deposits credited after N confirmations and shown in
fetch_deposits with their tx hash, reorg safety, deposit delays, and withdrawals that arrive on chain or fail."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import ccxt
import pytest

from devnet.chain import dev_accounts, mint, token, transfer
from devnet.exchange.config import ChainConfig, SimConfig
from devnet.exchange.fixtures import run_exchange

pytestmark = pytest.mark.chain
CONFIRMATIONS = 3
UNIT = 10**6  # the dev token has 6 decimals


@pytest.fixture(scope="module")
def chain_exchange(anvil, w3, dev_token):
    deployer, hot = dev_accounts()[0], dev_accounts()[9]
    mint(w3, dev_token, hot.address, 1_000_000 * UNIT, sender=deployer)
    mint(w3, dev_token, dev_accounts()[1].address, 1_000_000 * UNIT, sender=deployer)
    config = SimConfig(
        run_market=False,
        chain=ChainConfig(
            rpc_url=anvil.url,
            assets={"USDT": dev_token},
            hot_wallet_key=hot.private_key,
            confirmations=CONFIRMATIONS,
            poll_interval=0.1,
        ),
    )
    with run_exchange(config) as ex:
        yield ex


def account(ex, *permissions, **balances):
    created = ex.admin("POST", "/_devnet/accounts", {"permissions": list(permissions), "balances": balances})
    client = ex.make_ccxt(created["api_key"], created["secret"])
    client.load_markets()
    return created, client


def mine(w3, blocks: int) -> None:
    for _ in range(blocks):
        w3.provider.make_request("evm_mine", [])


def wait_for(predicate, what: str, attempts: int = 150):
    for _ in range(attempts):
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_deposit_credited_after_confirmations(chain_exchange, w3, dev_token):
    ex = chain_exchange
    created, client = account(ex, "read")
    address = client.fetch_deposit_address("USDT")["address"]
    assert address == created["deposit_address"]
    tx = transfer(w3, dev_token, address, 250 * UNIT, sender=dev_accounts()[1])
    deposit = wait_for(lambda: client.fetch_deposits("USDT"), "the deposit to be seen")[0]
    assert deposit["status"] == "pending"
    assert deposit["txid"] == tx
    assert deposit["amount"] == 250.0
    assert client.fetch_balance()["USDT"]["free"] == 0.0  # one confirmation is not enough
    mine(w3, CONFIRMATIONS - 1)
    done = wait_for(lambda: [d for d in client.fetch_deposits("USDT") if d["status"] == "ok"], "credit")
    assert done[0]["txid"] == tx
    assert done[0]["address"] == address
    assert client.fetch_balance()["USDT"]["free"] == 250.0
    mine(w3, 2)
    ex.admin("POST", "/_devnet/chain/poll", {})
    assert client.fetch_balance()["USDT"]["free"] == 250.0  # credited once


def test_reorged_deposit_is_never_credited(chain_exchange, w3, dev_token):
    ex = chain_exchange
    _, client = account(ex, "read")
    address = client.fetch_deposit_address("USDT")["address"]
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    transfer(w3, dev_token, address, 40 * UNIT, sender=dev_accounts()[1])
    ex.admin("POST", "/_devnet/chain/poll", {})
    assert [d["status"] for d in client.fetch_deposits("USDT")] == ["pending"]
    assert w3.provider.make_request("evm_revert", [snapshot])["result"] is True
    mine(w3, CONFIRMATIONS + 2)
    ex.admin("POST", "/_devnet/chain/poll", {})
    assert client.fetch_deposits("USDT") == []
    assert client.fetch_balance()["USDT"]["free"] == 0.0


def test_concurrent_passes_credit_once_and_never_fail(chain_exchange, w3, dev_token):
    """The background watcher and any number of admin polls may run at once: a reorged deposit is dropped
    without an error and a confirmed one is credited exactly once."""
    ex = chain_exchange
    _, client = account(ex, "read")
    address = client.fetch_deposit_address("USDT")["address"]

    def poll_many(n: int = 8) -> None:
        with ThreadPoolExecutor(max_workers=n) as pool:
            for future in [pool.submit(ex.admin, "POST", "/_devnet/chain/poll", {}) for _ in range(n)]:
                assert future.result() == {}

    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    transfer(w3, dev_token, address, 7 * UNIT, sender=dev_accounts()[1])
    poll_many()
    assert w3.provider.make_request("evm_revert", [snapshot])["result"] is True
    mine(w3, CONFIRMATIONS + 2)
    poll_many()
    assert client.fetch_deposits("USDT") == []
    transfer(w3, dev_token, address, 9 * UNIT, sender=dev_accounts()[1])
    mine(w3, CONFIRMATIONS)
    for _ in range(3):
        poll_many()
    assert [d["status"] for d in client.fetch_deposits("USDT")] == ["ok"]
    assert client.fetch_balance()["USDT"]["free"] == 9.0


def test_deposit_delay_fault_holds_the_credit(chain_exchange, w3, dev_token):
    ex = chain_exchange
    created, client = account(ex, "read")
    fault = ex.admin("POST", "/_devnet/faults", {"kind": "deposit_delay", "account": created["account_id"]})
    address = client.fetch_deposit_address("USDT")["address"]
    transfer(w3, dev_token, address, 10 * UNIT, sender=dev_accounts()[1])
    mine(w3, CONFIRMATIONS + 1)
    ex.admin("POST", "/_devnet/chain/poll", {})
    assert client.fetch_deposits("USDT")[0]["status"] == "pending"
    assert client.fetch_balance()["USDT"]["free"] == 0.0
    ex.admin("DELETE", f"/_devnet/faults/{fault['fault_id']}")
    wait_for(lambda: client.fetch_balance()["USDT"]["free"] == 10.0, "the delayed credit")


def test_withdrawal_arrives_on_chain(chain_exchange, w3, dev_token):
    ex = chain_exchange
    _, client = account(ex, "trade", "withdraw", USDT="500")
    to = dev_accounts()[2].address
    before = token(w3, dev_token).functions.balanceOf(to).call()
    result = client.withdraw("USDT", 120.5, to, {"withdrawOrderId": "w-1"})
    assert client.fetch_balance()["USDT"]["free"] == 379.5  # debited at once
    done = wait_for(lambda: [w for w in client.fetch_withdrawals("USDT") if w["status"] == "ok"], "completion")
    assert done[0]["id"] == result["id"]
    assert done[0]["txid"].startswith("0x")
    receipt = w3.eth.get_transaction_receipt(done[0]["txid"])
    assert receipt["status"] == 1
    assert token(w3, dev_token).functions.balanceOf(to).call() - before == 120_500_000
    # A retry with the same withdrawOrderId is the same withdrawal, not a second one.
    assert client.withdraw("USDT", 120.5, to, {"withdrawOrderId": "w-1"})["id"] == result["id"]
    assert client.fetch_balance()["USDT"]["free"] == 379.5


def test_withdrawal_failure_is_refunded(chain_exchange):
    ex = chain_exchange
    created, client = account(ex, "trade", "withdraw", USDT="100")
    ex.admin("POST", "/_devnet/faults", {"kind": "withdrawal_failure", "account": created["account_id"], "count": 1})
    client.withdraw("USDT", 60, dev_accounts()[2].address)
    failed = wait_for(lambda: [w for w in client.fetch_withdrawals("USDT") if w["status"] == "failed"], "failure")
    assert failed[0]["txid"] in (None, "")
    assert client.fetch_balance()["USDT"]["free"] == 100.0


def test_withdrawal_rejections(chain_exchange):
    ex = chain_exchange
    _, client = account(ex, "trade", "withdraw", USDT="10")
    with pytest.raises(ccxt.InsufficientFunds):
        client.withdraw("USDT", 50, dev_accounts()[2].address)
    with pytest.raises(ccxt.BadRequest):
        client.withdraw("USDT", 5, "0x1234")
    ex.admin("POST", "/_devnet/faults", {"kind": "insufficient_balance", "endpoint": "/sapi/*", "count": 1})
    with pytest.raises(ccxt.InsufficientFunds):
        client.withdraw("USDT", 5, dev_accounts()[2].address)
    assert client.fetch_balance()["USDT"]["free"] == 10.0
    assert client.fetch_withdrawals("USDT") == []


def test_module_entry_point_with_chain(anvil, w3, dev_token, tmp_path):
    import json
    import os
    import subprocess
    import sys
    import urllib.request
    from pathlib import Path

    from devnet.exchange.chain import address_of
    from devnet.ports import free_port, wait_for_port

    root = Path(__file__).resolve().parents[3]
    state = tmp_path / "devnet-chain.json"
    state.write_text(json.dumps({"chain_id": 31337, "token": dev_token}))
    hot = dev_accounts()[8]
    port = free_port()
    argv = [sys.executable, "-m", "devnet.exchange", "--port", str(port), "--no-market", "--chain-rpc", anvil.url,
            "--token-state", str(state), "--hot-wallet-key", hot.private_key, "--fund-hot-wallet", "5000"]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, stderr=subprocess.PIPE)
    try:
        assert wait_for_port(port, timeout=60)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_devnet/info", timeout=10) as response:
            info = json.loads(response.read())
        assert info["funds"]["assets"] == {"USDT": dev_token}
        assert info["funds"]["hot_wallet"] == address_of(hot.private_key)
        assert token(w3, dev_token).functions.balanceOf(hot.address).call() >= 5000 * UNIT
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert b"funds on" in err
