"""Devnet tooling for the campaign escrows: deploy the factory, create and fund campaigns, move time, and
decode custom errors. Used by the contract tests, the gas benchmark and `make demo`; never by production code
(the campaigns app builds its own transactions for the creator's wallet to sign)."""

from __future__ import annotations

from dataclasses import astuple, dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_typing import ChecksumAddress
from web3 import Web3

from contracts import load_artifact
from devnet.chain import DevAccount, deploy_contract, send


@dataclass(frozen=True)
class CampaignParams:
    token: str
    recording_oracle: str
    reputation_oracle: str
    fee_recipient: str
    start: int
    end: int
    epoch_length: int
    dispute_window: int
    budget: int
    fee_bps: int
    metadata_hash: bytes

    def as_tuple(self) -> tuple[Any, ...]:
        return astuple(self)


def factory(w3: Web3, address: str) -> Any:
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=load_artifact("CampaignFactory").abi)


def campaign(w3: Web3, address: str) -> Any:
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=load_artifact("Campaign").abi)


def deploy_factory(w3: Web3, *, sender: DevAccount) -> ChecksumAddress:
    return deploy_contract(w3, "CampaignFactory", sender=sender)


def call(w3: Web3, fn: Any, sender: DevAccount) -> Any:
    """Send a contract function call from `sender`; returns the receipt (custom errors raise before sending)."""
    return send(w3, dict(fn.build_transaction({"from": sender.address})), sender)


def create_campaign(
    w3: Web3,
    factory_address: str,
    params: CampaignParams,
    *,
    creator: DevAccount,
    uri: str = "ipfs://demo",
    salt: bytes = b"\0" * 32,
    fund_now: bool = False,
) -> tuple[ChecksumAddress, Any]:
    f = factory(w3, factory_address)
    address = f.functions.predictCampaignAddress(params.as_tuple(), creator.address, salt).call()
    receipt = call(w3, f.functions.createCampaign(params.as_tuple(), uri, salt, fund_now), creator)
    return Web3.to_checksum_address(address), receipt


def now(w3: Web3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])


def travel_to(w3: Web3, timestamp: int) -> None:
    """Mine a block at `timestamp` (Anvil)."""
    w3.provider.make_request("evm_setNextBlockTimestamp", [timestamp])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def decode_error(data: str, *artifact_names: str) -> tuple[str, tuple[Any, ...]]:
    """Name and arguments of a custom error from its revert data, looked up in the artifacts' ABIs."""
    raw = bytes.fromhex(data.removeprefix("0x"))
    for name in artifact_names or ("Campaign", "CampaignFactory"):
        for item in load_artifact(name).abi:
            if item.get("type") != "error":
                continue
            types = [i["type"] for i in item["inputs"]]
            selector = Web3.keccak(text=f"{item['name']}({','.join(types)})")[:4]
            if raw[:4] == selector:
                values = abi_decode(types, raw[4:])
                return item["name"], tuple(
                    Web3.to_checksum_address(v) if t == "address" else v for t, v in zip(types, values, strict=True)
                )
    return "unknown", (data,)
