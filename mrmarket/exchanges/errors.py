"""Typed errors of exchange connectivity; each has a stable machine-readable code (STYLE.md)."""

from __future__ import annotations

from mrmarket.errors import ApplicationError


class ExchangeError(ApplicationError):
    code = "exchange_error"


class UnknownExchange(ExchangeError):
    code = "unknown_exchange"


class ExchangeUnavailable(ExchangeError):
    """The exchange did not answer (unreachable, overloaded, in maintenance, rate-limiting): retry later."""

    code = "exchange_unavailable"
    status = 503


class MarketNotListed(ExchangeError):
    code = "market_not_listed"


class InvalidExchangeKey(ExchangeError):
    code = "invalid_exchange_key"


class PermissionsUnverifiable(ExchangeError):
    code = "permissions_unverifiable"
