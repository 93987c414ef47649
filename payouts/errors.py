"""Typed errors of the payouts app; each has a stable machine-readable code (`mrmarket.errors.ApplicationError`)."""

from __future__ import annotations

from mrmarket.errors import ApplicationError


class PayoutsError(ApplicationError):
    code = "payouts_error"


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
