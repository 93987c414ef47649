"""The exchange cross-check against the devnet exchange, through ccxt with the account's own key: orders and fills
confirmed (or not) exactly as the exchange shows them, link keys from its deposit and withdrawal addresses, and an
exchange that does not answer raising a typed error instead of confirming or unconfirming anything."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

from devnet.exchange.fixtures import RunningExchange
from devnet.exchange.keys import ApiKey, Permission
from execution import accounts
from mrmarket.exchanges.client import exchange_client
from mrmarket.exchanges.credentials import ExchangeCredentials
from mrmarket.exchanges.errors import ExchangeUnavailable, InvalidExchangeKey
from payouts import crosscheck
from payouts.domain.scoring.inputs import Fill, FillConfirmation, LiveInterval, Order, OrderConfirmation
from payouts.errors import CrossCheckFailed, CrossCheckUnsupported
from tests.factories import user_with

pytestmark = [pytest.mark.chain]
SYMBOL = "BTC/USDT"
ALL = frozenset({Permission.READ, Permission.TRADE, Permission.WITHDRAW})


@pytest.fixture
def client_of(settings, sim: RunningExchange) -> Callable[[ApiKey], Any]:
    """The product's own ccxt client (rate-limited, re-rooted by EXCHANGE_API_URLS) signed with a key."""
    settings.EXCHANGE_API_URLS = {"binance": sim.base_url}
    return lambda key: exchange_client("binance", credentials=ExchangeCredentials(key.key, key.secret))


@pytest.fixture
def account(sim: RunningExchange) -> ApiKey:
    return sim.sim.create_account(permissions=ALL, balances={"USDT": Decimal(50_000), "BTC": Decimal(2)})


@pytest.fixture
def taker(sim: RunningExchange) -> ApiKey:
    return sim.sim.create_account(permissions=ALL, balances={"USDT": Decimal(500_000), "BTC": Decimal(20)})


def inside_spread(client: Any) -> tuple[Decimal, Decimal]:
    """A bid and an ask price one tick inside the book's best: an order there rests, and is the first to trade."""
    book = client.fetch_order_book(SYMBOL)
    bid, ask = Decimal(str(book["bids"][0][0])), Decimal(str(book["asks"][0][0]))
    tick = Decimal("0.01")
    assert ask - bid > 2 * tick
    return bid + tick, ask - tick


def report_of(raw: dict[str, Any], *, closed_ms: int | None = None, **change: Any) -> Order:
    """The order as an honest report would give it (the exchange's own times), with `change` applied."""
    info = raw["info"]
    order = Order(
        order_id=raw["id"],
        side=info["side"].lower(),
        price=Fraction(info["price"]),
        amount=Fraction(info["origQty"]),
        live=(LiveInterval(live_from_ms=info["time"], live_to_ms=closed_ms, remaining=Fraction(info["origQty"])),),
        exchange=None,
    )
    return dataclasses.replace(order, **change)


def place(client: Any, side: str, amount: str, price: Decimal, client_id: str | None = None) -> dict[str, Any]:
    params = {"newClientOrderId": client_id} if client_id else {}
    placed = client.create_order(SYMBOL, "limit", side, amount, str(price), params)
    return client.fetch_order(placed["id"], SYMBOL)


def test_an_order_the_exchange_has_is_confirmed_with_its_own_fields(account, client_of) -> None:
    client = client_of(account)
    bid, _ = inside_spread(client)
    raw = place(client, "buy", "0.0123", bid)
    reported = report_of(raw)

    (out,) = crosscheck.confirm_orders(client=client, symbol=SYMBOL, orders=[reported])

    assert out.exchange == OrderConfirmation(
        side="buy", price=Fraction(str(bid)), amount=Fraction("0.0123"), created_ms=raw["info"]["time"], closed_ms=None
    )
    assert out.confirmed
    assert dataclasses.replace(out, exchange=None) == reported  # nothing else of the report changes
    client.cancel_order(raw["id"], SYMBOL)


def test_an_order_named_by_its_client_order_id_is_found(account, client_of) -> None:
    client = client_of(account)
    bid, _ = inside_spread(client)
    raw = place(client, "buy", "0.001", bid, client_id="mm-job7-1")
    reported = report_of(raw, order_id="mm-job7-1")

    (out,) = crosscheck.confirm_orders(client=client, symbol=SYMBOL, orders=[reported])

    assert out.confirmed
    assert out.order_id == "mm-job7-1"
    client.cancel_order(raw["id"], SYMBOL)


def test_a_faked_order_is_not_on_the_exchange(account, client_of, taker) -> None:
    client = client_of(account)
    bid, _ = inside_spread(client)
    real = place(client, "buy", "0.001", bid)
    someone_elses = place(client_of(taker), "buy", "0.001", bid)  # the taker's order: not this account's
    faked = [
        report_of(real, order_id="987654321"),
        report_of(real, order_id="never-placed"),
        report_of(someone_elses),
    ]

    out = crosscheck.confirm_orders(client=client, symbol=SYMBOL, orders=faked)

    assert [o.exchange for o in out] == [None, None, None]
    assert not any(o.confirmed for o in out)
    client.cancel_order(real["id"], SYMBOL)
    client_of(taker).cancel_order(someone_elses["id"], SYMBOL)


def test_a_changed_price_is_answered_with_the_exchanges_price_and_is_not_confirmed(account, client_of) -> None:
    client = client_of(account)
    bid, _ = inside_spread(client)
    raw = place(client, "buy", "0.002", bid)
    lied = report_of(raw, price=Fraction(str(bid)) - Fraction(1, 100))

    (out,) = crosscheck.confirm_orders(client=client, symbol=SYMBOL, orders=[lied])

    assert out.exchange is not None
    assert out.exchange.price == Fraction(str(bid))
    assert not out.confirmed
    client.cancel_order(raw["id"], SYMBOL)


def test_a_cancelled_order_is_closed_at_its_cancel_time(account, client_of) -> None:
    client = client_of(account)
    bid, _ = inside_spread(client)
    raw = place(client, "buy", "0.003", bid)
    cancelled_at = client.cancel_order(raw["id"], SYMBOL)["info"]["transactTime"]
    assert cancelled_at >= raw["info"]["time"]

    (closed, still_open) = crosscheck.confirm_orders(
        client=client,
        symbol=SYMBOL,
        orders=[report_of(raw, closed_ms=cancelled_at), report_of(raw, order_id=raw["clientOrderId"])],
    )

    assert closed.exchange is not None
    assert closed.exchange.closed_ms == cancelled_at
    assert closed.confirmed
    # Reported as still resting: the exchange says it closed.
    assert still_open.exchange == closed.exchange
    assert not still_open.confirmed


def test_an_order_the_history_leaves_out_is_asked_by_itself(account, client_of, monkeypatch) -> None:
    client = client_of(account)
    bid, _ = inside_spread(client)
    raw = place(client, "buy", "0.001", bid)
    # Reported as placed later than it was: the history from that time does not show it.
    late = report_of(raw, live=(LiveInterval(raw["info"]["time"] + 60_000, None, Fraction("0.001")),))
    asked: list[Any] = []
    fetch_order = client.fetch_order

    def counted(*args: Any, **kw: Any) -> Any:
        asked.append(args)
        return fetch_order(*args, **kw)

    monkeypatch.setattr(client, "fetch_order", counted)

    (out,) = crosscheck.confirm_orders(client=client, symbol=SYMBOL, orders=[late])

    assert [a[0] for a in asked] == [raw["id"]]
    assert out.exchange is not None
    assert out.exchange.created_ms == raw["info"]["time"]
    assert not out.confirmed
    client.cancel_order(raw["id"], SYMBOL)


def trade(account_client: Any, taker_client: Any, *, amount: str = "0.004") -> tuple[dict[str, Any], dict[str, Any]]:
    """The account rests an ask inside the spread; the taker buys part of it. The account's trade row, its order."""
    _, ask = inside_spread(account_client)
    resting = place(account_client, "sell", "0.01", ask)
    taker_client.create_order(SYMBOL, "limit", "buy", amount, str(ask))
    (row,) = account_client.fetch_my_trades(SYMBOL, resting["info"]["time"], 1000, {"orderId": resting["id"]})
    account_client.cancel_order(resting["id"], SYMBOL)
    return row, resting


def fill_of(row: dict[str, Any], **change: Any) -> Fill:
    fill = Fill(
        trade_id=row["id"],
        order_id=row["order"],
        side=row["side"],
        price=Fraction(row["info"]["price"]),
        amount=Fraction(row["info"]["qty"]),
        maker=row["takerOrMaker"] == "maker",
        ts_ms=row["timestamp"],
        exchange=None,
    )
    return dataclasses.replace(fill, **change)


def test_fills_are_confirmed_from_the_accounts_trade_history(account, taker, client_of) -> None:
    client = client_of(account)
    row, _ = trade(client, client_of(taker))
    t = row["timestamp"]
    honest = fill_of(row)
    faked = fill_of(row, trade_id="99999999")
    as_taker = fill_of(row, maker=False)

    out = crosscheck.confirm_fills(
        client=client, symbol=SYMBOL, fills=[honest, faked, as_taker], since_ms=t - 1000, until_ms=t + 1000
    )

    assert out[0].exchange == FillConfirmation(
        trade_id=row["id"], side="sell", price=honest.price, amount=Fraction("0.004"), maker=True
    )
    assert out[0].confirmed
    assert out[1].exchange is None
    assert not out[1].confirmed
    assert out[2].exchange == out[0].exchange
    assert not out[2].confirmed


def test_a_trade_outside_the_window_is_not_confirmed(account, taker, client_of) -> None:
    client = client_of(account)
    row, _ = trade(client, client_of(taker))
    t = row["timestamp"]

    (out,) = crosscheck.confirm_fills(
        client=client, symbol=SYMBOL, fills=[fill_of(row)], since_ms=t + 1, until_ms=t + 9
    )

    assert out.exchange is None


def test_the_trade_history_is_read_page_by_page(account, taker, client_of, monkeypatch) -> None:
    client = client_of(account)
    rows = [trade(client, client_of(taker), amount="0.001")[0] for _ in range(3)]
    monkeypatch.setattr(crosscheck, "HISTORY_PAGE", 2)
    since, until = rows[0]["timestamp"], rows[-1]["timestamp"]

    out = crosscheck.confirm_fills(
        client=client, symbol=SYMBOL, fills=[fill_of(r) for r in rows], since_ms=since, until_ms=until
    )

    assert all(f.confirmed for f in out)


def test_link_keys_are_the_accounts_deposit_and_withdrawal_addresses(sim, account, client_of, w3) -> None:
    client = client_of(account)
    to_a, to_b = "0x" + "Ab" * 20, "0x" + "0c" * 20
    client.withdraw("USDT", 25, to_a)
    client.withdraw("USDT", 30, to_b)
    client.withdraw("USDT", 40, to_a.lower())  # the same address written otherwise is one key

    links = crosscheck.link_keys(client=client, assets=["BTC", "USDT"])

    deposit = client.fetch_deposit_address("USDT")["address"]
    assert links.deposit_addresses == (deposit.lower(),)  # one address for every ERC-20 of the account
    assert links.withdrawal_addresses == tuple(sorted([to_a.lower(), to_b]))


def test_an_account_that_never_withdrew_has_only_its_deposit_address(sim, client_of) -> None:
    fresh = sim.sim.create_account(permissions=frozenset({Permission.READ}))
    links = crosscheck.link_keys(client=client_of(fresh), assets=["USDT", "BTC"])
    assert len(links.deposit_addresses) == 1
    assert links.deposit_addresses[0].startswith("0x")
    assert links.withdrawal_addresses == ()


@pytest.fixture
def fault(sim: RunningExchange) -> Any:
    added: list[int] = []

    def add(**rule: Any) -> None:
        added.append(sim.admin("POST", "/_devnet/faults", rule)["fault_id"])

    yield add
    for fault_id in added:
        sim.sim.faults.remove(fault_id)  # a counted rule is gone once used up


@pytest.mark.parametrize(
    "rule",
    [{"kind": "http_5xx", "status": 503}, {"kind": "maintenance"}, {"kind": "rate_limit", "retry_after": 1}],
    ids=["5xx", "maintenance", "rate_limit"],
)
def test_an_exchange_that_stays_down_raises_a_typed_error(account, taker, client_of, fault, rule) -> None:
    client = client_of(account)
    bid, _ = inside_spread(client)
    raw = place(client, "buy", "0.001", bid)
    row, _ = trade(client, client_of(taker))
    client.cancel_order(raw["id"], SYMBOL)
    fault(**rule, account=account.account_id)
    fast: dict[str, Any] = {"attempts": 2, "backoff_seconds": 0.0}

    with pytest.raises(ExchangeUnavailable) as orders_down:
        crosscheck.confirm_orders(client=client, symbol=SYMBOL, orders=[report_of(raw)], **fast)
    with pytest.raises(ExchangeUnavailable):
        crosscheck.confirm_fills(
            client=client, symbol=SYMBOL, fills=[fill_of(row)], since_ms=0, until_ms=row["timestamp"], **fast
        )
    with pytest.raises(ExchangeUnavailable):
        crosscheck.link_keys(client=client, assets=["USDT"], **fast)
    assert orders_down.value.code == "exchange_unavailable"


def test_a_passing_outage_is_retried(account, client_of, fault) -> None:
    client = client_of(account)
    bid, _ = inside_spread(client)
    raw = place(client, "buy", "0.001", bid)
    fault(kind="http_5xx", status=502, account=account.account_id, count=2)

    (out,) = crosscheck.confirm_orders(
        client=client, symbol=SYMBOL, orders=[report_of(raw)], attempts=3, backoff_seconds=0.0
    )

    assert out.confirmed
    client.cancel_order(raw["id"], SYMBOL)


def test_a_refused_key_raises_a_typed_error(sim, client_of) -> None:
    stranger = ApiKey("no-such-key", "no-secret", "acct-0", frozenset(), 0)
    report = Order("1", "buy", Fraction(1), Fraction(1), (LiveInterval(0, None, Fraction(1)),), None)
    with pytest.raises(InvalidExchangeKey):
        crosscheck.confirm_orders(client=client_of(stranger), symbol=SYMBOL, orders=[report])


def test_a_filled_order_is_closed_at_its_last_fill(account, taker, client_of) -> None:
    client, taker_client = client_of(account), client_of(taker)
    _, ask = inside_spread(client)
    raw = place(client, "sell", "0.005", ask)
    taker_client.create_order(SYMBOL, "limit", "buy", "0.002", str(ask))
    taker_client.create_order(SYMBOL, "limit", "buy", "0.003", str(ask))
    rows = client.fetch_my_trades(SYMBOL, raw["info"]["time"], 1000, {"orderId": raw["id"]})
    last_fill = max(r["timestamp"] for r in rows)

    (out,) = crosscheck.confirm_orders(client=client, symbol=SYMBOL, orders=[report_of(raw, closed_ms=last_fill)])

    assert len(rows) == 2
    assert out.exchange is not None
    assert out.exchange.closed_ms == last_fill
    assert out.confirmed


def test_an_unexpected_answer_raises_a_typed_error(account, client_of) -> None:
    client = client_of(account)
    bid, _ = inside_spread(client)
    raw = place(client, "buy", "0.001", bid)
    client.cancel_order(raw["id"], SYMBOL)

    with pytest.raises(CrossCheckFailed) as unlisted:
        crosscheck.confirm_orders(client=client, symbol="NOPE/USDT", orders=[report_of(raw)])
    with pytest.raises(CrossCheckFailed) as no_such_asset:
        crosscheck.link_keys(client=client, assets=["USDT", "DOGE"])

    assert unlisted.value.code == no_such_asset.value.code == "crosscheck_failed"


def test_an_exchange_without_known_raw_fields_is_not_cross_checked() -> None:
    report = Order("1", "buy", Fraction(1), Fraction(1), (LiveInterval(0, None, Fraction(1)),), None)
    with pytest.raises(CrossCheckUnsupported):
        crosscheck.confirm_orders(client=exchange_client("kraken"), symbol=SYMBOL, orders=[report])


@pytest.mark.django_db
def test_an_enrolled_accounts_own_client_confirms_its_orders(sim, account, client_of) -> None:
    # A trading key may not withdraw: the account's second key, without that permission.
    trading = sim.sim.create_key(account.account_id, permissions=frozenset({Permission.READ, Permission.TRADE}))
    enrolled = accounts.exchange_account_enrol(
        owner_id=user_with().pk,
        exchange="binance",
        label="mm",
        role="trading",
        credentials=ExchangeCredentials(trading.key, trading.secret),
    )
    client = accounts.exchange_account_client(account=enrolled)
    bid, _ = inside_spread(client)
    raw = place(client, "buy", "0.001", bid)

    (out,) = crosscheck.confirm_orders(client=client, symbol=SYMBOL, orders=[report_of(raw)])

    assert out.confirmed
    client.cancel_order(raw["id"], SYMBOL)
