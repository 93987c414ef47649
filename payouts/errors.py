"""Typed errors of the payouts app; each has a stable machine-readable code (`mrmarket.errors.ApplicationError`)."""

from __future__ import annotations

from mrmarket.errors import ApplicationError


class PayoutsError(ApplicationError):
    code = "payouts_error"


class CampaignMetadataMissing(PayoutsError):
    code = "campaign_metadata_missing"


class EpochNotClosable(PayoutsError):
    code = "epoch_not_closable"


class ArtifactNotFound(PayoutsError):
    code = "artifact_not_found"
    status = 404


class EpochNotStarted(PayoutsError):
    code = "epoch_not_started"
