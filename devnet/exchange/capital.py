"""Binance's capital endpoints: deposit address and history, withdrawals (on chain, when funds are on)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from devnet.exchange.domain.errors import ExchangeError
from devnet.exchange.faults import FaultKind
from devnet.exchange.http import Req, endpoint
from devnet.exchange.keys import Permission
from devnet.exchange.simulator import Simulator


def _funds(sim: Simulator) -> Any:
    if sim.funds is None:
        # Started without --chain-rpc: trading only.
        raise ExchangeError(-1020, "This operation is not supported.")
    return sim.funds


@endpoint(Permission.READ)
async def deposit_address(sim: Simulator, req: Req) -> Any:
    funds = _funds(sim)
    coin = req.require("coin").upper()
    network = (req.get("network") or "ETH").upper()
    if network != "ETH":
        raise ExchangeError(-4018, "We don't have this asset.")
    address = funds.deposit_address(req.account, coin)
    return {"coin": coin, "address": address, "tag": "", "url": ""}


@endpoint(Permission.READ)
async def deposit_history(sim: Simulator, req: Req) -> Any:
    funds = _funds(sim)
    rows = funds.deposit_history(req.account, (req.get("coin") or "").upper() or None)
    start, end = req.integer("startTime"), req.integer("endTime")
    rows = [r for r in rows if (start is None or r["insertTime"] >= start) and (end is None or r["insertTime"] <= end)]
    return rows[: req.limit(1000)]


@endpoint(Permission.WITHDRAW)
async def withdraw_apply(sim: Simulator, req: Req) -> Any:
    funds = _funds(sim)
    coin = req.require("coin").upper()
    address = req.require("address")
    amount = req.decimal("amount")
    if amount is None:
        req.require("amount")
    assert amount is not None
    network = (req.get("network") or "ETH").upper()
    if network != "ETH":
        raise ExchangeError(-4018, "We don't have this asset.")
    if sim.faults.take(
        FaultKind.INSUFFICIENT_BALANCE, path=req.request.path, method="POST", account=req.account, now_ms=sim.clock()
    ):
        raise ExchangeError(-4026, "Account has insufficient balance for requested action.")
    withdraw_order_id = req.get("withdrawOrderId")
    withdraw_id = await asyncio.to_thread(
        funds.withdraw,
        account_id=req.account,
        coin=coin,
        amount=amount,
        address=address,
        withdraw_order_id=withdraw_order_id,
    )
    return {"id": withdraw_id}


@endpoint(Permission.READ)
async def withdraw_history(sim: Simulator, req: Req) -> Any:
    funds = _funds(sim)
    rows = funds.withdraw_history(req.account, (req.get("coin") or "").upper() or None)
    wanted = req.get("withdrawOrderId")
    if wanted is not None:
        rows = [r for r in rows if r.get("withdrawOrderId") == wanted]
    return rows[: req.limit(1000)]


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/sapi/v1/capital/deposit/address", deposit_address)
    r.add_get("/sapi/v1/capital/deposit/hisrec", deposit_history)
    r.add_get("/sapi/v1/capital/withdraw/history", withdraw_history)
    r.add_post("/sapi/v1/capital/withdraw/apply", withdraw_apply)
