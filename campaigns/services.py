"""Writes of the campaigns app: `<entity>_<action>(*, ...)`, typed, atomic, idempotent where they touch the outside.

Creating a campaign is signed by the creator's own wallet (EIP-1193), never by the server: these services
build the metadata and the unsigned transactions, check what can be checked on chain without sending anything
(balance, allowance), and store the metadata document so that its URI resolves.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from web3 import Web3

from campaigns.domain.metadata import MetadataError, metadata_hash
from campaigns.domain.templates import build_metadata
from campaigns.errors import (
    BudgetNotApproved,
    FactoryNotConfigured,
    InsufficientBalance,
    InvalidMetadata,
    PairNotListed,
)
from campaigns.models import CampaignMetadata
from contracts import load_artifact
from mrmarket.chain import get_web3
from mrmarket.exchanges.client import exchange_symbols

ERC20_ABI = load_artifact("DevToken").abi  # only the standard ERC-20 functions are used


@dataclass(frozen=True)
class PreparedCampaign:
    metadata: dict[str, Any]
    metadata_hash: str
    metadata_uri: str
    predicted_address: str
    salt: str
    transactions: list[dict[str, Any]]  # unsigned, in order: approve (when needed), then create-and-fund


def _factory(w3: Web3) -> Any:
    if not settings.CAMPAIGN_FACTORY_ADDRESS:
        raise FactoryNotConfigured("no campaign factory is configured (CAMPAIGN_FACTORY_ADDRESS)")
    return w3.eth.contract(
        address=Web3.to_checksum_address(settings.CAMPAIGN_FACTORY_ADDRESS), abi=load_artifact("CampaignFactory").abi
    )


def _params_tuple(metadata: dict[str, Any], digest: bytes, oracles: dict[str, str]) -> tuple[Any, ...]:
    return (
        Web3.to_checksum_address(metadata["reward_token"]["address"]),
        Web3.to_checksum_address(oracles["recording"]),
        Web3.to_checksum_address(oracles["reputation"]),
        Web3.to_checksum_address(oracles["fee_recipient"]),
        metadata["start"],
        metadata["end"],
        metadata["epoch_seconds"],
        metadata["dispute_window_seconds"],
        int(metadata["budget"]),
        oracles.get("fee_bps", 0),
        digest,
    )


def campaign_prepare(
    *,
    creator: str,
    template_id: str,
    reward_token: dict[str, Any],
    exchange: str,
    pair: str,
    start: int,
    end: int,
    budget: int,
    oracles: dict[str, Any],
    scoring_overrides: dict[str, Any] | None = None,
    title: str = "",
    uri_base: str,
    created_by_id: int | None = None,
    salt: bytes | None = None,
    epoch_seconds: int | None = None,
) -> PreparedCampaign:
    """Build and check a campaign for the creator's wallet; sends nothing to the chain. The same inputs and `salt`
    give the same metadata, hash and predicted address (the wizard keeps its salt in the draft, so a reload prepares
    the same campaign); without a salt a fresh one is drawn."""
    w3 = get_web3()
    try:
        metadata = build_metadata(
            template_id=template_id,
            chain_id=w3.eth.chain_id,
            reward_token=reward_token,
            exchange=exchange,
            pair=pair,
            start=start,
            end=end,
            budget=budget,
            title=title,
            scoring_overrides=scoring_overrides,
            epoch_seconds=epoch_seconds,
        )
    except MetadataError as exc:
        raise InvalidMetadata("the campaign metadata is invalid", extra={"fields": exc.fields}) from None
    listed = exchange_symbols(exchange)
    if pair not in listed:
        raise PairNotListed(
            f"{exchange} does not list {pair}", extra={"exchange": exchange, "pair": pair, "listed": sorted(listed)}
        )
    digest = metadata_hash(metadata)
    factory = _factory(w3)
    creator = Web3.to_checksum_address(creator)
    salt = os.urandom(32) if salt is None else salt
    params = _params_tuple(metadata, digest, oracles)
    predicted = factory.functions.predictCampaignAddress(params, creator, salt).call()
    token = w3.eth.contract(address=Web3.to_checksum_address(reward_token["address"]), abi=ERC20_ABI)
    balance = token.functions.balanceOf(creator).call()
    if balance < budget:
        raise InsufficientBalance(
            "the creator's balance does not cover the budget", extra={"balance": str(balance), "budget": str(budget)}
        )
    uri = f"{uri_base.rstrip('/')}/0x{digest.hex()}"
    with transaction.atomic():
        CampaignMetadata.objects.get_or_create(
            hash="0x" + digest.hex(), defaults={"document": metadata, "created_by_id": created_by_id}
        )
    transactions = []
    if token.functions.allowance(creator, predicted).call() < budget:
        approve = token.functions.approve(predicted, budget)
        transactions.append(
            {
                "kind": "approve",
                "to": token.address,
                "data": approve._encode_transaction_data(),
                "value": "0",
                "purpose": "approve the campaign to pull its budget",
            }
        )
    create = factory.functions.createCampaign(params, uri, salt, True)
    transactions.append(
        {
            "kind": "create",
            "to": factory.address,
            "data": create._encode_transaction_data(),
            "value": "0",
            "purpose": "create and fund the campaign",
        }
    )
    return PreparedCampaign(
        metadata=metadata,
        metadata_hash="0x" + digest.hex(),
        metadata_uri=uri,
        predicted_address=predicted,
        salt="0x" + salt.hex(),
        transactions=transactions,
    )


def campaign_check_funding(*, creator: str, predicted_address: str, token_address: str, budget: int) -> None:
    """Refuse, before the wallet sends create-and-fund, when the budget is not approved to the campaign."""
    w3 = get_web3()
    token = w3.eth.contract(address=Web3.to_checksum_address(token_address), abi=ERC20_ABI)
    allowance = token.functions.allowance(Web3.to_checksum_address(creator), predicted_address).call()
    if allowance < budget:
        raise BudgetNotApproved(
            "the creator has not approved the budget to the campaign address",
            extra={"allowance": str(allowance), "budget": str(budget), "spender": predicted_address},
        )
