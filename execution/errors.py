"""Typed errors of the execution app; each has a stable machine-readable code (`mrmarket.errors.ApplicationError`)."""

from __future__ import annotations

from mrmarket.errors import ApplicationError, Conflict


class ExecutionError(ApplicationError):
    code = "execution_error"


class LedgerConflict(Conflict):
    code = "ledger_idempotency_conflict"


class LedgerOverdraft(ExecutionError):
    code = "ledger_overdraft"


class InvalidOrderTransition(ExecutionError):
    code = "invalid_order_transition"
    status = 409


class OrderNotResumable(ExecutionError):
    """A paused order that resume cannot bring back: it has no job, or it was paused for a reason its executor
    cannot undo (the job failed, stopped or was revoked, or a lost job could not be replaced). Nothing changed; the
    operator stops the order instead, which brings its funds home."""

    code = "not_resumable"
    status = 409


class JobNotHalted(OrderNotResumable):
    """The executor refused to resume the job because it is not halted (`not_halted`): it runs already (resumed on
    the executor; the next sync records it) or it ended. Nothing changed in Django."""

    code = "job_not_halted"


class OrderNotRefundable(ExecutionError):
    """The order cannot be refunded: it traded, or some of its funds are outside custody or on their way
    (`extra`: its state and the reason). Nothing was changed."""

    code = "not_refundable"
    status = 409


class KeyPermissionsMismatch(ExecutionError):
    code = "key_permissions_mismatch"


class AccountRevoked(ExecutionError):
    code = "exchange_account_revoked"
    status = 409


class CredentialsNotHeld(ExecutionError):
    """This process holds no master key (the public web process, ADR 0015): a stored credential is opened only by
    a worker; queue a task instead."""

    code = "credentials_not_held"
    status = 500


class CredentialsUntrusted(ExecutionError):
    """A stored credential row is not vouched for by a configured enrolment verification key (unsigned, signed
    by another key, or copied from another row): it is not opened, whoever wrote it into the database."""

    code = "credentials_untrusted"
    status = 500


class ExecutorUnavailable(ExecutionError):
    """The executor did not answer (timeout, connection refused, 5xx): retry later; nothing was decided."""

    code = "executor_unavailable"
    status = 503


class ExecutorRefused(ExecutionError):
    """The executor answered no; `extra.executor_code` carries its own error code."""

    code = "executor_refused"
    status = 502


class ExecutorNotConfigured(ExecutionError):
    code = "executor_not_configured"
    status = 503


class RoutingRefused(ExecutionError):
    """Executors could not be discovered safely (the EasyEnclave control plane is unreachable or failed its own
    attestation): no job is routed until it passes again."""

    code = "routing_refused"
    status = 503


class ReportRejected(ExecutionError):
    """A report failed verification (schema, digest, signature, chain): nothing of it is stored."""

    code = "report_rejected"
    status = 422


class OrderRejected(ExecutionError):
    """An MM order (or a step of one) refused on what it asks for, before any money moves."""

    code = "mm_order_rejected"


class WithdrawalRefused(OrderRejected):
    code = "withdrawal_refused"


class CustodyNotConfigured(ExecutionError):
    code = "custody_not_configured"
    status = 503


class CampaignBindingInvalid(OrderRejected):
    """The campaign and reward address an MM order asks to serve are malformed or incomplete: both are given, or
    neither, each a 0x address of 40 hex digits, with the campaign's chain id."""

    code = "campaign_binding_invalid"


class RewardAddressInvalid(CampaignBindingInvalid):
    code = "reward_address_invalid"


class AlertUnknown(ExecutionError):
    code = "alert_unknown"
    status = 404


class AlertAlreadyResolved(ExecutionError):
    """The alert was resolved already (by a person, or by its rule when the condition cleared): nothing to do."""

    code = "alert_already_resolved"
    status = 409


class AlertAlreadyAcknowledged(ExecutionError):
    code = "alert_already_acknowledged"
    status = 409


class AlertNotYours(ExecutionError):
    """The alert concerns another operator (or the system), and the user may not handle every alert."""

    code = "alert_not_yours"
    status = 403
