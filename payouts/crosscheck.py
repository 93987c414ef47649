"""The exchange cross-check of one exchange account (docs/scoring.md, "Exchange cross-checks"): its reported
orders and fills confirmed, and its link keys read, from the exchange itself through ccxt, with the account's own
key (`execution.accounts.exchange_account_client`), never through the executor or its host.

Each call is retried a bounded number of times on a transient failure (the exchange unreachable, overloaded, in
maintenance or rate-limiting; ccxt's `enableRateLimit` spaces the calls); a failure that outlasts the retries
raises `ExchangeUnavailable` and returns nothing, so the epoch close retries later instead of scoring on a partial
answer. A refused key raises `InvalidExchangeKey`; any other unexpected answer raises `CrossCheckFailed`. Only the
exchange's own "no such order" reads as an answer (`exchange=None`: not on the exchange).

The pure mapping (exact numbers, link-key form) is `payouts.domain.crosscheck`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import ccxt

from mrmarket.exchanges.client import TRANSIENT
from mrmarket.exchanges.errors import ExchangeUnavailable, InvalidExchangeKey
from mrmarket.observability.logging import get_logger
from payouts.domain import crosscheck as domain
from payouts.domain.scoring.inputs import Fill, Links, Order
from payouts.errors import CrossCheckFailed, CrossCheckUnsupported

log = get_logger(__name__)

T = TypeVar("T")

ATTEMPTS = 3  # per call, the first included
BACKOFF_SECONDS = 1.0  # before the second attempt; doubled before each further one
HISTORY_PAGE = 1000  # Binance's most per page for allOrders and myTrades
HISTORY_PAGES = 10  # order-history pages read before asking the rest one by one
TRADES_WINDOW_MS = 24 * 60 * 60 * 1000 - 1  # Binance: startTime..endTime of myTrades spans at most 24 hours


@dataclass(frozen=True)
class _Retry:
    attempts: int
    backoff_seconds: float


def _call(client: Any, what: str, fn: Callable[[], T], retry: _Retry) -> T:
    exchange_id = client.id
    attempts = max(1, retry.attempts)
    for attempt in range(attempts):
        try:
            return fn()
        except TRANSIENT as exc:
            if attempt + 1 == attempts:
                raise ExchangeUnavailable(
                    f"{exchange_id} did not answer {what} ({type(exc).__name__}, {attempts} attempts)",
                    extra={"exchange": exchange_id},
                ) from None
            time.sleep(retry.backoff_seconds * 2**attempt)
        except ccxt.AuthenticationError:
            raise InvalidExchangeKey(
                f"{exchange_id} refused the account's key for {what}", extra={"exchange": exchange_id}
            ) from None
    raise AssertionError("unreachable: attempts must be at least 1")


def _fields(client: Any) -> domain.RawFields:
    fields = domain.raw_fields(client.id)
    if fields is None:
        raise CrossCheckUnsupported(f"no exchange cross-check for {client.id}", extra={"exchange": client.id})
    return fields


def _failed(client: Any, what: str, exc: Exception) -> CrossCheckFailed:
    # The exception's text is not repeated: ccxt's quotes the request (its URL carries the signed query) and the
    # answer, and this message ends up in the epoch's public notes. The server log keeps the type.
    log.warning("crosscheck_unexpected_answer", exchange=client.id, what=what, error_type=type(exc).__name__)
    return CrossCheckFailed(
        f"{client.id} answered {what} unexpectedly ({type(exc).__name__})",
        extra={"exchange": client.id, "error_type": type(exc).__name__},
    )


def _order_history(client: Any, symbol: str, since_ms: int, retry: _Retry) -> list[Mapping[str, Any]]:
    """The account's orders on `symbol` from `since_ms` (a bounded number of pages: what it leaves out is asked
    order by order)."""
    seen: dict[str, Mapping[str, Any]] = {}
    since = since_ms
    for _ in range(HISTORY_PAGES):
        page = _call(
            client,
            "its order history",
            partial(client.fetch_orders, symbol, since, HISTORY_PAGE),
            retry,
        )
        fresh = [o for o in page if o.get("id") not in seen]
        for o in fresh:
            seen[o["id"]] = o
        if len(page) < HISTORY_PAGE or not fresh:
            break
        since = max(int(o["timestamp"]) for o in page)  # the same time again: a page may end amid one millisecond
    return list(seen.values())


def _one_order(client: Any, symbol: str, order_id: str, retry: _Retry) -> Mapping[str, Any] | None:
    """The exchange's answer about one order, by exchange order id (Binance's are numbers) and else by client
    order id; None when it knows neither."""
    lookups: list[tuple[str | None, dict[str, Any]]] = []
    if order_id.isdigit():
        lookups.append((order_id, {}))
    lookups.append((None, {"origClientOrderId": order_id}))
    for id_, params in lookups:
        try:
            raw: Mapping[str, Any] = _call(
                client,
                f"order {order_id}",
                partial(client.fetch_order, id_, symbol, params),
                retry,
            )
        except ccxt.OrderNotFound:
            continue
        if order_id in (raw.get("id"), raw.get("clientOrderId")):
            return raw
    return None


def confirm_orders(
    *,
    client: Any,
    symbol: str,
    orders: Sequence[Order],
    attempts: int = ATTEMPTS,
    backoff_seconds: float = BACKOFF_SECONDS,
) -> tuple[Order, ...]:
    """Copies of `orders` (in their order), each with the exchange's answer about it (`exchange`), or None where
    the exchange does not know it. The account's order history is read first; an order it does not show is asked
    by itself (`fetch_order`)."""
    fields = _fields(client)
    retry = _Retry(attempts, backoff_seconds)
    if not orders:
        return ()
    try:
        history = _order_history(client, symbol, min(o.created_ms for o in orders), retry)
        out = []
        for order in orders:
            raw = domain.answer_for(order.order_id, history)
            if raw is None:
                raw = _one_order(client, symbol, order.order_id, retry)
            out.append(domain.confirm_order(order, raw, fields))
    except domain.ExchangeAnswerInvalid as exc:
        raise _failed(client, "an order query", exc) from None
    except ccxt.ExchangeError as exc:
        raise _failed(client, "an order query", exc) from None
    return tuple(out)


def _trades(client: Any, symbol: str, since_ms: int, until_ms: int, retry: _Retry) -> list[Mapping[str, Any]]:
    """Every row of the account's trade history on `symbol` with since_ms <= time <= until_ms: 24-hour windows,
    each read page by page."""
    rows: dict[tuple[str, str], Mapping[str, Any]] = {}
    start = since_ms
    while start <= until_ms:
        end = min(start + TRADES_WINDOW_MS, until_ms)
        since = start
        while True:
            page = _call(
                client,
                "its trade history",
                partial(client.fetch_my_trades, symbol, since, HISTORY_PAGE, {"until": end}),
                retry,
            )
            fresh = [t for t in page if (t.get("id"), t.get("side")) not in rows]
            for t in fresh:
                rows[(t["id"], t["side"])] = t
            if len(page) < HISTORY_PAGE:
                break
            if not fresh:
                # A full page of one millisecond: the rest of it cannot be reached by time.
                raise CrossCheckFailed(
                    f"{client.id} has more than {HISTORY_PAGE} trades at {since}", extra={"exchange": client.id}
                )
            since = max(int(t["timestamp"]) for t in page)
        start = end + 1
    return list(rows.values())


def confirm_fills(
    *,
    client: Any,
    symbol: str,
    fills: Sequence[Fill],
    since_ms: int,
    until_ms: int,
    attempts: int = ATTEMPTS,
    backoff_seconds: float = BACKOFF_SECONDS,
) -> tuple[Fill, ...]:
    """Copies of `fills` (in their order), each with the account's trade-history row of its trade id between
    `since_ms` and `until_ms` inclusive (the epoch's window), or None where the history has none."""
    fields = _fields(client)
    if not fills:
        return ()
    try:
        trades = _trades(client, symbol, since_ms, until_ms, _Retry(attempts, backoff_seconds))
        return domain.confirm_fills(fills, trades, fields)
    except domain.ExchangeAnswerInvalid as exc:
        raise _failed(client, "its trade history", exc) from None
    except ccxt.ExchangeError as exc:
        raise _failed(client, "its trade history", exc) from None


def link_keys(
    *,
    client: Any,
    assets: Sequence[str],
    attempts: int = ATTEMPTS,
    backoff_seconds: float = BACKOFF_SECONDS,
) -> Links:
    """The account's link keys: its deposit address of each asset (the market's base and quote) and every
    address its withdrawal history of those assets shows (as far back as the exchange keeps it: Binance, 90
    days by default)."""
    retry = _Retry(attempts, backoff_seconds)
    deposits: list[Mapping[str, Any]] = []
    withdrawals: list[Mapping[str, Any]] = []
    try:
        for code in sorted(set(assets)):
            deposits.append(
                _call(client, f"its {code} deposit address", partial(client.fetch_deposit_address, code), retry)
            )
            withdrawals.extend(_call(client, f"its {code} withdrawals", partial(client.fetch_withdrawals, code), retry))
        return domain.links(deposits, withdrawals)
    except domain.ExchangeAnswerInvalid as exc:
        raise _failed(client, "its addresses", exc) from None
    except ccxt.ExchangeError as exc:
        raise _failed(client, "its addresses", exc) from None
