"""Typed errors of the payouts app; each has a stable machine-readable code (`mrmarket.errors.ApplicationError`)."""

from __future__ import annotations

from mrmarket.errors import ApplicationError


class PayoutsError(ApplicationError):
    code = "payouts_error"


class MMOrderNotForParticipant(PayoutsError):
    """An MM order named at joining that is not the joiner's, or makes markets for another campaign or address."""

    code = "mm_order_not_for_participant"


class ParticipantOwnedByAnother(PayoutsError):
    """The reward address joined this campaign already, through another user; only that user links to it."""

    code = "participant_owned_by_another"
    status = 409


class CampaignUnknown(PayoutsError):
    code = "campaign_unknown"
    status = 404
