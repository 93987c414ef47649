"""Each error the simulator answers makes ccxt raise the same class against the simulator's loopback URLs as
against binance.com's.

ccxt's binance applies its spot-only error table when the URL starts with https://api.binance.com/, and only the
common table otherwise; a code whose class differs between the two would make the devnet lie about what the real
exchange causes. The known difference (-1131) is listed, not hidden.
"""

from __future__ import annotations

import json

import ccxt
import pytest

from devnet.exchange.domain import errors
from devnet.exchange.keys import bad_key_format, bad_signature, invalid_key

CATALOGUE = [
    errors.insufficient_balance(),
    errors.would_take(),
    errors.duplicate_order(),
    errors.trading_disabled(),
    errors.cancel_trading_disabled(),
    errors.unknown_order_cancel(),
    errors.order_does_not_exist(),
    errors.filter_failure("LOT_SIZE"),
    errors.filter_failure("PRICE_FILTER"),
    errors.filter_failure("NOTIONAL"),
    errors.invalid_symbol(),
    errors.invalid_quantity(),
    errors.no_withdraw_permission(),
    errors.ExchangeError(-1021, "Timestamp for this request is outside of the recvWindow."),
    errors.ExchangeError(-1021, "Timestamp for this request was 1000ms ahead of the server's time."),
    errors.ExchangeError(-1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."),
    errors.ExchangeError(-1100, "Illegal characters found in parameter 'quantity'."),
    errors.ExchangeError(-1106, "Parameter 'timeInForce' sent when not required."),
    errors.ExchangeError(-1115, "Invalid timeInForce."),
    errors.ExchangeError(-1116, "Invalid type."),
    errors.ExchangeError(-1117, "Invalid side."),
    errors.ExchangeError(-1120, "Invalid interval."),
    errors.ExchangeError(-1128, "Combination of optional parameters invalid."),
    errors.ExchangeError(-1020, "This operation is not supported."),
    errors.ExchangeError(-4021, "Asset withdrawal must be an 0.000001 multiple of 0.000001."),
    errors.ExchangeError(-4022, "Not less than the minimum pick-up quantity 0.00000000."),
    errors.ExchangeError(-4026, "Account has insufficient balance for requested action."),
    bad_key_format(),
    invalid_key(),
    bad_signature(),
]
EXPECTED = {
    "Account has insufficient balance for requested action.": ccxt.InsufficientFunds,
    "Order would immediately match and take.": ccxt.OrderImmediatelyFillable,
    "Rest API trading is not enabled.": ccxt.PermissionDenied,
    "You don't have permission.": ccxt.PermissionDenied,
    "Unknown order sent.": ccxt.OrderNotFound,
    "Order does not exist.": ccxt.OrderNotFound,
    "Invalid symbol.": ccxt.BadSymbol,
    "Signature for this request is not valid.": ccxt.AuthenticationError,
}


def _raised(client, url: str, status: int, body: str) -> type[Exception] | None:
    try:
        client.handle_errors(status, "", url, "GET", {}, body, json.loads(body), {}, None)
    except Exception as exc:
        return type(exc)
    return None


@pytest.mark.parametrize("error", CATALOGUE, ids=lambda e: f"{e.code}:{e.msg[:30]}")
def test_same_ccxt_class_on_loopback_and_binance_com(error):
    client = ccxt.binance()
    body = json.dumps({"code": error.code, "msg": error.msg})
    real = _raised(client, "https://api.binance.com/api/v3/order", error.http_status, body)
    local = _raised(client, "http://127.0.0.1:1/api/v3/order", error.http_status, body)
    assert real is not None
    assert real is local
    if error.msg in EXPECTED:
        assert real is EXPECTED[error.msg]


def test_known_difference_unknown_coin():
    client = ccxt.binance()
    body = json.dumps({"code": -4018, "msg": "We don't have this asset."})
    assert _raised(client, "https://api.binance.com/sapi/v1/capital/withdraw/apply", 400, body) is ccxt.BadSymbol
    assert _raised(client, "http://127.0.0.1:1/sapi/v1/capital/withdraw/apply", 400, body) is ccxt.BadRequest


def test_known_difference_recv_window_too_large():
    client = ccxt.binance()
    body = json.dumps({"code": -1131, "msg": "recvWindow must be less than 60000"})
    assert _raised(client, "https://api.binance.com/api/v3/order", 400, body) is ccxt.BadRequest
    assert _raised(client, "http://127.0.0.1:1/api/v3/order", 400, body) is ccxt.ExchangeError
