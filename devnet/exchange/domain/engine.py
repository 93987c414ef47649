"""The matching engine: accounts with free/locked balances, price-time priority, partial fills, maker/taker fees,
self-trade prevention, per-account history. Pure and deterministic: ids are sequential, time comes from the
clock it is given, and nothing here draws random numbers.

Conservation holds by construction: every fill moves exactly `price × qty` quote from buyer to seller and `qty`
base from seller to buyer, and each fee leaves the payer's proceeds for `fees` (the exchange's fee account), so
for each asset Σ(free + locked) + fees changes only through `credit` / `debit` (deposits and withdrawals).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from devnet.exchange.domain import errors
from devnet.exchange.domain.book import OrderBook
from devnet.exchange.domain.events import (
    AccountEvent,
    AccountListener,
    Execution,
)
from devnet.exchange.domain.model import (
    ASSET_EXP,
    ZERO,
    Account,
    Fill,
    MarketSpec,
    Order,
    OrderType,
    Side,
    Status,
    Stp,
    TimeInForce,
    Trade,
    fee_of,
    floor_to,
)
from devnet.exchange.domain.observed import Observed

TAPE_LENGTH = 50_000  # public trades kept per market (aggTrades, klines, the 24 h ticker)

TradeListener = Callable[[Trade], None]
BookListener = Callable[[str], None]
# Level listeners hear (symbol, side, price) for every price level whose resting quantity may have changed.
LevelListener = Callable[[str, Side, Decimal], None]


def _everyone(account_id: str) -> bool:
    return True


@dataclass(frozen=True)
class PlaceResult:
    order: Order
    fills: list[Fill]  # the taker side's fills of this request, in execution order


class Engine(Observed):
    def __init__(self, markets: Sequence[MarketSpec], *, clock: Callable[[], int]) -> None:
        self.markets: dict[str, MarketSpec] = {m.symbol: m for m in markets}
        self.books: dict[str, OrderBook] = {s: OrderBook(s) for s in self.markets}
        self.tape: dict[str, deque[Trade]] = {s: deque(maxlen=TAPE_LENGTH) for s in self.markets}
        self.accounts: dict[str, Account] = {}
        self.fees: dict[str, Decimal] = {}
        self.clock = clock
        # The REST handlers, the market agents and test code may call in from different threads.
        self.lock = threading.RLock()
        self._next_order_id = 1
        self._next_trade_id = 1
        self._orders: dict[int, Order] = {}
        self._by_client_id: dict[tuple[str, str, str], int] = {}
        self.trade_listeners: list[TradeListener] = []
        self.book_listeners: list[BookListener] = []
        self.book_update_id: dict[str, int] = dict.fromkeys(self.markets, 1)
        self.level_listeners: list[LevelListener] = []
        # Account events (order updates, balances) go to these, for the accounts `watching` selects: the user
        # streams watch only subscribed accounts, so the agents' churn costs no snapshots. Events of one
        # operation are batched and delivered together at its end, under the lock, in the order they happened.
        self.account_listeners: list[AccountListener] = []
        self.watching: Callable[[str], bool] = _everyone
        self._batch: list[AccountEvent] = []
        self._touched: dict[str, set[str]] = {}

    # -- accounts and balances ------------------------------------------------------------------------------

    def account(self, account_id: str) -> Account:
        with self.lock:
            acct = self.accounts.get(account_id)
            if acct is None:
                acct = self.accounts[account_id] = Account(account_id)
            return acct

    def assets(self) -> list[str]:
        seen: dict[str, None] = {}
        for m in self.markets.values():
            seen[m.base] = None
            seen[m.quote] = None
        return list(seen)

    def credit(self, account_id: str, asset: str, amount: Decimal) -> None:
        if amount <= 0 or amount != amount.quantize(ASSET_EXP):
            raise errors.invalid_quantity()
        with self.lock:
            self.account(account_id).balance(asset).free += amount
            self._balance_delta(account_id, asset, amount)

    def debit(self, account_id: str, asset: str, amount: Decimal) -> None:
        """Take `amount` from the free balance (a withdrawal); raises when it is not there, changing nothing."""
        with self.lock:
            bal = self.account(account_id).balance(asset)
            if amount <= 0 or bal.free < amount:
                raise errors.insufficient_balance()
            bal.free -= amount
            self._balance_delta(account_id, asset, -amount)

    def totals(self) -> dict[str, Decimal]:
        """Per asset: every account's free + locked, plus the fees collected (the conserved quantity)."""
        with self.lock:
            out: dict[str, Decimal] = dict(self.fees)
            for acct in self.accounts.values():
                for asset, bal in acct.balances.items():
                    out[asset] = out.get(asset, ZERO) + bal.total
            return out

    # -- orders ---------------------------------------------------------------------------------------------

    def market(self, symbol: str) -> MarketSpec:
        spec = self.markets.get(symbol)
        if spec is None:
            raise errors.invalid_symbol()
        return spec

    def place_order(
        self,
        *,
        account_id: str,
        symbol: str,
        side: Side,
        type: OrderType,
        quantity: Decimal | None = None,
        price: Decimal | None = None,
        tif: TimeInForce | None = None,
        client_order_id: str,
        quote_order_qty: Decimal | None = None,
        stp: Stp | None = None,
        fill_cap_fraction: Decimal | None = None,
    ) -> PlaceResult:
        spec = self.market(symbol)
        with self.lock:
            order = self._validate(
                spec, account_id, side, type, quantity, price, tif, client_order_id, quote_order_qty, stp
            )
            if fill_cap_fraction is not None and order.orig_qty > 0:
                order.fill_cap = max(spec.step_size, floor_to(order.orig_qty * fill_cap_fraction, spec.step_size))
            acct = self.account(account_id)
            try:
                self._lock_funds(spec, acct, order)
                order.order_id = self._next_order_id
                self._next_order_id += 1
                self._orders[order.order_id] = order
                acct.orders[order.order_id] = order
                self._by_client_id[(account_id, symbol, client_order_id)] = order.order_id
                self._order_event(order, Execution.NEW)
                fills = self._match(spec, order)
                self._finish_taker(spec, order)
                self._book_changed(symbol)
            finally:
                self._flush()
            return PlaceResult(order, fills)

    def _validate(
        self,
        spec: MarketSpec,
        account_id: str,
        side: Side,
        type: OrderType,
        quantity: Decimal | None,
        price: Decimal | None,
        tif: TimeInForce | None,
        client_order_id: str,
        quote_order_qty: Decimal | None,
        stp: Stp | None,
    ) -> Order:
        book = self.books[spec.symbol]
        if type is OrderType.MARKET:
            if price is not None or tif is not None:
                raise errors.bad_param("Parameter 'price' sent when not required.", -1106)
            if quantity is None and quote_order_qty is None:
                raise errors.bad_param("Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty.")
            if quote_order_qty is not None:
                if quantity is not None:
                    raise errors.ExchangeError(-1128, "Combination of optional parameters invalid.")
                if quote_order_qty <= 0 or quote_order_qty != quote_order_qty.quantize(ASSET_EXP):
                    raise errors.bad_param("Illegal characters found in parameter 'quoteOrderQty'.", -1100)
                spec.check_notional(quote_order_qty)
            else:
                assert quantity is not None
                spec.check_qty(quantity)
            eff_tif = TimeInForce.IOC  # market orders never rest
        else:
            if quantity is None or price is None:
                raise errors.bad_param(
                    "Mandatory parameter 'price' or 'quantity' was not sent, was empty/null, or malformed."
                )
            if type is OrderType.LIMIT and tif is None:
                raise errors.bad_param("Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.")
            if type is OrderType.LIMIT_MAKER and tif is not None:
                raise errors.bad_param("Parameter 'timeInForce' sent when not required.", -1106)
            spec.check_price(price)
            spec.check_qty(quantity)
            spec.check_notional(price * quantity)
            eff_tif = tif or TimeInForce.GTC
            if type is OrderType.LIMIT_MAKER:
                best = book.best(Side.SELL if side is Side.BUY else Side.BUY)
                if best is not None and (price >= best if side is Side.BUY else price <= best):
                    raise errors.would_take()
        if eff_tif is TimeInForce.GTC and type is not OrderType.MARKET:
            # An open order is a resting one (IOC, FOK and market orders end within their request), so the book
            # of this symbol counts them; the account's whole history would cost the agents O(all their orders).
            open_here = sum(1 for o in book.orders() if o.account_id == account_id)
            if open_here >= spec.max_num_orders:
                raise errors.filter_failure("MAX_NUM_ORDERS")
        existing = self._by_client_id.get((account_id, spec.symbol, client_order_id))
        if existing is not None and self._orders[existing].is_open:
            raise errors.duplicate_order()
        now = self.clock()
        order = Order(
            order_id=0,  # numbered once accepted: a rejected order gets no id, as on Binance
            client_order_id=client_order_id,
            account_id=account_id,
            symbol=spec.symbol,
            side=side,
            type=type,
            tif=eff_tif,
            price=price,
            orig_qty=quantity if quantity is not None else ZERO,
            quote_order_qty=quote_order_qty or ZERO,
            time=now,
            update_time=now,
            working_time=now,
            stp=stp or spec.default_stp,
        )
        return order

    def _lock_funds(self, spec: MarketSpec, acct: Account, order: Order) -> None:
        """Lock what the order may spend; raise (changing nothing) when the free balance cannot cover it."""
        if order.side is Side.SELL and order.quote_order_qty > 0:
            # A market sell sized in quote: the base the book would take to raise that amount now.
            need, asset = self._base_to_raise(spec, order.quote_order_qty), spec.base
        elif order.side is Side.SELL:
            need, asset = order.orig_qty, spec.base
        elif order.price is not None:
            need, asset = order.price * order.orig_qty, spec.quote
        elif order.quote_order_qty > 0:
            need, asset = order.quote_order_qty, spec.quote
        else:
            # A market buy by quantity: what the book would charge now. Self-trade prevention may skip some of
            # those levels, so matching also stops when the lock is spent.
            need, asset = self._cost_to_buy(spec, order.orig_qty), spec.quote
        bal = acct.balance(asset)
        if need > bal.free:
            raise errors.insufficient_balance()
        bal.free -= need
        bal.locked += need
        order.locked = need
        self._touch(acct.account_id, asset)

    def _cost_to_buy(self, spec: MarketSpec, qty: Decimal) -> Decimal:
        cost, left = ZERO, qty
        for price, queue in self.books[spec.symbol].levels_from_best(Side.SELL):
            for maker in queue:
                take = min(left, maker.fillable())
                cost += price * take
                left -= take
                if left == 0:
                    return cost
        return cost

    def _base_to_raise(self, spec: MarketSpec, quote: Decimal) -> Decimal:
        qty, left = ZERO, quote
        for price, queue in self.books[spec.symbol].levels_from_best(Side.BUY):
            for maker in queue:
                take = min(maker.fillable(), floor_to(left / price, spec.step_size))
                qty += take
                left -= take * price
                if take < maker.fillable():
                    return qty
        return qty

    def _fok_fillable(self, spec: MarketSpec, order: Order) -> bool:
        opposite = Side.SELL if order.side is Side.BUY else Side.BUY
        if order.fillable() < order.remaining:
            return False
        left = order.remaining
        for price, queue in self.books[spec.symbol].levels_from_best(opposite):
            if not self._crosses(order, price):
                break
            for maker in queue:
                if maker.account_id == order.account_id and order.stp is not Stp.NONE:
                    continue
                left -= min(left, maker.fillable())
                if left == 0:
                    return True
        return False

    @staticmethod
    def _crosses(order: Order, price: Decimal) -> bool:
        if order.price is None:
            return True
        return price <= order.price if order.side is Side.BUY else price >= order.price

    def _match(self, spec: MarketSpec, taker: Order) -> list[Fill]:
        fills: list[Fill] = []
        if taker.tif is TimeInForce.FOK and not self._fok_fillable(spec, taker):
            return fills
        book = self.books[spec.symbol]
        opposite = Side.SELL if taker.side is Side.BUY else Side.BUY
        by_budget = taker.type is OrderType.MARKET and taker.side is Side.BUY
        sell_by_quote = taker.side is Side.SELL and taker.quote_order_qty > 0
        for price, queue in book.levels_from_best(opposite):
            if not self._crosses(taker, price):
                break
            i = 0
            while i < len(queue):
                if taker.status is Status.EXPIRED_IN_MATCH:
                    return fills
                want = taker.fillable() if taker.quote_order_qty == 0 else None
                if want is not None and want == 0:
                    return fills
                maker = queue[i]
                if maker.account_id == taker.account_id and taker.stp is not Stp.NONE:
                    if taker.stp in (Stp.EXPIRE_MAKER, Stp.EXPIRE_BOTH):
                        self._close(spec, maker, Status.EXPIRED_IN_MATCH)  # removes it from `queue`
                    else:
                        i += 1
                    if taker.stp in (Stp.EXPIRE_TAKER, Stp.EXPIRE_BOTH):
                        taker.status = Status.EXPIRED_IN_MATCH
                    continue
                if maker.fillable() == 0:
                    i += 1  # a maker held back by the partial-fill-only fault keeps its place
                    continue
                qty = maker.fillable() if want is None else min(want, maker.fillable())
                if by_budget:
                    # Market buys spend at most their lock (the quote amount asked for, or the estimate).
                    qty = min(qty, floor_to(taker.locked / price, spec.step_size))
                    if taker.quote_order_qty > 0:
                        qty = min(qty, floor_to((taker.quote_order_qty - taker.cumm_quote) / price, spec.step_size))
                    if qty <= 0:
                        return fills
                if sell_by_quote:
                    # Sell until the quote amount is raised, within the base locked for it.
                    qty = min(
                        qty, taker.locked, floor_to((taker.quote_order_qty - taker.cumm_quote) / price, spec.step_size)
                    )
                    if qty <= 0:
                        return fills
                fills.append(self._execute(spec, taker, maker, price, qty))
                if maker.remaining == 0:
                    # Filled by this trade: it last changed then, as Binance's updateTime says, not a clock
                    # reading later. Removing it leaves `i` pointing at the next one.
                    self._close(spec, maker, Status.FILLED, at=maker.update_time)
                elif maker.fillable() == 0:
                    i += 1
        return fills

    def _execute(self, spec: MarketSpec, taker: Order, maker: Order, price: Decimal, qty: Decimal) -> Fill:
        now = self.clock()
        buy, sell = (taker, maker) if taker.side is Side.BUY else (maker, taker)
        trade = Trade(
            trade_id=self._next_trade_id,
            symbol=spec.symbol,
            price=price,
            qty=qty,
            time=now,
            buyer_is_maker=buy is maker,
            buy_order_id=buy.order_id,
            sell_order_id=sell.order_id,
            buyer_account=buy.account_id,
            seller_account=sell.account_id,
        )
        self._next_trade_id += 1
        quote = price * qty
        buyer = self.account(buy.account_id)
        seller = self.account(sell.account_id)
        # Buyer: the lock shrinks by what this fill was reserved at (its limit price, or the spend for market
        # buys); the part of the reservation above the fill price goes back to free.
        reserved = quote if buy.price is None else buy.price * qty
        qbal = buyer.balance(spec.quote)
        qbal.locked -= reserved
        qbal.free += reserved - quote
        buy.locked -= reserved
        # Seller: the base leaves the lock.
        sbal = seller.balance(spec.base)
        sbal.locked -= qty
        sell.locked -= qty
        # Proceeds net of fees (Binance charges the asset received when BNB is not used).
        buy_rate = spec.maker_fee if buy is maker else spec.taker_fee
        sell_rate = spec.maker_fee if sell is maker else spec.taker_fee
        buy_fee = fee_of(qty, buy_rate)
        sell_fee = fee_of(quote, sell_rate)
        buyer.balance(spec.base).free += qty - buy_fee
        seller.balance(spec.quote).free += quote - sell_fee
        self.fees[spec.base] = self.fees.get(spec.base, ZERO) + buy_fee
        self.fees[spec.quote] = self.fees.get(spec.quote, ZERO) + sell_fee
        for o in (buy, sell):
            o.executed_qty += qty
            o.cumm_quote += quote
            o.update_time = now
            if o.remaining > 0:
                o.status = Status.PARTIALLY_FILLED
        buy_fill = Fill(trade, buy.order_id, True, buy is maker, buy_fee, spec.base)
        sell_fill = Fill(trade, sell.order_id, False, sell is maker, sell_fee, spec.quote)
        buyer.fills.append(buy_fill)
        seller.fills.append(sell_fill)
        self.tape[spec.symbol].append(trade)
        self._level(spec.symbol, maker)
        if self.account_listeners:
            for account_id in (buy.account_id, sell.account_id):
                self._touch(account_id, spec.base)
                self._touch(account_id, spec.quote)
            self._order_event(buy, Execution.TRADE, buy_fill)
            self._order_event(sell, Execution.TRADE, sell_fill)
        for listener in self.trade_listeners:
            listener(trade)
        return buy_fill if buy is taker else sell_fill

    def _finish_taker(self, spec: MarketSpec, order: Order) -> None:
        # A taker that ends here without filling in full ends now: its updateTime is that moment, as on Binance
        # (a full fill already carries its last trade's time).
        if order.status is Status.EXPIRED_IN_MATCH:
            order.update_time = self.clock()
            self._release(spec, order)
            self._order_event(order, Execution.TRADE_PREVENTION)
            return
        if order.quote_order_qty > 0:
            # Sized in quote: done once what is left of the amount cannot trade one more step at the best price.
            best = self.books[spec.symbol].best(Side.SELL if order.side is Side.BUY else Side.BUY)
            left = order.quote_order_qty - order.cumm_quote
            done = left == 0 or (best is not None and order.executed_qty > 0 and left < best * spec.step_size)
        else:
            done = order.remaining == 0
        if order.quote_order_qty > 0:
            order.orig_qty = order.executed_qty  # Binance reports a quote-sized order's origQty as what it traded
        if done:
            order.status = Status.FILLED
            self._release(spec, order)
            self._mark_last_trade_filled(order)
        elif order.tif is TimeInForce.GTC:
            self.books[spec.symbol].add(order)
            self._level(spec.symbol, order)
        else:
            order.status = Status.EXPIRED
            order.update_time = self.clock()
            self._release(spec, order)
            self._order_event(order, Execution.EXPIRED)

    def _release(self, spec: MarketSpec, order: Order) -> None:
        if order.locked:
            asset = spec.base if order.side is Side.SELL else spec.quote
            bal = self.account(order.account_id).balance(asset)
            bal.locked -= order.locked
            bal.free += order.locked
            order.locked = ZERO
            self._touch(order.account_id, asset)

    def _close(
        self, spec: MarketSpec, order: Order, status: Status, *, at: int | None = None, cancel_id: str | None = None
    ) -> None:
        """Take a resting order off the book in a final status, releasing what it still holds; its last change is
        `at` (the trade that filled it) or now."""
        self.books[spec.symbol].remove(order)
        self._level(spec.symbol, order)
        order.status = status
        order.update_time = self.clock() if at is None else at
        self._release(spec, order)
        if status is Status.CANCELED:
            self._order_event(order, Execution.CANCELED, cancel_id=cancel_id)
        elif status is Status.EXPIRED_IN_MATCH:
            self._order_event(order, Execution.TRADE_PREVENTION)

    def find_order(self, account_id: str, symbol: str, *, order_id: int | None, client_id: str | None) -> Order:
        self.market(symbol)
        with self.lock:
            if order_id is None and client_id is not None:
                order_id = self._by_client_id.get((account_id, symbol, client_id))
            order = self._orders.get(order_id) if order_id is not None else None
            if order is None or order.account_id != account_id or order.symbol != symbol:
                raise errors.order_does_not_exist()
            return order

    def cancel_order(
        self,
        account_id: str,
        symbol: str,
        *,
        order_id: int | None,
        client_id: str | None,
        cancel_client_id: str | None = None,
    ) -> Order:
        spec = self.market(symbol)
        with self.lock:
            try:
                order = self.find_order(account_id, symbol, order_id=order_id, client_id=client_id)
            except errors.ExchangeError:
                raise errors.unknown_order_cancel() from None
            if not order.is_open:
                raise errors.unknown_order_cancel()
            try:
                self._close(spec, order, Status.CANCELED, cancel_id=cancel_client_id)
                self._book_changed(symbol)
            finally:
                self._flush()
            return order

    def cancel_all(self, account_id: str, symbol: str) -> list[Order]:
        spec = self.market(symbol)
        with self.lock:
            orders = self.open_orders(account_id, symbol)
            try:
                for order in orders:
                    self._close(spec, order, Status.CANCELED)
                if orders:
                    self._book_changed(symbol)
            finally:
                self._flush()
            return orders

    def open_orders(self, account_id: str, symbol: str | None = None) -> list[Order]:
        if symbol is not None:
            self.market(symbol)
        with self.lock:
            acct = self.account(account_id)
            if symbol is not None:
                return sorted(
                    (o for o in self.books[symbol].orders() if o.account_id == account_id and o.is_open),
                    key=lambda o: o.order_id,
                )
            return [o for o in acct.orders.values() if o.is_open]

    def my_fills(self, account_id: str, symbol: str) -> list[Fill]:
        self.market(symbol)
        with self.lock:
            return [f for f in self.account(account_id).fills if f.trade.symbol == symbol]

    def resting(self, symbol: str) -> Iterable[Order]:
        return list(self.books[self.market(symbol).symbol].orders())

    def forget_history(self, account_id: str) -> None:
        """Drop an account's closed orders and its fills. For the market agents, whose churn (a full requote every
        step) would otherwise grow memory without bound; customer accounts keep their history."""
        with self.lock:
            acct = self.account(account_id)
            for order_id in [oid for oid, o in acct.orders.items() if not o.is_open]:
                order = acct.orders.pop(order_id)
                self._orders.pop(order_id, None)
                key = (account_id, order.symbol, order.client_order_id)
                if self._by_client_id.get(key) == order_id:
                    del self._by_client_id[key]
            acct.fills.clear()

    def _book_changed(self, symbol: str) -> None:
        self.book_update_id[symbol] += 1
        for listener in self.book_listeners:
            listener(symbol)
