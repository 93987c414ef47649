"""The simulator's view of the chain through web3.py: ERC-20 Transfer logs to its deposit addresses, block hashes
for reorg checks, and transfers from its hot wallet. Blocking calls; funds.py runs them off the event loop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_utils import keccak
from web3 import Web3

ERC20_ABI: list[dict[str, Any]] = [
    {
        "name": "transfer",
        "type": "function",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "to", "type": "address"}, {"name": "amount", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
    },
    {
        "name": "decimals",
        "type": "function",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "", "type": "uint8"}],
    },
    {
        "name": "balanceOf",
        "type": "function",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
]
TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()


@dataclass(frozen=True)
class TransferLog:
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    token: str  # checksum address
    to: str  # checksum address
    value: int


def derive_deposit_key(seed: str, account_id: str) -> str:
    """The private key of an account's deposit address: deterministic, so the simulator can sweep it later."""
    return "0x" + keccak(text=f"{seed}:deposit:{account_id}").hex()


def address_of(private_key: str) -> str:
    return str(Account.from_key(private_key).address)


def _hex(value: Any) -> str:
    raw = bytes(value)
    return "0x" + raw.hex()


class ChainClient:
    def __init__(self, rpc_url: str, *, hot_wallet_key: str, timeout: float = 10.0) -> None:
        self.w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
        self.hot_key = hot_wallet_key
        self.hot_address = address_of(hot_wallet_key)

    def chain_id(self) -> int:
        return int(self.w3.eth.chain_id)

    def decimals(self, token: str) -> int:
        contract = self.w3.eth.contract(address=Web3.to_checksum_address(token), abi=ERC20_ABI)
        return int(contract.functions.decimals().call())

    def balance_of(self, token: str, owner: str) -> int:
        contract = self.w3.eth.contract(address=Web3.to_checksum_address(token), abi=ERC20_ABI)
        return int(contract.functions.balanceOf(Web3.to_checksum_address(owner)).call())

    def latest(self) -> int:
        return int(self.w3.eth.block_number)

    def block_hash(self, number: int) -> str | None:
        block = self.w3.eth.get_block(number)
        return _hex(block["hash"]) if block and block.get("hash") is not None else None

    def transfers_to(self, tokens: list[str], addresses: list[str], start: int, end: int) -> list[TransferLog]:
        if not tokens or not addresses or start > end:
            return []
        topics_to = ["0x" + "00" * 12 + a[2:].lower() for a in addresses]
        logs = self.w3.eth.get_logs(
            {
                "fromBlock": start,
                "toBlock": end,
                "address": [Web3.to_checksum_address(t) for t in tokens],
                "topics": [TRANSFER_TOPIC, None, topics_to],
            }
        )
        out = []
        for log in logs:
            if log.get("removed"):
                continue
            to = Web3.to_checksum_address("0x" + bytes(log["topics"][2])[-20:].hex())
            out.append(
                TransferLog(
                    tx_hash=_hex(log["transactionHash"]),
                    log_index=int(log["logIndex"]),
                    block_number=int(log["blockNumber"]),
                    block_hash=_hex(log["blockHash"]),
                    token=Web3.to_checksum_address(log["address"]),
                    to=to,
                    value=int.from_bytes(bytes(log["data"])[:32], "big"),
                )
            )
        return out

    def receipt_block(self, tx_hash: str) -> tuple[int, str, bool] | None:
        """(block number, block hash, succeeded) of a mined transaction, or None when it is not (or no longer)
        in the canonical chain."""
        try:
            receipt = self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except Exception:
            return None
        if receipt is None:
            return None
        return int(receipt["blockNumber"]), _hex(receipt["blockHash"]), receipt["status"] == 1

    def send_transfer(self, token: str, to: str, amount: int) -> str:
        """Sign locally with the hot wallet's key and send; returns the transaction hash (not yet mined)."""
        contract = self.w3.eth.contract(address=Web3.to_checksum_address(token), abi=ERC20_ABI)
        tx = contract.functions.transfer(Web3.to_checksum_address(to), amount).build_transaction(
            {
                "from": Web3.to_checksum_address(self.hot_address),
                "nonce": self.w3.eth.get_transaction_count(Web3.to_checksum_address(self.hot_address), "pending"),
                "chainId": self.chain_id(),
                "gasPrice": self.w3.eth.gas_price,
            }
        )
        signed = self.w3.eth.account.sign_transaction(tx, self.hot_key)
        return _hex(self.w3.eth.send_raw_transaction(signed.raw_transaction))
