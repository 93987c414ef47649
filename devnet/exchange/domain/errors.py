"""Errors of the engine, carrying the Binance error code and message the REST layer sends back.

The codes and messages are Binance's own, so that ccxt's unmodified `binance` class raises the typed error it
would raise against the real exchange (its `exceptions` map matches on the exact message first, then on the
code; see tests/devnet/exchange/test_errors_map.py, which checks each one against ccxt's map).
"""

from __future__ import annotations


class ExchangeError(Exception):
    """An error answered as `{"code": code, "msg": msg}` with the given HTTP status."""

    def __init__(self, code: int, msg: str, *, http_status: int = 400, retry_after: int | None = None) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.http_status = http_status
        self.retry_after = retry_after  # seconds, for a 429 (the order-count window's reset)


# The catalogue: one constructor per answer, so the wire text is written exactly once.
def insufficient_balance() -> ExchangeError:
    return ExchangeError(-2010, "Account has insufficient balance for requested action.")


def would_take() -> ExchangeError:
    return ExchangeError(-2010, "Order would immediately match and take.")


def duplicate_order() -> ExchangeError:
    return ExchangeError(-2010, "Duplicate order sent.")


def trading_disabled() -> ExchangeError:
    return ExchangeError(-2010, "Rest API trading is not enabled.")


def cancel_trading_disabled() -> ExchangeError:
    return ExchangeError(-2011, "Rest API trading is not enabled.")


def unknown_order_cancel() -> ExchangeError:
    return ExchangeError(-2011, "Unknown order sent.")


def order_does_not_exist() -> ExchangeError:
    return ExchangeError(-2013, "Order does not exist.")


def filter_failure(name: str) -> ExchangeError:
    return ExchangeError(-1013, f"Filter failure: {name}")


def invalid_symbol() -> ExchangeError:
    return ExchangeError(-1121, "Invalid symbol.")


def bad_param(msg: str, code: int = -1102) -> ExchangeError:
    return ExchangeError(code, msg)


def invalid_quantity() -> ExchangeError:
    return ExchangeError(-1013, "Invalid quantity.")


def no_withdraw_permission() -> ExchangeError:
    return ExchangeError(-1002, "You don't have permission.", http_status=401)
