"""Every call the product makes, through ccxt's unmodified binance class pointed at the simulator.

The base book (agents, fair 60000): BTC/USDT bids 59940, 59910, … and asks 60060, 60090, …, 0.05 BTC each.
"""

from __future__ import annotations

import ccxt
import pytest

from devnet.exchange.keys import Permission

BTC = "BTC/USDT"


def test_load_markets_has_binance_filters(new_account):
    _, client = new_account()
    market = client.market(BTC)
    assert market["spot"]
    assert market["active"]
    assert market["precision"] == {"amount": 1e-05, "price": 0.01, "base": 1e-08, "quote": 1e-08}
    assert market["limits"]["cost"]["min"] == 5.0
    assert market["limits"]["amount"]["min"] == 1e-05
    assert {"BTC/USDT", "ETH/USDT", "MMT/USDT"} <= set(client.markets)


def test_public_market_data(exchange, new_account):
    _, client = new_account(USDT="1000")
    assert abs(client.fetch_time() - exchange.sim.clock()) < 60_000
    book = client.fetch_order_book(BTC, 5)
    assert book["bids"][0] == [59940.0, 0.05]
    assert book["asks"][0] == [60060.0, 0.05]
    assert len(book["bids"]) == 5
    assert book["nonce"] > 0
    client.create_order(BTC, "market", "buy", "0.01")
    ticker = client.fetch_ticker(BTC)
    assert ticker["last"] == 60060.0
    assert ticker["bid"] == 59940.0
    assert ticker["ask"] == 60060.0
    trades = client.fetch_trades(BTC)
    assert trades[-1]["price"] == 60060.0
    assert trades[-1]["side"] == "buy"
    candle = client.fetch_ohlcv(BTC, "1m")[-1]
    assert candle[4] == 60060.0
    assert candle[5] >= 0.01


def test_balance_free_and_locked(new_account):
    _, client = new_account(USDT="1000", BTC="0.5")
    client.create_order(BTC, "limit", "buy", "0.01", "50000")
    balance = client.fetch_balance()
    assert (balance["USDT"]["free"], balance["USDT"]["used"], balance["USDT"]["total"]) == (500.0, 500.0, 1000.0)
    assert balance["BTC"]["free"] == 0.5
    assert balance["info"]["balances"][0]["free"].count(".") == 1  # Decimal strings on the wire


def test_limit_order_lifecycle_by_id_and_client_id(new_account):
    _, client = new_account(USDT="1000")
    order = client.create_order(BTC, "limit", "buy", "0.001", "59000", {"clientOrderId": "mm-1-0001"})
    assert order["status"] == "open"
    assert order["clientOrderId"] == "mm-1-0001"
    assert order["timeInForce"] == "GTC"
    assert order["filled"] == 0.0
    assert client.fetch_order(order["id"], BTC)["status"] == "open"
    by_client = client.fetch_order(None, BTC, {"origClientOrderId": "mm-1-0001"})
    assert by_client["id"] == order["id"]
    assert [o["id"] for o in client.fetch_open_orders(BTC)] == [order["id"]]
    cancelled = client.cancel_order(order["id"], BTC)
    assert cancelled["status"] == "canceled"
    assert client.fetch_order(order["id"], BTC)["status"] == "canceled"
    assert client.fetch_open_orders(BTC) == []
    assert client.fetch_balance()["USDT"]["free"] == 1000.0


def test_cancel_by_client_id_and_cancel_all(new_account):
    _, client = new_account(USDT="1000")
    client.create_order(BTC, "limit", "buy", "0.001", "59000", {"clientOrderId": "c-1"})
    client.create_order(BTC, "limit", "buy", "0.001", "58000", {"clientOrderId": "c-2"})
    client.create_order(BTC, "limit", "buy", "0.001", "57000", {"clientOrderId": "c-3"})
    assert client.cancel_order(None, BTC, {"origClientOrderId": "c-1"})["status"] == "canceled"
    cancelled = client.cancel_all_orders(BTC)
    # As on Binance, a cancel answer's clientOrderId is the cancel's own id; the order's is origClientOrderId.
    assert sorted(o["info"]["origClientOrderId"] for o in cancelled) == ["c-2", "c-3"]
    assert all(o["status"] == "canceled" for o in cancelled)
    assert client.fetch_open_orders(BTC) == []


def test_market_order_walks_the_book_and_pays_taker_fee(new_account):
    _, client = new_account(USDT="10000")
    order = client.create_order(BTC, "market", "buy", "0.07")
    assert order["status"] == "closed"
    assert order["filled"] == 0.07
    assert len(order["trades"]) == 2  # 0.05 at 60060, 0.02 at 60090
    assert order["cost"] == pytest.approx(0.05 * 60060 + 0.02 * 60090)
    trades = client.fetch_my_trades(BTC)
    assert [t["price"] for t in trades] == [60060.0, 60090.0]
    assert all(t["takerOrMaker"] == "taker" and t["fee"]["currency"] == "BTC" for t in trades)
    assert trades[0]["fee"]["cost"] == pytest.approx(0.00005)  # 0.1 % of 0.05 BTC
    balance = client.fetch_balance()
    assert balance["BTC"]["free"] == pytest.approx(0.07 * 0.999)
    assert balance["USDT"]["free"] == pytest.approx(10000 - 0.05 * 60060 - 0.02 * 60090)


def test_market_buy_by_quote_amount(new_account):
    _, client = new_account(USDT="1000")
    order = client.create_order(BTC, "market", "buy", None, None, {"quoteOrderQty": "600.6"})
    assert order["filled"] == 0.01
    assert order["cost"] == 600.6
    assert order["status"] == "closed"


def test_market_sell(new_account):
    _, client = new_account(BTC="1")
    order = client.create_order(BTC, "market", "sell", "0.06")
    assert order["filled"] == 0.06
    assert order["average"] == pytest.approx((0.05 * 59940 + 0.01 * 59910) / 0.06)
    assert order["fee"]["currency"] == "USDT"


def test_ioc_fills_what_it_can_and_expires(new_account):
    _, client = new_account(USDT="10000")
    order = client.create_order(BTC, "limit", "buy", "0.08", "60060", {"timeInForce": "IOC"})
    assert order["status"] == "expired"
    assert order["filled"] == 0.05
    assert client.fetch_balance()["USDT"]["used"] == 0.0


def test_fok_that_cannot_fill_completely_does_nothing(new_account):
    _, client = new_account(USDT="10000")
    order = client.create_order(BTC, "limit", "buy", "0.08", "60060", {"timeInForce": "FOK"})
    assert order["status"] == "expired"
    assert order["filled"] == 0.0
    filled = client.create_order(BTC, "limit", "buy", "0.05", "60060", {"timeInForce": "FOK"})
    assert filled["status"] == "closed"
    assert filled["filled"] == 0.05


def test_post_only(new_account):
    _, client = new_account(USDT="10000")
    with pytest.raises(ccxt.OrderImmediatelyFillable):
        client.create_order(BTC, "limit", "buy", "0.001", "60060", {"postOnly": True})
    resting = client.create_order(BTC, "limit", "buy", "0.001", "60000", {"postOnly": True})
    assert resting["status"] == "open"
    assert resting["postOnly"]


def test_gtc_partial_fill_rests_the_remainder(new_account):
    _, client = new_account(USDT="10000")
    order = client.create_order(BTC, "limit", "buy", "0.08", "60060")
    assert order["status"] == "open"
    assert order["filled"] == 0.05
    assert order["remaining"] == pytest.approx(0.03)
    book = client.fetch_order_book(BTC, 1)
    assert book["bids"][0] == [60060.0, 0.03]


def test_maker_fill_reported_to_the_maker(new_account):
    _, maker = new_account(USDT="10000")
    _, taker = new_account(BTC="1")
    resting = maker.create_order(BTC, "limit", "buy", "0.01", "60000")
    taker.create_order(BTC, "market", "sell", "0.004")
    order = maker.fetch_order(resting["id"], BTC)
    assert order["status"] == "open"
    assert order["filled"] == 0.004
    fills = maker.fetch_my_trades(BTC)
    assert fills[-1]["takerOrMaker"] == "maker"
    assert fills[-1]["order"] == resting["id"]


def test_self_trade_prevention_expire_maker(new_account):
    _, client = new_account(USDT="10000", BTC="1")
    resting = client.create_order(BTC, "limit", "sell", "0.01", "60000")
    taker = client.create_order(BTC, "limit", "buy", "0.01", "60000", {"selfTradePreventionMode": "EXPIRE_MAKER"})
    assert taker["filled"] == 0.0
    assert taker["status"] == "open"
    assert client.fetch_order(resting["id"], BTC)["status"] == "expired"  # EXPIRED_IN_MATCH


def test_self_trade_allowed_when_none(new_account):
    _, client = new_account(USDT="10000", BTC="1")
    client.create_order(BTC, "limit", "sell", "0.01", "60000")
    taker = client.create_order(BTC, "limit", "buy", "0.01", "60000", {"selfTradePreventionMode": "NONE"})
    assert taker["filled"] == 0.01
    trades = client.fetch_my_trades(BTC)
    assert {t["side"] for t in trades} == {"buy", "sell"}
    assert len({t["id"] for t in trades}) == 1


# -- rejections ------------------------------------------------------------------------------------------------


def test_insufficient_funds(new_account):
    _, client = new_account(USDT="10")
    with pytest.raises(ccxt.InsufficientFunds):
        client.create_order(BTC, "limit", "buy", "0.01", "59000")
    with pytest.raises(ccxt.InsufficientFunds):
        client.create_order(BTC, "market", "sell", "0.01")
    assert client.fetch_balance()["USDT"]["free"] == 10.0


def test_filter_failures(exchange, new_account):
    _, client = new_account(USDT="100000")
    # ccxt rounds amounts and prices to the market's precision itself, so send raw requests to reach the filters.
    base = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
    with pytest.raises(ccxt.InvalidOrder, match="LOT_SIZE"):
        client.privatePostOrder({**base, "quantity": "0.000015", "price": "59000"})
    with pytest.raises(ccxt.InvalidOrder, match="PRICE_FILTER"):
        client.privatePostOrder({**base, "quantity": "0.001", "price": "59000.005"})
    with pytest.raises(ccxt.BadRequest, match="NOTIONAL"):  # Binance's -1013; ccxt maps it to BadRequest
        client.create_order(BTC, "limit", "buy", "0.00001", "59000")
    with pytest.raises(ccxt.BadRequest):
        client.privatePostOrder({**base, "quantity": "1e-3", "price": "59000"})


def test_duplicate_client_order_id(new_account):
    _, client = new_account(USDT="1000")
    client.create_order(BTC, "limit", "buy", "0.001", "59000", {"clientOrderId": "dup-1"})
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate"):
        client.create_order(BTC, "limit", "buy", "0.001", "59000", {"clientOrderId": "dup-1"})


def test_unknown_orders(new_account):
    _, client = new_account(USDT="1000")
    with pytest.raises(ccxt.OrderNotFound):
        client.fetch_order("999999", BTC)
    with pytest.raises(ccxt.OrderNotFound):
        client.cancel_order("999999", BTC)
    with pytest.raises(ccxt.OrderNotFound):
        client.fetch_order(None, BTC, {"origClientOrderId": "never-sent"})
    filled = client.create_order(BTC, "market", "buy", "0.001")
    with pytest.raises(ccxt.OrderNotFound):
        client.cancel_order(filled["id"], BTC)
    with pytest.raises(ccxt.OrderNotFound):  # nothing open to cancel
        client.cancel_all_orders(BTC)


def test_invalid_symbol_and_params(new_account):
    _, client = new_account(USDT="1000")
    with pytest.raises(ccxt.BadSymbol):
        client.publicGetDepth({"symbol": "NOPEUSDT"})
    with pytest.raises(ccxt.BadSymbol):
        client.privateGetOpenOrders({"symbol": "NOPEUSDT"})
    with pytest.raises(ccxt.BadRequest):
        client.privatePostOrder({"symbol": "BTCUSDT", "side": "UP", "type": "LIMIT", "quantity": "1", "price": "1"})
    with pytest.raises(ccxt.BadRequest):
        client.privatePostOrder({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001"})
    with pytest.raises(ccxt.BadRequest):
        client.privateGetOrder({"symbol": "BTCUSDT"})


# -- keys, signatures, permissions -----------------------------------------------------------------------------


def test_bad_signature(exchange, new_account):
    key, _ = new_account(USDT="1")
    client = exchange.make_ccxt(key.key, "0" * 64, options={"fetchMarkets": {"types": ["spot"]}})
    with pytest.raises(ccxt.AuthenticationError, match="-1022"):
        client.fetch_balance()


def test_unknown_and_malformed_keys(exchange):
    with pytest.raises(ccxt.AuthenticationError, match="-2015"):
        exchange.make_ccxt("a" * 64, "b" * 64).fetch_balance()
    with pytest.raises(ccxt.AuthenticationError, match="-2014"):
        exchange.make_ccxt("not a key!", "b" * 64).fetch_balance()


def test_timestamp_outside_recv_window(exchange, new_account):
    key, _ = new_account(USDT="1")
    behind = exchange.make_ccxt(key.key, key.secret)
    behind.options["timeDifference"] = 20_000  # ccxt subtracts it from its clock: the request looks 20 s old
    with pytest.raises(ccxt.InvalidNonce, match="recvWindow"):
        behind.fetch_balance()
    ahead = exchange.make_ccxt(key.key, key.secret)
    ahead.options["timeDifference"] = -5_000
    with pytest.raises(ccxt.InvalidNonce, match="ahead"):
        ahead.fetch_balance()
    wide = exchange.make_ccxt(key.key, key.secret, options={"recvWindow": 70_000})
    # Binance's -1131; ccxt maps it only in its spot table, which it applies to binance.com URLs alone.
    with pytest.raises(ccxt.ExchangeError, match="-1131"):
        wide.fetch_balance()


def test_read_only_key_cannot_trade_or_withdraw(exchange, new_account):
    key, client = new_account("read", USDT="1000")
    assert client.fetch_balance()["USDT"]["free"] == 1000.0
    with pytest.raises(ccxt.PermissionDenied):
        client.create_order(BTC, "limit", "buy", "0.001", "59000")
    # An order placed with another key of the same account: the read-only key cannot cancel it either.
    trader = exchange.sim.create_key(key.account_id, permissions=frozenset({Permission.TRADE}))
    order = exchange.make_ccxt(trader.key, trader.secret).create_order(BTC, "limit", "buy", "0.001", "59000")
    with pytest.raises(ccxt.PermissionDenied):
        client.cancel_order(order["id"], BTC)
    with pytest.raises(ccxt.PermissionDenied):
        client.cancel_all_orders(BTC)
    with pytest.raises(ccxt.PermissionDenied):
        client.withdraw("USDT", 10, "0x" + "11" * 20)


def test_trade_key_cannot_withdraw(new_account):
    _, client = new_account("trade", USDT="1000")
    with pytest.raises(ccxt.PermissionDenied):
        client.withdraw("USDT", 10, "0x" + "11" * 20)


def test_api_restrictions_tell_what_a_key_can_do(new_account):
    _, read_only = new_account("read")
    _, full = new_account("trade", "withdraw")
    r = read_only.sapiGetAccountApiRestrictions()
    assert (r["enableReading"], r["enableSpotAndMarginTrading"], r["enableWithdrawals"]) == (True, False, False)
    f = full.sapiGetAccountApiRestrictions()
    assert (f["enableSpotAndMarginTrading"], f["enableWithdrawals"]) == (True, True)
    assert full.fetch_balance()["info"]["canWithdraw"] is True


def test_funds_off_without_chain(new_account):
    _, client = new_account("trade", "withdraw", USDT="100")
    with pytest.raises(ccxt.ExchangeError):
        client.fetch_deposit_address("USDT")
    with pytest.raises(ccxt.ExchangeError):
        client.withdraw("USDT", 10, "0x" + "11" * 20)


def test_market_sell_by_quote_amount(new_account):
    _, client = new_account(BTC="1")
    # ccxt turns a market order with a price into quoteOrderQty = amount × price (its `createOrder.quoteOrderQty`).
    order = client.create_order(BTC, "market", "sell", "0.01", "59940")
    assert order["info"]["origQuoteOrderQty"] == "599.40000000"
    assert order["filled"] == 0.01
    assert order["cost"] == 599.4


def test_fetch_orders_history(new_account):
    _, client = new_account(USDT="10000")
    client.create_order(BTC, "limit", "buy", "0.001", "59000", {"clientOrderId": "h-1"})
    client.create_order(BTC, "market", "buy", "0.001", None, {"clientOrderId": "h-2"})
    orders = client.fetch_orders(BTC)
    assert [(o["clientOrderId"], o["status"]) for o in orders] == [("h-1", "open"), ("h-2", "closed")]
    assert [o["clientOrderId"] for o in client.fetch_closed_orders(BTC)] == ["h-2"]
