"""ccxt's pro (WebSocket) Binance class, unchanged, pointed at the simulator the way the executor points it
(`reroot_api_urls` and the executor's SPOT_OPTIONS), and small helpers that wait on conditions."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt.pro

from devnet.exchange.faults import FaultEvent, FaultKind
from devnet.exchange.fixtures import RunningExchange
from devnet.exchange.keys import ApiKey, Permission
from executor.exchange import SPOT_OPTIONS
from wire.urls import reroot_api_urls

BTC = "BTC/USDT"
WAIT_S = 10  # a bound on each wait, so a broken stream fails the test instead of hanging it


def account(exchange: RunningExchange, **balances: str) -> ApiKey:
    return exchange.sim.create_account(
        permissions=frozenset({Permission.TRADE}), balances={a: Decimal(v) for a, v in balances.items()}
    )


@contextlib.asynccontextmanager
async def pro_client(exchange: RunningExchange, key: ApiKey | None = None, **config: Any) -> AsyncIterator[Any]:
    params: dict[str, Any] = {"options": dict(SPOT_OPTIONS), "timeout": 10_000, **config}
    if key is not None:
        params.setdefault("apiKey", key.key)
        params.setdefault("secret", key.secret)
    client = ccxt.pro.binance(params)
    client.urls["api"] = reroot_api_urls(client.urls["api"], exchange.base_url)
    try:
        await client.load_markets()
        yield client
    finally:
        await client.close()


async def subscribe(client: Any) -> None:
    """Subscribe the user data stream and have ccxt ready for its events. Not `authenticate()` alone: ccxt's
    handle_balance needs the balance cache that watch_orders / watch_balance set up, and an
    outboundAccountPosition arriving before it raises inside ccxt's receive loop (which then stops reading)."""
    await client.authenticate()
    asyncio.ensure_future(client.watch_orders())  # noqa: RUF006 - resolved or cancelled with the client
    for _ in range(1000):
        if "spot" in client.balance:  # watch_orders has set the caches up
            return
        await asyncio.sleep(0)
    raise AssertionError("ccxt did not set its balance cache up")


async def until(watch: Callable[[], Any], done: Callable[[Any], bool], *, rounds: int = 100) -> Any:
    """Call a ccxt watch_* until what it returns satisfies `done` (each round waits for the next update)."""
    for _ in range(rounds):
        value = await asyncio.wait_for(watch(), WAIT_S)
        if done(value):
            return value
    raise AssertionError("condition not reached")


async def fault_event(exchange: RunningExchange, kind: FaultKind, count: int = 1) -> tuple[FaultEvent, ...]:
    """Wait until rules of `kind` have acted `count` times."""
    for _ in range(WAIT_S * 100):
        events = exchange.sim.faults.events(kind=kind)
        if len(events) >= count:
            return events
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {kind} fault event")


async def order_until(client: Any, order_id: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The order as ccxt's order cache (what watch_orders returns) has it once `done` holds. The cache is read
    rather than each watch_orders result: a watch resolves on the next update only, and updates that arrived
    while the test did something else are in the cache already."""
    for _ in range(WAIT_S * 100):
        cached = by_id(list(client.orders or []), order_id)
        if cached is not None and done(cached):
            return cached
        await asyncio.sleep(0.01)
    raise AssertionError(f"order {order_id}: condition not reached; cache {list(client.orders or [])}")


async def trades_until(client: Any, done: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
    """ccxt's own-trades cache (what watch_my_trades returns) once `done` holds."""
    for _ in range(WAIT_S * 100):
        cached = list(client.myTrades or [])
        if done(cached):
            return cached
        await asyncio.sleep(0.01)
    raise AssertionError("trades condition not reached")


def by_id(orders: list[dict[str, Any]], order_id: str) -> dict[str, Any] | None:
    return next((o for o in reversed(orders) if o["id"] == order_id), None)


class RawApi:
    """A bare WebSocket API connection, for what ccxt hides (message order, unanswered requests)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, client: Any) -> None:
        self.ws = ws
        self.signer = client  # a ccxt client, used only for its sign_params
        self._ids = 0

    async def send(self, method: str, params: dict[str, Any] | None = None, *, signed: bool = False) -> str:
        self._ids += 1
        req_id = f"r{self._ids}"
        body = self.signer.sign_params(dict(params or {})) if signed else (params or {})
        await self.ws.send_str(json.dumps({"id": req_id, "method": method, "params": body}))
        return req_id

    async def receive(self) -> dict[str, Any]:
        msg = await asyncio.wait_for(self.ws.receive(), WAIT_S)
        assert msg.type is aiohttp.WSMsgType.TEXT, msg
        data: dict[str, Any] = json.loads(msg.data)
        return data

    async def answer(self, req_id: str) -> dict[str, Any]:
        """The answer to one request, skipping the events before it."""
        while True:
            data = await self.receive()
            if data.get("id") == req_id:
                return data

    async def event(self, *types: str) -> dict[str, Any]:
        while True:
            data = await self.receive()
            if "event" in data and (not types or data["event"]["e"] in types):
                event: dict[str, Any] = data["event"]
                return event


@contextlib.asynccontextmanager
async def raw_api(exchange: RunningExchange, key: ApiKey) -> AsyncIterator[RawApi]:
    url = exchange.base_url.replace("http://", "ws://") + "/ws-api/v3"
    signer = ccxt.pro.binance({"apiKey": key.key, "secret": key.secret, "options": dict(SPOT_OPTIONS)})
    async with aiohttp.ClientSession() as session, session.ws_connect(url, autoping=True) as ws:
        try:
            yield RawApi(ws, signer)
        finally:
            await signer.close()
