"""The simulator's customer state on disk, so that a restarted devnet exchange is the same exchange: accounts
(`acct-N`) with their balances, order and trade history, API keys, the id counters, deposits and withdrawals,
and how far the chain was scanned. The synthetic market (its agents and their books) starts afresh; customer
orders that rested at the snapshot come back cancelled, their locked funds free, as if cancelled when the
exchange went down (the executor that placed them is gone as well).

Written atomically (a temporary file renamed over the old one) every second and on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import os
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiohttp import web

from devnet.exchange.domain.model import ZERO, Fill, Order, OrderType, Side, Status, Stp, TimeInForce, Trade
from devnet.exchange.funds import Deposit, Withdrawal
from devnet.exchange.keys import ApiKey, Permission
from devnet.exchange.simulator import Simulator

VERSION = 1
CUSTOMER_PREFIX = "acct-"


def snapshot(sim: Simulator) -> dict[str, Any]:
    engine = sim.engine
    with engine.lock:
        customers = {a: acct for a, acct in engine.accounts.items() if a.startswith(CUSTOMER_PREFIX)}
        accounts = {
            account_id: {asset: str(bal.total) for asset, bal in acct.balances.items() if bal.total != ZERO}
            for account_id, acct in customers.items()
        }
        orders = [_plain(o) for acct in customers.values() for o in acct.orders.values()]
        fills = [{**_plain(f), "account_id": a} for a, acct in customers.items() for f in acct.fills]
        counters = {"order": engine._next_order_id, "trade": engine._next_trade_id}
    with sim.keys._lock:
        keys = [
            {**dataclasses.asdict(k), "permissions": sorted(p.value for p in k.permissions)}
            for k in sim.keys._keys.values()
        ]
    state: dict[str, Any] = {
        "version": VERSION,
        "accounts": accounts,
        "orders": orders,
        "fills": fills,
        "keys": keys,
        "counters": {**counters, "account": _peek(sim._account_ids), "seq": _peek(sim._seq)},
    }
    funds = sim.funds
    if funds is not None:
        with funds._lock:
            state["funds"] = {
                "scanned": funds._scanned,
                "next_id": funds._next_id,
                "deposits": [_plain(d) for d in funds.deposits.values()],
                "withdrawals": [_plain(w) for w in funds.withdrawals.values()],
            }
    return state


def restore(sim: Simulator, state: dict[str, Any]) -> None:
    """Load a snapshot into a fresh simulator (before it serves anything)."""
    if state.get("version") != VERSION:
        raise ValueError(f"unknown exchange state version {state.get('version')!r}")
    engine = sim.engine
    with engine.lock:
        for account_id, balances in state["accounts"].items():
            acct = engine.account(account_id)
            for asset, amount in balances.items():
                acct.balance(asset).free = Decimal(amount)
        for o in state.get("orders", []):
            order = _order(o)
            if order.is_open:  # it rested when the exchange went down: cancelled then, its funds free
                order.status, order.locked, order.update_time = Status.CANCELED, ZERO, sim.clock()
            engine.account(order.account_id).orders[order.order_id] = order
            engine._orders[order.order_id] = order
            engine._by_client_id[(order.account_id, order.symbol, order.client_order_id)] = order.order_id
        for f in state.get("fills", []):
            engine.account(f["account_id"]).fills.append(_fill(f))
        counters = state["counters"]
        engine._next_order_id = max(engine._next_order_id, int(counters["order"]))
        engine._next_trade_id = max(engine._next_trade_id, int(counters["trade"]))
    sim._account_ids = itertools.count(int(counters["account"]))
    sim._seq = itertools.count(int(counters["seq"]))
    with sim.keys._lock:
        for k in state["keys"]:
            permissions = frozenset(Permission(p) for p in k["permissions"])
            sim.keys._keys[k["key"]] = ApiKey(k["key"], k["secret"], k["account_id"], permissions, k["created_ms"])
    funds = sim.funds
    saved = state.get("funds")
    if funds is not None and saved is not None:
        with funds._lock:
            funds._scanned = int(saved["scanned"])
            funds._next_id = int(saved["next_id"])
            for d in saved["deposits"]:
                deposit = Deposit(**{**d, "amount": Decimal(d["amount"])})
                funds.deposits[(deposit.tx_hash, deposit.log_index)] = deposit
                funds.deposit_address(deposit.account_id, deposit.coin)  # watched again, owner known
            for w in saved["withdrawals"]:
                withdrawal = Withdrawal(**{**w, "amount": Decimal(w["amount"]), "fee": Decimal(w["fee"])})
                funds.withdrawals[withdrawal.withdraw_id] = withdrawal
                if withdrawal.withdraw_order_id is not None:
                    key = (withdrawal.account_id, withdrawal.withdraw_order_id)
                    funds._by_withdraw_order_id[key] = withdrawal.withdraw_id


def save(sim: Simulator, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(snapshot(sim)))
    os.replace(tmp, path)


def load(sim: Simulator, path: Path) -> bool:
    if not path.exists():
        return False
    restore(sim, json.loads(path.read_text()))
    return True


async def keep_saved(sim: Simulator, path: Path, *, every: float = 1.0) -> None:
    """Save every `every` seconds until cancelled, then once more."""
    try:
        while True:
            await asyncio.sleep(every)
            await asyncio.to_thread(save, sim, path)
    finally:
        with contextlib.suppress(OSError):
            save(sim, path)


def attach(app: web.Application, sim: Simulator, path: Path) -> None:
    """Keep `sim` saved to `path` while `app` serves (and once more when it shuts down)."""

    async def saver(_: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(keep_saved(sim, path))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(saver)


def _peek(counter: itertools.count[int]) -> int:
    """The next value of an itertools.count without using it up (its repr is `count(N)`)."""
    return int(repr(counter)[len("count(") : -1])


def _plain(row: Any) -> dict[str, Any]:
    return {k: _jsonable(v) for k, v in dataclasses.asdict(row).items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value  # str enums serialise as their value


_ORDER_DECIMALS = ("orig_qty", "quote_order_qty", "executed_qty", "cumm_quote", "locked")


def _order(o: dict[str, Any]) -> Order:
    return Order(
        **{
            **o,
            **{k: Decimal(o[k]) for k in _ORDER_DECIMALS},
            "price": None if o["price"] is None else Decimal(o["price"]),
            "fill_cap": None if o["fill_cap"] is None else Decimal(o["fill_cap"]),
            "side": Side(o["side"]),
            "type": OrderType(o["type"]),
            "tif": TimeInForce(o["tif"]),
            "stp": Stp(o["stp"]),
            "status": Status(o["status"]),
        }
    )


def _fill(f: dict[str, Any]) -> Fill:
    t = f["trade"]
    trade = Trade(**{**t, "price": Decimal(t["price"]), "qty": Decimal(t["qty"])})
    return Fill(
        trade=trade,
        order_id=f["order_id"],
        is_buyer=f["is_buyer"],
        is_maker=f["is_maker"],
        commission=Decimal(f["commission"]),
        commission_asset=f["commission_asset"],
    )
