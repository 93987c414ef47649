"""Amounts between the outside world and base units (ADR 0013): one rounding rule per kind of amount, Decimal
through str(), and deposits matched in integer base units even when ccxt's float carries arithmetic noise."""

from __future__ import annotations

from decimal import Context, Decimal
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from execution import accounts, outbound, reports
from execution.domain.units import (
    UnitsError,
    as_text,
    from_units,
    is_whole,
    multiply,
    same_amount,
    to_decimal,
    units_down,
    units_exact,
    units_toward,
    units_up,
)

decimals = st.integers(min_value=0, max_value=18)
units = st.integers(min_value=0, max_value=10**30)
amounts = st.decimals(min_value=0, max_value=10**12, allow_nan=False, allow_infinity=False, places=24)
FLOAT_EXACT = 10**15  # any amount of at most 15 significant digits survives a trip through a float


@given(amounts, decimals)
def test_what_we_hold_rounds_down_and_what_we_pay_rounds_up_by_less_than_one_unit(amount, places) -> None:
    scaled = amount.scaleb(places, context=Context(prec=100))
    down, up = units_down(amount, places), units_up(amount, places)
    assert down <= scaled < down + 1
    assert up - 1 < scaled <= up
    assert (down == up) == is_whole(amount, places)


@given(units, decimals)
def test_base_units_round_trip_exactly_through_their_decimal_text(value, places) -> None:
    assert units_exact(from_units(value, places), places) == value
    assert units_exact(as_text(value, places), places) == value
    assert "E" not in as_text(value, places).upper()


@given(st.integers(min_value=0, max_value=FLOAT_EXACT - 1), decimals)
def test_a_float_parsed_from_the_exact_decimal_matches(value, places) -> None:
    reported = float(as_text(value, places))  # what ccxt does with the exchange's JSON string
    assert same_amount(reported, value, places)
    assert same_amount(as_text(value, places), value, places)


halves = st.integers(min_value=0, max_value=FLOAT_EXACT // 2)


@given(halves, halves, decimals)
def test_float_arithmetic_noise_does_not_break_the_match(a, b, places) -> None:
    reported = float(as_text(a, places)) + float(as_text(b, places))  # 0.1 + 0.2 = 0.30000000000000004
    assert same_amount(reported, a + b, places)


@given(st.integers(min_value=0, max_value=FLOAT_EXACT - 2), decimals)
def test_one_base_unit_more_or_less_never_matches(value, places) -> None:
    assert not same_amount(float(as_text(value + 1, places)), value, places)
    assert not same_amount(as_text(value + 1, places), value, places)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_float_becomes_the_decimal_of_its_text_never_its_binary_value(value) -> None:
    assert to_decimal(value) == Decimal(str(value))


def test_a_product_keeps_every_digit() -> None:
    amount = Decimal("123456789012.123456789012345678")  # 30 significant digits
    assert amount * 1 != amount  # the default context: 28 digits
    assert multiply(amount, "1") == amount
    assert units_down(multiply(amount, "1"), 18) == 123456789012123456789012345678


def test_the_classic_float_cases() -> None:
    assert to_decimal(0.1) == Decimal("0.1")  # Decimal(0.1) would be 0.1000000000000000055511151231257827…
    assert same_amount(0.1 + 0.2, 300_000, 6)
    assert same_amount(0.1 + 0.2, 3 * 10**17, 18)
    assert not same_amount(0.1 + 0.2, 300_001, 6)
    assert units_up("0.0000001", 6) == 1
    assert units_down("0.0000019", 6) == 1


@pytest.mark.parametrize("bad", [None, True, "", "abc", "NaN", "Infinity", -1, "-0.5", [], object()])
def test_what_is_not_an_amount_is_refused(bad) -> None:
    with pytest.raises(UnitsError):
        units_down(bad, 6)
    assert not same_amount(bad, 0, 6)


@given(amounts, decimals)
def test_a_reported_amount_rounds_toward_the_side_it_moves_and_says_whether_it_rounded(amount, places) -> None:
    assert units_toward(amount, places, up=True) == (units_up(amount, places), not is_whole(amount, places))
    assert units_toward(amount, places, up=False) == (units_down(amount, places), not is_whole(amount, places))


def test_finer_than_base_units_is_refused_where_exactness_is_required() -> None:
    with pytest.raises(UnitsError, match="finer than 6 decimals"):
        units_exact("1.0000001", 6)
    with pytest.raises(UnitsError, match="decimals"):
        units_down("1", -1)


def _credited(settings, monkeypatch, reported: object, amount: int, places: int) -> bool:
    settings.CUSTODY_ASSETS = {"USDT": {"token": "0x" + "ab" * 20, "decimals": places}}
    settings.CUSTODY_PRIVATE_KEY = "0x" + "11" * 32
    deposit = {"txid": "0xABC1", "status": "ok", "amount": reported}
    monkeypatch.setattr(
        accounts, "exchange_account_client", lambda *, account: SimpleNamespace(fetch_deposits=lambda _: [deposit])
    )
    order = SimpleNamespace(exchange_account=SimpleNamespace(exchange="binance"), funding_asset="USDT")
    no_versions = SimpleNamespace(values_list=lambda *a, **k: [])  # the transfer was never replaced
    sent = SimpleNamespace(tx_hash="0xabc1", amount=amount, versions=no_versions)
    return outbound._credited_by_exchange(order, sent)  # type: ignore[arg-type]


def test_a_deposit_reported_as_a_noisy_float_is_matched_by_base_units(settings, monkeypatch) -> None:
    assert _credited(settings, monkeypatch, 0.1 + 0.2, 300_000, 6)
    assert _credited(settings, monkeypatch, 0.1 + 0.2, 3 * 10**17, 18)
    assert not _credited(settings, monkeypatch, 0.1 + 0.2, 300_001, 6)  # another amount under the same hash


def test_a_fill_books_what_leaves_the_account_rounded_up_and_what_arrives_rounded_down(settings) -> None:
    settings.CUSTODY_ASSETS = {
        "USDT": {"token": "0x" + "ab" * 20, "decimals": 6},
        "MMT": {"token": "0x" + "cd" * 20, "decimals": 6},
    }
    settings.CUSTODY_PRIVATE_KEY = "0x" + "11" * 32
    order = SimpleNamespace(pk=7, symbol="MMT/USDT", exchange_account_id=3)
    sell = {"trade_id": "t1", "side": "sell", "amount": "1.0000005", "price": "2"}
    sell |= {"fee": "0.0000001", "fee_asset": "USDT"}
    fill, fee = reports.order_fill_transactions(order, [sell])  # type: ignore[arg-type]
    booked = {p.account: p.amount for p in fill.postings}
    assert booked["exchange:a3:free:MMT"] == -1_000_001  # the sale's base leaves: up
    assert booked["exchange:a3:free:USDT"] == 2_000_001  # its proceeds arrive: down
    assert fill.kind == "fill_settle_rounded"
    assert {p.account: p.amount for p in fee.postings}["exchange:a3:free:USDT"] == -1  # the fee: up
