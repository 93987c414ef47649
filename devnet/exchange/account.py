"""The account endpoints: balances and commission rates, and the key's restrictions."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from devnet.exchange.domain.model import ZERO, fmt
from devnet.exchange.http import Req, endpoint
from devnet.exchange.keys import Permission
from devnet.exchange.simulator import Simulator


@endpoint(Permission.READ)
async def account(sim: Simulator, req: Req) -> Any:
    key = req.key
    assert key is not None
    omit_zero = (req.get("omitZeroBalances") or "").lower() == "true"
    with sim.engine.lock:
        acct = sim.engine.account(req.account)
        balances = []
        for asset in dict.fromkeys([*sim.engine.assets(), *acct.balances]):
            bal = acct.balances.get(asset)
            free, locked = (bal.free, bal.locked) if bal else (ZERO, ZERO)
            if omit_zero and free == 0 and locked == 0:
                continue
            balances.append({"asset": asset, "free": fmt(free), "locked": fmt(locked)})
    spec = next(iter(sim.engine.markets.values()))
    return {
        "makerCommission": int(spec.maker_fee * 10_000),
        "takerCommission": int(spec.taker_fee * 10_000),
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {
            "maker": fmt(spec.maker_fee),
            "taker": fmt(spec.taker_fee),
            "buyer": fmt(ZERO),
            "seller": fmt(ZERO),
        },
        "canTrade": key.can(Permission.TRADE),
        "canWithdraw": key.can(Permission.WITHDRAW),
        "canDeposit": True,
        "brokered": False,
        "requireSelfTradePrevention": False,
        "preventSor": False,
        "updateTime": sim.clock(),
        "accountType": "SPOT",
        "balances": balances,
        "permissions": ["SPOT"],
        "uid": int(req.account.split("-")[-1]),
    }


@endpoint(Permission.READ)
async def api_restrictions(sim: Simulator, req: Req) -> Any:
    key = req.key
    assert key is not None
    return {
        "ipRestrict": False,
        "createTime": key.created_ms,
        "enableReading": True,
        "enableSpotAndMarginTrading": key.can(Permission.TRADE),
        "enableWithdrawals": key.can(Permission.WITHDRAW),
        "enableInternalTransfer": False,
        "enableMargin": False,
        "enableFutures": False,
        "permitsUniversalTransfer": False,
        "enableVanillaOptions": False,
        "enableFixApiTrade": False,
        "enableFixReadOnly": False,
        "enablePortfolioMarginTrading": False,
    }


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/api/v3/account", account)
    r.add_get("/sapi/v1/account/apiRestrictions", api_restrictions)
