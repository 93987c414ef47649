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


class OracleKeyNotConfigured(PayoutsError):
    """This process holds no key for the oracle role asked (only the worker that signs for it does)."""

    code = "oracle_key_not_configured"
    status = 503


class OracleChainMismatch(PayoutsError):
    """The chain the RPC endpoint serves is not the chain the transaction is for."""

    code = "oracle_chain_mismatch"


class OraclePurposeConflict(PayoutsError):
    """A transaction for this purpose is already stored with other contents: one purpose, one transaction."""

    code = "oracle_purpose_conflict"
    status = 409


class OracleCallRejected(PayoutsError):
    """The call reverts against the chain's current state (estimated before signing): nothing was signed."""

    code = "oracle_call_rejected"


class OracleChainUnavailable(PayoutsError):
    """The node refused or did not answer, and the chain's state does not explain it: retry later."""

    code = "oracle_chain_unavailable"
    status = 503


class InvalidOracleCall(PayoutsError):
    """An argument of an oracle call is malformed (an address, an epoch, a digest): nothing was stored."""

    code = "invalid_oracle_call"


class ResultsAlreadyRecordedDifferently(PayoutsError):
    """The escrow already holds another results hash for the epoch: recordResults can never change it."""

    code = "results_already_recorded_differently"
    status = 409


class SnapshotInvalid(PayoutsError):
    """A book snapshot that is neither a book nor a gap with its reason, or has an unknown source."""

    code = "book_snapshot_invalid"


# --- Reports from executors elsewhere (payouts.services.external_reports_submit) ----------------------------------


class AccountNotForParticipant(PayoutsError):
    """The exchange account named is not one of the participant's enrolled read-only accounts."""

    code = "account_not_for_participant"


class IdentityRateLimited(PayoutsError):
    """A signing key pushed more reports within the hour than `REPORTS_PER_IDENTITY_PER_HOUR` allows."""

    code = "identity_rate_limited"
    status = 429


class ReportKeyNotAttested(PayoutsError):
    """A report is signed by a key that no accepted attestation of an executor in good standing binds now."""

    code = "report_key_not_attested"
    status = 403


class ExternalReportInvalid(PayoutsError):
    """An envelope that is not a well-formed report signed by the key it names (`extra.reason_code` says which
    wire check refused it): nothing of the batch was stored."""

    code = "report_invalid"


class ExternalReportChainBroken(PayoutsError):
    """A report that does not continue the job's stored chain (a gap, a wrong prev_digest, a rewritten report, a
    change of key or job spec within the job): nothing of the batch was stored."""

    code = "report_chain_broken"


class ExternalReportWrongMarket(PayoutsError):
    """A report of another exchange or symbol than the campaign's market."""

    code = "report_market_mismatch"


class ExternalReportClaimed(PayoutsError):
    """The report is stored already for another account, or as a report of one of this system's MM orders: one
    executor's report counts once."""

    code = "report_already_claimed"
    status = 409


class SoftwareUnknown(PayoutsError):
    """The oracle cannot name the commit it runs, which a bundle must carry for anyone to recompute it."""

    code = "software_unknown"
    status = 503


class PayoutManifestMissing(PayoutsError):
    """A recorded epoch whose payout manifest is not in the artifact storage (lost, or never stored)."""

    code = "payout_manifest_missing"
    status = 409


class PayoutNotFound(PayoutsError):
    """The epoch's manifest pays the address nothing, or is not stored yet."""

    code = "payout_not_found"
    status = 404


class InvalidAddress(PayoutsError):
    code = "invalid_address"
    status = 400
