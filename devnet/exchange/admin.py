"""The simulator's own admin API (`/_devnet/…`): accounts and keys, credits, faults, market control, info."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from aiohttp import web

from devnet.exchange.domain.errors import ExchangeError
from devnet.exchange.domain.model import Side, fmt
from devnet.exchange.faults import FaultError, FaultKind, parse_fault
from devnet.exchange.http import SIM_KEY, json_response
from devnet.exchange.keys import ApiKey, Permission
from devnet.exchange.simulator import Simulator


def _admin(
    handler: Callable[[Simulator, web.Request], Awaitable[Any]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def view(request: web.Request) -> web.Response:
        sim = request.app[SIM_KEY]
        token = sim.config.admin_token
        if token is not None and request.headers.get("Authorization") != f"Bearer {token}":
            return json_response({"error": "admin token required"}, status=401)
        try:
            result = await handler(sim, request)
        except (ValueError, KeyError, TypeError, FaultError, ExchangeError) as exc:
            message = exc.msg if isinstance(exc, ExchangeError) else str(exc)
            return json_response({"error": message}, status=404 if isinstance(exc, KeyError) else 400)
        return json_response(result)

    return view


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except json.JSONDecodeError:
        raise ValueError("body must be JSON") from None
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    return data


def _permissions(data: dict[str, Any]) -> frozenset[Permission]:
    raw = data.get("permissions", ["read", "trade"])
    if not isinstance(raw, list):
        raise ValueError("permissions must be a list")
    return frozenset(Permission(p) for p in raw)


def _key_json(key: ApiKey) -> dict[str, Any]:
    return {
        "account_id": key.account_id,
        "api_key": key.key,
        "secret": key.secret,
        "permissions": sorted(p.value for p in key.permissions | {Permission.READ}),
    }


async def admin_create_account(sim: Simulator, request: web.Request) -> Any:
    data = await _body(request)
    balances = {str(a): Decimal(str(v)) for a, v in (data.get("balances") or {}).items()}
    key = sim.create_account(permissions=_permissions(data), balances=balances)
    out = _key_json(key)
    if sim.funds is not None:
        out["deposit_address"] = sim.funds.deposit_address(key.account_id, next(iter(sim.funds.tokens)))
    return out


async def admin_create_key(sim: Simulator, request: web.Request) -> Any:
    data = await _body(request)
    return _key_json(sim.create_key(request.match_info["account_id"], permissions=_permissions(data)))


async def admin_account(sim: Simulator, request: web.Request) -> Any:
    account_id = request.match_info["account_id"]
    if account_id not in sim.engine.accounts:
        raise KeyError(account_id)
    acct = sim.engine.account(account_id)
    with sim.engine.lock:
        return {
            "account_id": account_id,
            "balances": {a: {"free": fmt(b.free), "locked": fmt(b.locked)} for a, b in acct.balances.items()},
            "open_orders": len(sim.engine.open_orders(account_id)),
        }


async def admin_credit(sim: Simulator, request: web.Request) -> Any:
    account_id = request.match_info["account_id"]
    if account_id not in sim.engine.accounts:
        raise KeyError(account_id)
    data = await _body(request)
    sim.engine.credit(account_id, str(data["asset"]), Decimal(str(data["amount"])))
    return await admin_account(sim, request)


async def admin_list_faults(sim: Simulator, request: web.Request) -> Any:
    return [f.to_json() for f in sim.faults.list()]


async def admin_add_fault(sim: Simulator, request: web.Request) -> Any:
    return sim.faults.add(parse_fault(await _body(request))).to_json()


async def admin_delete_fault(sim: Simulator, request: web.Request) -> Any:
    if not sim.faults.remove(int(request.match_info["fault_id"])):
        raise KeyError(request.match_info["fault_id"])
    return {}


async def admin_clear_faults(sim: Simulator, request: web.Request) -> Any:
    sim.faults.clear()
    return {}


async def admin_step(sim: Simulator, request: web.Request) -> Any:
    data = await _body(request)
    steps = int(data.get("steps", 1))
    seconds = Decimal(str(data.get("seconds", sim.config.tick_seconds)))
    if not 1 <= steps <= 10_000 or seconds <= 0:
        raise ValueError("steps must be 1..10000 and seconds positive")
    for _ in range(steps):
        sim.market.step(seconds)
    return {s: fmt(sim.market.fair(s)) for s in sim.engine.markets}


async def admin_makers(sim: Simulator, request: web.Request) -> Any:
    """`{"symbol": "MMTUSDT" (or "MMT/USDT"), "side": "BUY"|"SELL", "quoting": false}`: stop or resume one side's
    noise makers."""
    data = await _body(request)
    symbol, side = str(data["symbol"]).replace("/", ""), Side(str(data["side"]).upper())
    if symbol not in sim.market.symbols:
        raise KeyError(symbol)
    sim.market.set_makers(symbol, side, quoting=bool(data.get("quoting", False)))
    return {"symbol": symbol, "stopped": sorted(s.value for s in sim.market.makers_stopped(symbol))}


async def admin_info(sim: Simulator, request: web.Request) -> Any:
    funds = sim.funds
    return {
        "markets": list(sim.engine.markets),
        "fair": {s: fmt(sim.market.fair(s)) for s in sim.engine.markets},
        "funds": None
        if funds is None
        else {
            "rpc_url": funds.config.rpc_url,
            "assets": funds.tokens,
            "hot_wallet": funds.hot_wallet,
            "confirmations": funds.config.confirmations,
        },
        "fault_kinds": [k.value for k in FaultKind],
    }


async def admin_poll_chain(sim: Simulator, request: web.Request) -> Any:
    funds = sim.funds
    if funds is None:
        raise ValueError("started without --chain-rpc")
    await asyncio.to_thread(funds.poll_deposits)
    await asyncio.to_thread(funds.process_withdrawals)
    return {}


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_post("/_devnet/accounts", _admin(admin_create_account))
    r.add_get("/_devnet/accounts/{account_id}", _admin(admin_account))
    r.add_post("/_devnet/accounts/{account_id}/keys", _admin(admin_create_key))
    r.add_post("/_devnet/accounts/{account_id}/credit", _admin(admin_credit))
    r.add_get("/_devnet/faults", _admin(admin_list_faults))
    r.add_post("/_devnet/faults", _admin(admin_add_fault))
    r.add_delete("/_devnet/faults", _admin(admin_clear_faults))
    r.add_delete("/_devnet/faults/{fault_id}", _admin(admin_delete_fault))
    r.add_post("/_devnet/market/step", _admin(admin_step))
    r.add_post("/_devnet/market/makers", _admin(admin_makers))
    r.add_post("/_devnet/chain/poll", _admin(admin_poll_chain))
    r.add_get("/_devnet/info", _admin(admin_info))
