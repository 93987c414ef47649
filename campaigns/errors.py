"""Typed errors of the campaigns app; each has a stable machine-readable code (`mrmarket.errors.ApplicationError`)."""

from __future__ import annotations

from mrmarket.errors import ApplicationError


class CampaignsError(ApplicationError):
    code = "campaigns_error"


class CampaignNotFound(CampaignsError):
    code = "campaign_not_found"
    status = 404


class InvalidMetadata(CampaignsError):
    code = "invalid_metadata"


class PairNotListed(CampaignsError):
    code = "pair_not_listed"


class InsufficientBalance(CampaignsError):
    code = "insufficient_balance"


class BudgetNotApproved(CampaignsError):
    code = "budget_not_approved"
    status = 409


class FactoryNotConfigured(CampaignsError):
    code = "factory_not_configured"
    status = 503


class NotAToken(CampaignsError):
    """The reward token address holds no contract, or one that does not answer as an ERC-20."""

    code = "not_a_token"


class ChainUnavailable(CampaignsError):
    """The chain's node did not answer a read the wizard needs (refused, timed out, or answered nonsense)."""

    code = "chain_unavailable"
    status = 503
