"""The cross-check's pure mapping: the exchange's answers (ccxt structures) into confirmations and link keys."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from typing import Any

import pytest

from payouts.domain import crosscheck as cc
from payouts.domain.scoring.inputs import Fill, FillConfirmation, LiveInterval, Order, OrderConfirmation, Side

BINANCE = cc.RAW_FIELDS["binance"]


def ccxt_order(**change: Any) -> dict[str, Any]:
    """A ccxt order as ccxt parses Binance's answer: floats for numbers, the exchange's strings in `info`."""
    raw: dict[str, Any] = {
        "id": "61",
        "clientOrderId": "mm-1",
        "status": "open",
        "side": "buy",
        "price": 0.30000000000000004,  # what a float makes of a sum; the exchange wrote 0.3
        "amount": 0.1,
        "timestamp": 1_000,
        "lastUpdateTimestamp": 1_000,
        "info": {"orderId": 61, "price": "0.30000000", "origQty": "0.10000000", "time": 1_000, "updateTime": 1_000},
    }
    info = change.pop("info", {})
    raw.update(change)
    raw["info"] = {**raw["info"], **info}
    return raw


def ccxt_trade(**change: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "id": "7",
        "order": "61",
        "side": "sell",
        "takerOrMaker": "maker",
        "price": 60000.1,
        "amount": 0.004,
        "timestamp": 2_000,
        "info": {"id": 7, "price": "60000.10000000", "qty": "0.00400000", "isMaker": True},
    }
    info = change.pop("info", {})
    raw.update(change)
    raw["info"] = {**raw["info"], **info}
    return raw


def order(order_id: str = "61", closed_ms: int | None = None) -> Order:
    live = (LiveInterval(live_from_ms=1_000, live_to_ms=closed_ms, remaining=Fraction(1, 10)),)
    return Order(order_id, "buy", Fraction(3, 10), Fraction(1, 10), live, None)


def fill(trade_id: str = "7", side: Side = "sell", maker: bool = True) -> Fill:
    return Fill(trade_id, "61", side, Fraction("60000.1"), Fraction("0.004"), maker, 2_000, None)


def test_an_open_order_reads_exactly_from_the_exchanges_strings() -> None:
    assert cc.order_confirmation(ccxt_order(), BINANCE) == OrderConfirmation(
        side="buy", price=Fraction(3, 10), amount=Fraction(1, 10), created_ms=1_000, closed_ms=None
    )


@pytest.mark.parametrize("status", ["canceled", "closed", "expired", "rejected"])
def test_an_order_that_no_longer_rests_is_closed_at_its_last_update(status: str) -> None:
    raw = ccxt_order(status=status, lastUpdateTimestamp=4_321)
    confirmation = cc.order_confirmation(raw, BINANCE)
    assert confirmation is not None
    assert confirmation.closed_ms == 4_321
    assert confirmation.created_ms == 1_000


def test_a_partly_filled_order_still_resting_is_open() -> None:
    confirmation = cc.order_confirmation(ccxt_order(lastUpdateTimestamp=1_500), BINANCE)
    assert confirmation is not None
    assert confirmation.closed_ms is None


def test_trailing_zeros_do_not_matter_but_a_last_digit_does() -> None:
    confirmed = cc.confirm_order(order(), ccxt_order(info={"price": "0.3"}), BINANCE)
    assert confirmed.confirmed
    off = cc.confirm_order(order(), ccxt_order(info={"price": "0.30000001"}), BINANCE)
    assert off.exchange is not None
    assert not off.confirmed


def test_a_market_order_confirms_no_resting_order() -> None:
    assert cc.order_confirmation(ccxt_order(info={"price": "0.00000000"}), BINANCE) is None


@pytest.mark.parametrize(
    ("change", "what"),
    [
        ({"info": {"price": 0.3}}, "order.info.price"),
        ({"info": {"origQty": "1e-1"}}, "order.info.origQty"),
        ({"info": {"price": None}}, "order.info.price"),
        ({"side": "BUY"}, "order.side"),
        ({"status": "pending"}, "order.status"),
        ({"timestamp": None}, "order.timestamp"),
        ({"status": "canceled", "lastUpdateTimestamp": None}, "order.lastUpdateTimestamp"),
    ],
)
def test_a_malformed_order_answer_is_refused(change: dict[str, Any], what: str) -> None:
    with pytest.raises(cc.ExchangeAnswerInvalid) as caught:
        cc.order_confirmation(ccxt_order(**change), BINANCE)
    assert caught.value.what == what
    assert caught.value.code == "exchange_answer_invalid"


def test_an_answer_without_the_exchanges_own_fields_is_refused() -> None:
    raw = ccxt_order()
    del raw["info"]
    with pytest.raises(cc.ExchangeAnswerInvalid):
        cc.order_confirmation(raw, BINANCE)


def test_the_answer_for_an_order_is_found_by_exchange_id_then_by_client_id() -> None:
    by_id = ccxt_order(id="61", clientOrderId="a")
    other = ccxt_order(id="62", clientOrderId="61")  # a client id that happens to be another order's exchange id
    assert cc.answer_for("61", [other, by_id]) is by_id
    assert cc.answer_for("a", [other, by_id]) is by_id
    assert cc.answer_for("zzz", [other, by_id]) is None


def test_an_order_the_exchange_does_not_know_has_no_confirmation() -> None:
    out = cc.confirm_order(order(), None, BINANCE)
    assert out.exchange is None
    assert not out.confirmed


def test_an_answer_about_another_order_is_refused() -> None:
    with pytest.raises(cc.ExchangeAnswerInvalid):
        cc.confirm_order(order("61"), ccxt_order(id="62", clientOrderId="x"), BINANCE)


def test_a_fill_reads_exactly_and_takes_its_role_from_the_exchange() -> None:
    assert cc.fill_confirmation(ccxt_trade(), BINANCE) == FillConfirmation(
        trade_id="7", side="sell", price=Fraction("60000.1"), amount=Fraction("0.004"), maker=True
    )
    assert not cc.fill_confirmation(ccxt_trade(takerOrMaker="taker"), BINANCE).maker


def test_fills_are_matched_by_trade_id_and_side() -> None:
    # A self-trade: the account holds both sides of trade 7, the seller's the maker.
    trades = [ccxt_trade(side="buy", takerOrMaker="taker"), ccxt_trade(), ccxt_trade(id="8")]
    out = cc.confirm_fills([fill(side="buy", maker=False), fill(), fill(maker=False), fill("9")], trades, BINANCE)
    assert [f.confirmed for f in out] == [True, True, False, False]
    assert out[3].exchange is None
    # A side the account does not hold: the exchange's row of that trade, which then disagrees.
    (lone,) = cc.confirm_fills([fill("8", side="buy")], trades, BINANCE)
    assert lone.exchange is not None
    assert lone.exchange.side == "sell"
    assert not lone.confirmed


@pytest.mark.parametrize(
    "change",
    [{"id": None}, {"id": 7}, {"takerOrMaker": None}, {"side": None}, {"info": {"qty": 0.004}}],
)
def test_a_malformed_trade_answer_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(cc.ExchangeAnswerInvalid):
        cc.confirm_fills([fill()], [ccxt_trade(**change)], BINANCE)


@pytest.mark.parametrize(
    ("address", "tag", "key"),
    [
        ("0xAbCdEf0000000000000000000000000000000001", None, "0xabcdef0000000000000000000000000000000001"),
        ("  0xABCDEF0000000000000000000000000000000001 ", "", "0xabcdef0000000000000000000000000000000001"),
        ("1BoatSLRHtKNngkdXEeobR76b53LETtpyT", None, "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"),  # base58: case is data
        ("rEb8TK3gBgk5auZkwc6sHnwrGVJH8DuaLh", "104582", "rEb8TK3gBgk5auZkwc6sHnwrGVJH8DuaLh#104582"),
    ],
)
def test_link_keys_are_normalised(address: str, tag: str | None, key: str) -> None:
    assert cc.link_key(address, tag) == key


@pytest.mark.parametrize("address", [None, "", "   ", 42, "0x" + "a" * 200])
def test_a_missing_or_oversized_address_is_refused(address: Any) -> None:
    with pytest.raises(cc.ExchangeAnswerInvalid):
        cc.link_key(address)


def test_links_are_deduplicated_and_sorted() -> None:
    a, b = "0x" + "B" * 40, "0x" + "a" * 40
    links = cc.links(
        deposits=[{"address": a, "tag": None, "network": "ETH"}, {"address": a.lower(), "network": "BSC"}],
        withdrawals=[{"address": a}, {"address": b}, {"address": b.upper().replace("0X", "0x")}],
    )
    assert links.deposit_addresses == (a.lower(),)
    assert links.withdrawal_addresses == (b, a.lower())
    assert cc.links([], []).as_json() == {"deposit_addresses": [], "withdrawal_addresses": []}


def test_only_exchanges_with_known_fields_are_cross_checked() -> None:
    assert cc.raw_fields("binance") is BINANCE
    assert cc.raw_fields("kraken") is None


def test_a_confirmed_fill_happened_when_the_exchange_says_not_when_it_was_reported() -> None:
    # The host moved the trade's time (towards a sample whose mid suits its price): the exchange's time stands.
    shifted = dataclasses.replace(fill(), ts_ms=9_999)
    (out,) = cc.confirm_fills([shifted], [ccxt_trade()], BINANCE)
    assert out.confirmed
    assert out.ts_ms == 2_000
    # A fill the exchange does not show keeps the reported time (it is not counted anyway).
    (unknown,) = cc.confirm_fills([dataclasses.replace(fill("9"), ts_ms=9_999)], [ccxt_trade()], BINANCE)
    assert (unknown.exchange, unknown.ts_ms) == (None, 9_999)
