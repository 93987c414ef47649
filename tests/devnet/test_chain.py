"""Anvil tooling: start/stop without orphans, deployment, the idempotent demo token, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from web3 import Web3
from web3.exceptions import ContractCustomError

from devnet.chain import Anvil, ChainError, connect, dev_accounts, ensure_dev_token, mint, token, transfer
from devnet.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.chain


def test_dev_accounts_are_anvils() -> None:
    first = dev_accounts()[0]
    assert first.address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert "ac0974bec3" not in repr(first)


def test_start_and_stop_leave_no_process(anvil: Anvil) -> None:
    node = Anvil().start()
    pid = node._proc.pid if node._proc else None
    assert pid is not None
    children = psutil.Process(pid).children(recursive=True)
    node.stop()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    for child in children:
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE


def test_token_deploy_mint_transfer(w3: Web3, dev_token: str) -> None:
    a, b = dev_accounts()[0], dev_accounts()[1]
    contract = token(w3, dev_token)
    assert contract.functions.decimals().call() == 6
    mint(w3, dev_token, a.address, 5_000_000, sender=a)
    before = contract.functions.balanceOf(b.address).call()
    tx_hash = transfer(w3, dev_token, b.address, 1_250_000, sender=a)
    assert tx_hash.startswith("0x")
    assert len(tx_hash) == 66
    assert contract.functions.balanceOf(b.address).call() == before + 1_250_000


def test_only_the_deployer_mints(w3: Web3, dev_token: str) -> None:
    intruder = dev_accounts()[2]
    selector = Web3.keccak(text="NotMinter(address)")[:4].hex()
    with pytest.raises(ContractCustomError) as err:
        mint(w3, dev_token, intruder.address, 1, sender=intruder)
    assert str(err.value.data).startswith("0x" + selector)
    assert intruder.address[2:].lower() in str(err.value.data)


def test_ensure_dev_token_is_idempotent_and_redeploys_on_a_fresh_chain(tmp_path: Path, w3: Web3) -> None:
    state = tmp_path / "chain.json"
    first = ensure_dev_token(w3, state, holders=dev_accounts()[:1])
    assert ensure_dev_token(w3, state) == first
    assert json.loads(state.read_text()) == {"chain_id": 31337, "token": first}
    with Anvil() as fresh:
        other = ensure_dev_token(Web3(Web3.HTTPProvider(fresh.url)), state)
    assert other is not None
    assert json.loads(state.read_text())["token"] == other


def test_cli_deploy_token(tmp_path: Path, anvil: Anvil) -> None:
    state = tmp_path / "s.json"
    run = [sys.executable, "-m", "devnet.chain", "deploy-token", "--rpc", anvil.url, "--state", str(state)]
    out = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(out.stdout)["token"] == json.loads(state.read_text())["token"]


def test_unreachable_rpc_is_a_clear_error(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ChainError, match=f"cannot reach the chain at {url}"):
        connect(url, timeout=1)
    run = [sys.executable, "-m", "devnet.chain", "deploy-token", "--rpc", url, "--state", str(tmp_path / "x.json")]
    result = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("error: cannot reach the chain")
