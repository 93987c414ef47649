"""Typed errors of the execution app; each has a stable machine-readable code (STYLE.md)."""

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


class UnknownExchange(ExecutionError):
    code = "unknown_exchange"


class ExchangeUnavailable(ExecutionError):
    code = "exchange_unavailable"
    status = 503


class MarketNotListed(ExecutionError):
    code = "market_not_listed"


class InvalidExchangeKey(ExecutionError):
    code = "invalid_exchange_key"


class PermissionsUnverifiable(ExecutionError):
    code = "permissions_unverifiable"


class KeyPermissionsMismatch(ExecutionError):
    code = "key_permissions_mismatch"


class AccountRevoked(ExecutionError):
    code = "exchange_account_revoked"
    status = 409
