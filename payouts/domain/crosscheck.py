"""The exchange cross-check as pure mapping: the exchange's answers (ccxt's unified order, trade and address
structures, as ccxt returns them) into the confirmations and link keys of the oracle's inputs (docs/scoring.md,
"Exchange cross-checks").

Exactness: ccxt turns prices and amounts into floats, which cannot carry every decimal an exchange writes, so
prices and amounts are read from the exchange's own strings in ccxt's `info` (the raw answer; the field names per
exchange are in `RAW_FIELDS`). Times, sides, statuses, ids and the maker flag are ccxt's unified fields: integers,
strings and booleans, exact as they are.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from payouts.domain.scoring.inputs import Fill, FillConfirmation, Links, Order, OrderConfirmation, Side

_DECIMAL_RE = re.compile(r"\d{1,40}(?:\.\d{1,40})?")
# ccxt's unified statuses of an order that no longer rests; "open" is the only one that does.
CLOSED_STATUSES = frozenset({"closed", "canceled", "expired", "rejected"})
MAX_LINK_KEY = 128  # the inputs' identifier limit


class ExchangeAnswerInvalid(ValueError):
    """An answer that does not read as the exchange's own structure (a missing or malformed field)."""

    code = "exchange_answer_invalid"

    def __init__(self, what: str, problem: str) -> None:
        super().__init__(f"{what}: {problem}")
        self.what = what
        self.problem = problem


@dataclass(frozen=True)
class RawFields:
    """Where an exchange writes an order's limit price and original amount, and a trade's price and amount, in
    its own answer (ccxt's `info`)."""

    order_price: str
    order_amount: str
    trade_price: str
    trade_amount: str


# Binance: GET /api/v3/order and /allOrders (`price`, `origQty`), GET /api/v3/myTrades (`price`, `qty`).
RAW_FIELDS: Mapping[str, RawFields] = {
    "binance": RawFields(order_price="price", order_amount="origQty", trade_price="price", trade_amount="qty"),
}


def raw_fields(exchange_id: str) -> RawFields | None:
    return RAW_FIELDS.get(exchange_id)


def _decimal(value: Any, what: str) -> Fraction:
    if not isinstance(value, str) or not _DECIMAL_RE.fullmatch(value):
        raise ExchangeAnswerInvalid(what, f"is not a decimal string ({value!r})")
    return Fraction(value)


def _side(value: Any, what: str) -> Side:
    if value == "buy":
        return "buy"
    if value == "sell":
        return "sell"
    raise ExchangeAnswerInvalid(what, f"is not a side ({value!r})")


def _time(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ExchangeAnswerInvalid(what, f"is not a time in milliseconds ({value!r})")
    return value


def _info(raw: Mapping[str, Any], what: str) -> Mapping[str, Any]:
    info = raw.get("info")
    if not isinstance(info, Mapping):
        raise ExchangeAnswerInvalid(f"{what}.info", "is missing")
    return info


def order_confirmation(raw: Mapping[str, Any], fields: RawFields) -> OrderConfirmation | None:
    """The exchange's answer about one order (a ccxt order): side, limit price, original amount, created = ccxt
    `timestamp` (Binance `time`), closed = ccxt `lastUpdateTimestamp` (Binance `updateTime`: the cancel, or the
    fill that left nothing) once the order no longer rests, None while it is open. None when the exchange shows
    no limit price or amount (a market order never rested, so it confirms no resting order)."""
    info = _info(raw, "order")
    price = _decimal(info.get(fields.order_price), f"order.info.{fields.order_price}")
    amount = _decimal(info.get(fields.order_amount), f"order.info.{fields.order_amount}")
    if price == 0 or amount == 0:
        return None
    status = raw.get("status")
    if status != "open" and status not in CLOSED_STATUSES:
        raise ExchangeAnswerInvalid("order.status", f"is not a known status ({status!r})")
    closed = None if status == "open" else _time(raw.get("lastUpdateTimestamp"), "order.lastUpdateTimestamp")
    return OrderConfirmation(
        side=_side(raw.get("side"), "order.side"),
        price=price,
        amount=amount,
        created_ms=_time(raw.get("timestamp"), "order.timestamp"),
        closed_ms=closed,
    )


def answer_for(order_id: str, answers: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The answer about the order a report names `order_id`: intake names an order by its exchange order id, or
    by its client order id when the report never learnt the exchange's; the exchange order id wins a tie."""
    by_client = None
    for raw in answers:
        if raw.get("id") == order_id:
            return raw
        if by_client is None and raw.get("clientOrderId") == order_id:
            by_client = raw
    return by_client


def confirm_order(order: Order, raw: Mapping[str, Any] | None, fields: RawFields) -> Order:
    """A copy of `order` with the exchange's answer; `raw` None: the exchange does not know the order."""
    if raw is not None and order.order_id not in (raw.get("id"), raw.get("clientOrderId")):
        raise ExchangeAnswerInvalid("order.id", f"answers about another order than {order.order_id}")
    return dataclasses.replace(order, exchange=None if raw is None else order_confirmation(raw, fields))


def fill_confirmation(raw: Mapping[str, Any], fields: RawFields) -> FillConfirmation:
    """One row of the account's trade history (a ccxt trade): id, side, price and amount as the exchange writes
    them, maker = ccxt `takerOrMaker` (Binance `isMaker`)."""
    info = _info(raw, "trade")
    trade_id = raw.get("id")
    if not isinstance(trade_id, str) or not trade_id:
        raise ExchangeAnswerInvalid("trade.id", f"is not a trade id ({trade_id!r})")
    role = raw.get("takerOrMaker")
    if role not in ("maker", "taker"):
        raise ExchangeAnswerInvalid("trade.takerOrMaker", f"is not maker or taker ({role!r})")
    return FillConfirmation(
        trade_id=trade_id,
        side=_side(raw.get("side"), "trade.side"),
        price=_decimal(info.get(fields.trade_price), f"trade.info.{fields.trade_price}"),
        amount=_decimal(info.get(fields.trade_amount), f"trade.info.{fields.trade_amount}"),
        maker=role == "maker",
    )


def confirm_fills(fills: Sequence[Fill], trades: Iterable[Mapping[str, Any]], fields: RawFields) -> tuple[Fill, ...]:
    """Copies of `fills`, each with the history's row of its trade id (the row on the fill's side when the
    account holds both, as in a self-trade), or None when the history has no such trade."""
    rows: dict[str, list[tuple[FillConfirmation, int | None]]] = {}
    for raw in trades:
        c = fill_confirmation(raw, fields)
        stamp = raw.get("timestamp")
        rows.setdefault(c.trade_id, []).append((c, int(stamp) if isinstance(stamp, int) else None))
    out = []
    for f in fills:
        found = rows.get(f.trade_id, [])
        same_side = [row for row in found if row[0].side == f.side]
        pick = same_side[0] if same_side else (found[0] if found else None)
        if pick is None:
            out.append(dataclasses.replace(f, exchange=None))
            continue
        # A trade the exchange shows happened when the exchange says: the reported time (which the executor's host
        # could shift, towards a sample whose mid suits the price) is replaced by the exchange's own.
        confirmation, at = pick
        out.append(dataclasses.replace(f, exchange=confirmation, ts_ms=f.ts_ms if at is None else at))
    return tuple(out)


def link_key(address: Any, tag: Any = None) -> str:
    """One address as a link key: a 0x address in lower case (checksum casing is not part of it); any other
    address as written (base58 and bech32 are case-sensitive or canonical already). A tag or memo is part of the
    key (`address#tag`): on a shared deposit address it is what tells the account apart. The network is not:
    the same address on two networks is held by the same key, which is exactly what links two accounts."""
    if not isinstance(address, str) or not address.strip():
        raise ExchangeAnswerInvalid("address", f"is not an address ({address!r})")
    key = address.strip()
    if key[:2].lower() == "0x":
        key = key.lower()
    if isinstance(tag, str) and tag.strip():
        key = f"{key}#{tag.strip()}"
    if len(key) > MAX_LINK_KEY:
        raise ExchangeAnswerInvalid("address", f"is longer than {MAX_LINK_KEY} characters")
    return key


def links(deposits: Iterable[Mapping[str, Any]], withdrawals: Iterable[Mapping[str, Any]]) -> Links:
    """The link keys of one account: its deposit addresses (ccxt deposit-address structures) and the addresses it
    withdrew to (ccxt transaction structures), normalized, deduplicated and sorted."""
    return Links(
        deposit_addresses=tuple(sorted({link_key(d.get("address"), d.get("tag")) for d in deposits})),
        withdrawal_addresses=tuple(sorted({link_key(w.get("address"), w.get("tag")) for w in withdrawals})),
    )
