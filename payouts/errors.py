"""Typed errors of the payouts app; each has a stable machine-readable code (`mrmarket.errors.ApplicationError`)."""

from __future__ import annotations

from mrmarket.errors import ApplicationError


class PayoutsError(ApplicationError):
    code = "payouts_error"


class CampaignMetadataMissing(PayoutsError):
    code = "campaign_metadata_missing"


class ArtifactNotFound(PayoutsError):
    code = "artifact_not_found"
    status = 404


class EpochNotStarted(PayoutsError):
    code = "epoch_not_started"


class CrossCheckFailed(PayoutsError):
    """The exchange answered the cross-check in a way that cannot be read as a confirmation or a refusal (a
    malformed answer, an unexpected error): nothing is confirmed or unconfirmed on it."""

    code = "crosscheck_failed"


class CrossCheckUnsupported(PayoutsError):
    """No cross-check is known for the exchange (where its exact numbers are written in its answers)."""

    code = "crosscheck_unsupported"


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
