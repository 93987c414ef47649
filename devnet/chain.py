"""The local chain: Anvil from the npm package, the deterministic dev accounts, and contract deployment.

Devnet and test infrastructure: production code reaches any EVM chain through web3.py and `CHAIN_RPC_URL`,
and never imports this module.

    python -m devnet.chain deploy-token --rpc URL --state FILE    # idempotent; prints {"token": "0x..."}
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, cast

from eth_account import Account
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.types import TxParams

from contracts import load_artifact
from devnet.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
DEV_CHAIN_ID = 31337


class ChainError(RuntimeError):
    pass


@dataclass(frozen=True)
class DevAccount:
    address: ChecksumAddress
    private_key: str  # 0x-prefixed hex; dev chain only

    def __repr__(self) -> str:
        return f"DevAccount({self.address})"


@cache
def dev_accounts(count: int = 10) -> tuple[DevAccount, ...]:
    """Anvil's default accounts, derived from its well-known mnemonic (m/44'/60'/0'/0/i)."""
    Account.enable_unaudited_hdwallet_features()
    accounts = []
    for i in range(count):
        acct = Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")
        accounts.append(DevAccount(address=Web3.to_checksum_address(acct.address), private_key="0x" + acct.key.hex()))
    return tuple(accounts)


class Anvil:
    """An Anvil node on a loopback port; stopped (and reaped) by `stop()` or on leaving a `with` block."""

    def __init__(
        self,
        *,
        port: int | None = None,
        chain_id: int = DEV_CHAIN_ID,
        block_time: float | None = None,
        state_file: Path | None = None,
    ) -> None:
        self.port = port or free_port()
        self.chain_id = chain_id
        self.block_time = block_time
        self.state_file = state_file
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        argv = [str(ANVIL), "--port", str(self.port), "--chain-id", str(self.chain_id), "--silent"]
        if self.block_time is not None:
            argv += ["--block-time", str(self.block_time)]
        if self.state_file is not None:
            argv += ["--state", str(self.state_file)]
        return argv

    def start(self, *, timeout: float = 30.0) -> Anvil:
        if not ANVIL.exists():
            raise ChainError("node_modules/.bin/anvil is missing: run `npm ci`")
        self._proc = subprocess.Popen(  # noqa: S603 - fixed argv
            self.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        w3 = Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": 2}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                self.stop()
                raise ChainError(f"anvil exited at start: {err.strip()[-500:]}")
            try:
                if w3.eth.chain_id == self.chain_id:
                    return self
            except Exception:  # noqa: S110 - not up yet
                pass
            time.sleep(0.1)
        self.stop()
        raise ChainError(f"anvil did not answer on {self.url} within {timeout}s")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        # The npm wrapper (node) starts the real binary: signal the whole process group, and wait until every
        # member is gone (the binary can outlive the wrapper by a moment), killing what is left after 10 s.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            proc.poll()  # reap the wrapper as soon as it exits
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs (zombies, already dead, do not count)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def connect(rpc_url: str, *, timeout: float = 10.0) -> Web3:
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
    try:
        w3.eth.chain_id  # noqa: B018 - probe the endpoint
    except Exception as exc:
        raise ChainError(f"cannot reach the chain at {rpc_url}: {type(exc).__name__}") from None
    return w3


def send(w3: Web3, tx: dict[str, Any], sender: DevAccount) -> Any:
    """Sign locally, send, and wait for the receipt; a reverted transaction raises."""
    tx = {
        **tx,
        "from": sender.address,
        "nonce": w3.eth.get_transaction_count(sender.address, "pending"),
        "chainId": w3.eth.chain_id,
    }
    if "gas" not in tx:
        tx["gas"] = w3.eth.estimate_gas(cast(TxParams, tx)) * 6 // 5  # 20 % headroom
    if "maxFeePerGas" not in tx and "gasPrice" not in tx:
        tx["gasPrice"] = w3.eth.gas_price
    signed = w3.eth.account.sign_transaction(tx, sender.private_key)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
    if receipt["status"] != 1:
        raise ChainError(f"transaction {tx_hash.hex()} reverted")
    return receipt


def deploy_contract(w3: Web3, artifact_name: str, *args: Any, sender: DevAccount) -> ChecksumAddress:
    artifact = load_artifact(artifact_name)
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    tx = factory.constructor(*args).build_transaction({"from": sender.address})
    receipt = send(w3, dict(tx), sender)
    address = receipt["contractAddress"]
    if not address:
        raise ChainError(f"deploying {artifact_name} returned no contract address")
    return Web3.to_checksum_address(address)


def deploy_dev_token(
    w3: Web3, *, sender: DevAccount, name: str = "Mr.Market Dev USD", symbol: str = "USDT", decimals: int = 6
) -> ChecksumAddress:
    return deploy_contract(w3, "DevToken", name, symbol, decimals, sender=sender)


def token(w3: Web3, address: str) -> Any:
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=load_artifact("DevToken").abi)


def mint(w3: Web3, token_address: str, to: str, amount: int, *, sender: DevAccount) -> None:
    tx = (
        token(w3, token_address)
        .functions.mint(Web3.to_checksum_address(to), amount)
        .build_transaction({"from": sender.address})
    )
    send(w3, dict(tx), sender)


def transfer(w3: Web3, token_address: str, to: str, amount: int, *, sender: DevAccount) -> str:
    tx = (
        token(w3, token_address)
        .functions.transfer(Web3.to_checksum_address(to), amount)
        .build_transaction({"from": sender.address})
    )
    return "0x" + bytes(send(w3, dict(tx), sender)["transactionHash"]).hex()


def ensure_dev_token(
    w3: Web3, state_file: Path, *, holders: Sequence[DevAccount] = (), amount: int = 10_000_000 * 10**6
) -> ChecksumAddress:
    """The demo's token: reused when the state file names a contract that exists on this chain, else deployed
    (and minted to `holders`) and recorded. Safe to call on every start."""
    chain_id = w3.eth.chain_id
    if state_file.exists():
        recorded = json.loads(state_file.read_text())
        address = recorded.get("token")
        if recorded.get("chain_id") == chain_id and address and w3.eth.get_code(Web3.to_checksum_address(address)):
            return Web3.to_checksum_address(address)
    deployer = dev_accounts()[0]
    address = deploy_dev_token(w3, sender=deployer)
    for holder in holders:
        mint(w3, address, holder.address, amount, sender=deployer)
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps({"chain_id": chain_id, "token": address}))
    return address


def ensure_base_token(
    w3: Web3, state_file: Path, *, holders: Sequence[DevAccount] = (), amount: int = 1_000_000 * 10**18
) -> ChecksumAddress:
    """The demo market's base asset (MMT, 18 decimals) beside the demo token: reused when the state file names a
    contract that exists on this chain, else deployed, minted to `holders` and recorded under `base_token`."""
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    address = state.get("base_token")
    if address and w3.eth.get_code(Web3.to_checksum_address(address)):
        return Web3.to_checksum_address(address)
    deployer = dev_accounts()[0]
    address = deploy_dev_token(w3, sender=deployer, name="Mr.Market Demo Token", symbol="MMT", decimals=18)
    for holder in holders:
        mint(w3, address, holder.address, amount, sender=deployer)
    state["base_token"] = address
    state_file.write_text(json.dumps(state))
    return address


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devnet.chain")
    sub = parser.add_subparsers(dest="command", required=True)
    deploy = sub.add_parser("deploy-token", help="deploy (or reuse) the demo token and mint to dev accounts 0-2")
    deploy.add_argument("--rpc", required=True)
    deploy.add_argument("--state", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        w3 = connect(args.rpc)
        address = ensure_dev_token(w3, args.state, holders=dev_accounts()[:3])
    except ChainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"token": address, "chain_id": w3.eth.chain_id}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
