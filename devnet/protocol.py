"""Devnet tooling for the campaign escrows: deploy the factory, create and fund campaigns, move time, and
decode custom errors. Used by the contract tests, the gas benchmark and `make demo`; never by production code
(the campaigns app builds its own transactions for the creator's wallet to sign)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_typing import ChecksumAddress
from web3 import Web3

from contracts import load_artifact
from devnet.chain import DevAccount, deploy_contract, send

# The demo's campaign: short epochs and samples, so that within minutes of `make demo` an epoch has been measured,
# closed and recorded on chain (a real campaign would run daily epochs of one-minute samples).
DEMO_EPOCH_SECONDS = 180
DEMO_EPOCHS = 2_880  # six days
DEMO_SCORING = {"sample_seconds": 10, "min_rest_seconds": 30, "max_spread_bps": 100}


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


def ensure_demo_protocol(w3: Web3, state_file: Path) -> dict[str, Any]:
    """The demo's token, factory and one funded campaign (stable-depth template on MMT/USDT): reused when the
    state file names contracts that exist on this chain, else deployed and recorded. Safe on every start."""
    from campaigns.domain.metadata import metadata_hash
    from campaigns.domain.templates import build_metadata
    from devnet.chain import dev_accounts, ensure_dev_token
    from devnet.chain import token as token_contract

    accounts = dev_accounts()
    deployer, creator, oracle = accounts[0], accounts[1], accounts[2]
    token_address = ensure_dev_token(w3, state_file, holders=accounts[:4])  # 3 is the dev custody wallet
    state = json.loads(state_file.read_text())
    if state.get("factory") and state.get("campaign") and w3.eth.get_code(Web3.to_checksum_address(state["campaign"])):
        return state
    factory_address = deploy_factory(w3, sender=deployer)
    start = now(w3) + 60
    end = start + DEMO_EPOCHS * DEMO_EPOCH_SECONDS
    budget = 7_000 * 10**6
    metadata = build_metadata(
        template_id="stable_depth",
        chain_id=w3.eth.chain_id,
        reward_token={"address": token_address, "symbol": "USDT", "decimals": 6},
        exchange="binance",
        pair="MMT/USDT",
        start=start,
        end=end,
        budget=budget,
        title="Demo: stable depth on MMT/USDT",
        epoch_seconds=DEMO_EPOCH_SECONDS,
        scoring_overrides=DEMO_SCORING,
    )
    digest = metadata_hash(metadata)
    params = CampaignParams(
        token_address,
        oracle.address,
        oracle.address,
        oracle.address,
        start,
        end,
        DEMO_EPOCH_SECONDS,
        2 * 86_400,
        budget,
        0,
        digest,
    )
    salt = b"\x00" * 31 + b"\x01"
    predicted = (
        factory(w3, factory_address).functions.predictCampaignAddress(params.as_tuple(), creator.address, salt).call()
    )
    call(w3, token_contract(w3, token_address).functions.approve(predicted, budget), creator)
    address, _ = create_campaign(
        w3,
        factory_address,
        params,
        creator=creator,
        uri=f"urn:mrmarket:metadata:{digest.hex()}",
        salt=salt,
        fund_now=True,
    )
    (state_file.parent / f"metadata-{digest.hex()}.json").write_text(json.dumps(metadata, indent=2))
    state.update({"factory": factory_address, "campaign": address, "metadata_hash": "0x" + digest.hex()})
    state_file.write_text(json.dumps(state))
    return state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devnet.protocol")
    sub = parser.add_subparsers(dest="command", required=True)
    boot = sub.add_parser("bootstrap", help="deploy (or reuse) the demo token, factory and campaign")
    boot.add_argument("--rpc", required=True)
    boot.add_argument("--state", required=True, type=Path)
    args = parser.parse_args(argv)
    from devnet.chain import ChainError, connect

    try:
        state = ensure_demo_protocol(connect(args.rpc), args.state)
    except ChainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(state))
    return 0


if __name__ == "__main__":
    sys.exit(main())
