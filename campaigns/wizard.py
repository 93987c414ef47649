"""The creator wizard's draft (kept in the signed-in browser's session, so it survives a reload and can be resumed)
and its review: the campaign prepared for the creator's wallet from a draft whose every step validates now.

The draft belongs to the address that signed in: a different address starts a new one. Its salt is drawn once, so
preparing the same draft again predicts the same campaign address; "start over" draws a new one."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from django.contrib.sessions.backends.base import SessionBase
from web3 import Web3

from campaigns import services
from campaigns.chain_reads import GasEstimate, gas_estimates, token_allowance
from campaigns.domain.metadata import metadata_hash
from campaigns.wizard_forms import DraftState, WizardForm, budget_facts, draft_walk, fee_bps
from contracts import load_artifact
from execution.domain.units import for_people
from mrmarket.chain import get_web3
from mrmarket.oracle_addresses import oracle_address

SESSION_DRAFT = "campaign_wizard"
ERROR_ARTIFACTS = ("CampaignFactory", "Campaign", "DevToken")


@dataclass(frozen=True)
class Draft:
    creator: str
    salt: str
    steps: dict[str, dict[str, str]]


def draft_get(session: SessionBase, *, creator: str) -> Draft:
    """The signed-in creator's draft (an empty one, with a fresh salt, when there is none or it was another's)."""
    stored = session.get(SESSION_DRAFT)
    if not isinstance(stored, dict) or stored.get("creator") != creator.lower():
        return Draft(creator=creator.lower(), salt="0x" + os.urandom(32).hex(), steps={})
    return Draft(creator=stored["creator"], salt=stored["salt"], steps=dict(stored.get("steps") or {}))


def draft_save_step(session: SessionBase, *, draft: Draft, form: WizardForm) -> Draft:
    """Keep a validated step's text; choosing another template drops the scoring step (its bounds differ)."""
    steps = dict(draft.steps)
    previous = steps.get(form.step)
    steps[form.step] = form.stored()
    if form.step == "template" and previous is not None and previous != steps["template"]:
        steps.pop("scoring", None)
    saved = Draft(creator=draft.creator, salt=draft.salt, steps=steps)
    session[SESSION_DRAFT] = {"creator": saved.creator, "salt": saved.salt, "steps": saved.steps}
    return saved


def draft_clear(session: SessionBase) -> None:
    session.pop(SESSION_DRAFT, None)


def draft_state(draft: Draft, *, upto: str | None = None) -> DraftState:
    return draft_walk(draft.steps, creator=draft.creator, upto=upto)


@dataclass(frozen=True)
class Review:
    prepared: services.PreparedCampaign
    chain_id: int
    creator: str
    token: dict[str, Any]
    budget: int
    allowance: int
    facts: dict[str, Any]
    gas: list[GasEstimate]
    metadata_json: str  # pretty-printed for people; the hash is over the canonical bytes, not this text

    def signing(self, *, status_url: str, campaign_url: str) -> dict[str, Any]:
        """What the wallet module reads (the review page's #campaign-prepared)."""
        return {
            "chain_id": self.chain_id,
            "creator": self.creator,
            "predicted_address": self.prepared.predicted_address,
            "metadata_hash": self.prepared.metadata_hash,
            "token": self.token,
            "budget": str(self.budget),
            "transactions": [
                {k: t[k] for k in ("kind", "to", "data", "value", "purpose")} for t in self.prepared.transactions
            ],
            "errors_abi": errors_abi(),
            "status_url": status_url,
            "campaign_url": campaign_url,
        }


def errors_abi() -> list[dict[str, Any]]:
    """Every custom error the wallet can meet: the factory's, the campaign's and the dev token's (OpenZeppelin's)."""
    seen: set[str] = set()
    entries = []
    for name in ERROR_ARTIFACTS:
        for entry in load_artifact(name).abi:
            key = entry.get("name", "") + str([i.get("type") for i in entry.get("inputs", [])])
            if entry.get("type") == "error" and key not in seen:
                seen.add(key)
                entries.append(entry)
    return entries


def campaign_wizard_review(*, draft: Draft, state: DraftState, uri_base: str, created_by_id: int | None) -> Review:
    """Prepare the draft's campaign (the same salt each time: the same address) and re-read the balance, the
    allowance and the gas; `state` must be a complete walk (every step done)."""
    context = state.context
    budget = context.budget
    template = context.template
    assert template is not None
    assert budget
    reputation = oracle_address("reputation")
    prepared = services.campaign_prepare(
        creator=draft.creator,
        template_id=template.id,
        reward_token=budget["token"],
        exchange=context.market["exchange"],
        pair=context.market["pair"],
        start=budget["start"],
        end=budget["end"],
        budget=budget["budget"],
        oracles={
            "recording": oracle_address("recording"),
            "reputation": reputation,
            "fee_recipient": reputation,
            "fee_bps": fee_bps(),
        },
        scoring_overrides=context.scoring or None,
        title=context.market.get("title", ""),
        uri_base=uri_base,
        created_by_id=created_by_id,
        salt=bytes.fromhex(draft.salt.removeprefix("0x")),
        epoch_seconds=budget["epoch_seconds"],
    )
    assert "0x" + metadata_hash(prepared.metadata).hex() == prepared.metadata_hash
    token = budget["token"]
    allowance = token_allowance(token=token["address"], owner=draft.creator, spender=prepared.predicted_address)
    gas = gas_estimates(
        creator=draft.creator,
        transactions=prepared.transactions,
        token=token["address"],
        spender=prepared.predicted_address,
        budget=budget["budget"],
    )
    facts = budget_facts(budget, context)
    facts["gas_cost"] = gas_cost_text(gas, gas_price=int(get_web3().eth.gas_price))
    facts["allowance"] = for_people(allowance, token["decimals"], token["symbol"])
    facts["balance"] = for_people(budget["balance"], token["decimals"], token["symbol"])
    return Review(
        prepared=prepared,
        chain_id=int(prepared.metadata["chain_id"]),
        creator=Web3.to_checksum_address(draft.creator),
        token=dict(token),
        budget=budget["budget"],
        allowance=allowance,
        facts=facts,
        gas=gas,
        metadata_json=_pretty(prepared.metadata),
    )


def gas_cost_text(gas: list[GasEstimate], *, gas_price: int) -> str:
    """What the two transactions cost in the chain's own coin at the node's gas price now (18 decimals, as every
    EVM chain's native coin has); an estimate: the wallet sets the price it pays."""
    total = sum(g.gas or 0 for g in gas)
    cost = for_people(total * gas_price, 18, "")
    gwei = for_people(gas_price, 9, "gwei")
    return f"about {cost.strip()} of the chain's coin ({total:,} gas at {gwei})"


def _pretty(metadata: dict[str, Any]) -> str:
    return json.dumps(metadata, indent=2, sort_keys=True)
