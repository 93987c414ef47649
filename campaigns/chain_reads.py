"""What the creator wizard reads from the chain before anything is signed: the reward token (symbol, decimals, the
creator's balance and allowance) and the gas the two transactions would use. Reads only: nothing is sent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi import encode as abi_encode
from web3 import Web3
from web3.exceptions import ContractLogicError, Web3Exception

from campaigns.errors import NotAToken
from campaigns.services import ERC20_ABI
from mrmarket.chain import get_web3

SYMBOL_MAX = 20  # the metadata schema's reward_token.symbol
# OpenZeppelin's ERC20 keeps `_allowances` in storage slot 1 (after `_balances`); the gas estimate of create-and-fund
# overrides that slot, and checks by reading allowance() under the same override that the guess held.
OZ_ALLOWANCES_SLOT = 1
# What create-and-fund used on Anvil (a receipt's gasUsed, docs/gas.md): shown, labelled, when the node cannot
# estimate it before approve is mined.
CREATE_AND_FUND_GAS_MEASURED = 184_470


@dataclass(frozen=True)
class TokenFacts:
    address: str  # checksummed
    symbol: str
    decimals: int
    balance: int  # the owner's, base units


def token_facts(*, address: str, owner: str) -> TokenFacts:
    """The token's symbol and decimals and the owner's balance, from the chain; NotAToken when it is none."""
    w3 = get_web3()
    checksum = Web3.to_checksum_address(address)
    chain_id = w3.eth.chain_id
    if not w3.eth.get_code(checksum):
        raise NotAToken(f"no contract at {checksum} on chain {chain_id}", extra={"address": checksum})
    token = w3.eth.contract(address=checksum, abi=ERC20_ABI)
    try:
        symbol = str(token.functions.symbol().call())
        decimals = int(token.functions.decimals().call())
        balance = int(token.functions.balanceOf(Web3.to_checksum_address(owner)).call())
    except (ContractLogicError, Web3Exception, ValueError, OverflowError):
        raise NotAToken(
            f"the contract at {checksum} does not answer symbol(), decimals() and balanceOf() as an ERC-20 token",
            extra={"address": checksum},
        ) from None
    return TokenFacts(address=checksum, symbol=symbol, decimals=decimals, balance=balance)


def token_allowance(*, token: str, owner: str, spender: str) -> int:
    w3 = get_web3()
    contract = w3.eth.contract(address=Web3.to_checksum_address(token), abi=ERC20_ABI)
    return int(contract.functions.allowance(Web3.to_checksum_address(owner), Web3.to_checksum_address(spender)).call())


@dataclass(frozen=True)
class GasEstimate:
    kind: str  # "approve" | "create"
    gas: int | None
    method: str  # how the figure was obtained, for the page

    @property
    def text(self) -> str:
        return "—" if self.gas is None else f"{self.gas:,} gas"


def _allowance_slot(owner: str, spender: str) -> str:
    inner = Web3.keccak(abi_encode(["address", "uint256"], [owner, OZ_ALLOWANCES_SLOT]))
    return Web3.to_hex(Web3.keccak(abi_encode(["address", "bytes32"], [spender, inner])))


def gas_estimates(
    *, creator: str, transactions: list[dict[str, Any]], token: str, spender: str, budget: int
) -> list[GasEstimate]:
    """`eth_estimateGas` of each transaction from the creator. Create-and-fund pulls the budget, so before approve
    is mined it is estimated with the allowance overridden (a state override of the token's storage) where the node
    supports it and the token keeps allowances where OpenZeppelin's does; otherwise it is not estimated."""
    w3 = get_web3()
    owner = Web3.to_checksum_address(creator)
    needs_approve = any(t["kind"] == "approve" for t in transactions)
    override: dict[Any, Any] | None = None
    if needs_approve:
        value = "0x" + budget.to_bytes(32, "big").hex()
        candidate = {Web3.to_checksum_address(token): {"stateDiff": {_allowance_slot(owner, spender): value}}}
        if _override_holds(w3, owner=owner, token=token, spender=spender, budget=budget, override=candidate):
            override = candidate
    estimates = []
    for tx in transactions:
        call = {"from": owner, "to": Web3.to_checksum_address(tx["to"]), "data": tx["data"], "value": int(tx["value"])}
        if tx["kind"] == "create" and needs_approve and override is None:
            estimates.append(
                GasEstimate(
                    kind="create",
                    gas=CREATE_AND_FUND_GAS_MEASURED,
                    method="not estimated: it cannot be simulated before approve is mined, and this node or token "
                    "does not take the allowance override; the figure is the one measured on Anvil, docs/gas.md",
                )
            )
        elif tx["kind"] == "create" and override is not None:
            estimates.append(_estimate(w3, "create", call, override, "eth_estimateGas, the allowance overridden"))
        else:
            estimates.append(_estimate(w3, tx["kind"], call, None, "eth_estimateGas"))
    return estimates


def _override_holds(w3: Web3, *, owner: str, token: str, spender: str, budget: int, override: dict[Any, Any]) -> bool:
    contract = w3.eth.contract(address=Web3.to_checksum_address(token), abi=ERC20_ABI)
    data = contract.functions.allowance(owner, Web3.to_checksum_address(spender))._encode_transaction_data()
    try:
        raw = w3.eth.call({"to": contract.address, "data": data}, "latest", override)
    except (Web3Exception, ValueError):
        return False
    return int.from_bytes(bytes(raw), "big") == budget


def _estimate(w3: Web3, kind: str, call: dict[str, Any], override: dict[Any, Any] | None, method: str) -> GasEstimate:
    try:
        gas = w3.eth.estimate_gas(call, "latest", override) if override else w3.eth.estimate_gas(call)  # type: ignore[arg-type]
    except (ContractLogicError, Web3Exception, ValueError) as exc:
        return GasEstimate(kind=kind, gas=None, method=f"not estimated: the node refused ({type(exc).__name__})")
    return GasEstimate(kind=kind, gas=int(gas), method=method)
