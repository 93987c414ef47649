"""The engine's observer side: level listeners (the depth stream's incremental diffs) and account events (the
user data stream), batched per engine operation and delivered at its end, under the engine's lock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

from devnet.exchange.domain.events import (
    AccountEvent,
    AccountListener,
    AccountPosition,
    BalanceDelta,
    Execution,
    OrderUpdate,
)
from devnet.exchange.domain.model import OPEN_STATUSES, Account, Fill, Order, OrderType, Side, Status, TimeInForce

# Level listeners hear (symbol, side, price) for every price level whose resting quantity may have changed.
LevelListener = Callable[[str, Side, Decimal], None]


class Observed:
    """Mixed into Engine, which sets these attributes up in its constructor."""

    level_listeners: list[LevelListener]
    account_listeners: list[AccountListener]
    watching: Callable[[str], bool]
    accounts: dict[str, Account]
    clock: Callable[[], int]
    _batch: list[AccountEvent]
    _touched: dict[str, set[str]]

    def _level(self, symbol: str, order: Order) -> None:
        if self.level_listeners and order.price is not None:
            for listener in self.level_listeners:
                listener(symbol, order.side, order.price)

    def _touch(self, account_id: str, asset: str) -> None:
        if self.account_listeners and self.watching(account_id):
            self._touched.setdefault(account_id, set()).add(asset)

    def _order_event(
        self, order: Order, execution: Execution, fill: Fill | None = None, *, cancel_id: str | None = None
    ) -> None:
        if not self.account_listeners or not self.watching(order.account_id):
            return
        if execution is Execution.TRADE:
            status = Status.FILLED if order.remaining == 0 and order.quote_order_qty == 0 else Status.PARTIALLY_FILLED
        else:
            status = order.status
        when = order.time if execution is Execution.NEW else order.update_time
        time = fill.trade.time if fill is not None else when
        on_book = order.tif is TimeInForce.GTC and order.type is not OrderType.MARKET and status in OPEN_STATUSES
        self._batch.append(
            OrderUpdate(
                order,
                execution,
                status,
                order.orig_qty,
                order.executed_qty,
                order.cumm_quote,
                fill,
                time,
                on_book,
                cancel_id,
            )
        )

    def _mark_last_trade_filled(self, order: Order) -> None:
        """A taker's last fill says FILLED: with a quote-sized order that is known only once matching stops."""
        for i in range(len(self._batch) - 1, -1, -1):
            event = self._batch[i]
            if isinstance(event, OrderUpdate) and event.order is order:
                if event.execution is Execution.TRADE and event.status is not Status.FILLED:
                    self._batch[i] = replace(event, status=Status.FILLED, orig_qty=order.orig_qty, on_book=False)
                return

    def _balance_delta(self, account_id: str, asset: str, delta: Decimal) -> None:
        if self.account_listeners and self.watching(account_id):
            self._batch.append(BalanceDelta(account_id, asset, delta, self.clock()))
            self._touched.setdefault(account_id, set()).add(asset)
            self._flush()

    def _flush(self) -> None:
        """Deliver the batched events of the operation that just ended, then each touched account's position."""
        if not self._batch and not self._touched:
            return
        batch, self._batch = self._batch, []
        touched, self._touched = self._touched, {}
        now = self.clock()
        for account_id, assets in touched.items():
            acct = self.accounts[account_id]
            balances = tuple((a, acct.balances[a].free, acct.balances[a].locked) for a in sorted(assets))
            batch.append(AccountPosition(account_id, balances, now))
        for event in batch:
            for listener in self.account_listeners:
                listener(event)
