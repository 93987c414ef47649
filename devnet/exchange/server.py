"""The aiohttp app: Binance spot REST (/api/v3/…), capital endpoints (/sapi/v1/…), the public WebSocket streams
(/ws, /stream/ws), the WebSocket API with the user data stream (/ws-api/v3), and the simulator's admin API
(/_devnet/…). A thin skin over `Simulator`; each concern lives in its own module, assembled here with the
background tasks (market steps, funds, stream publishing and stream faults)."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from devnet.exchange import account, admin, capital, public, trading
from devnet.exchange.faults import Fault, FaultKind
from devnet.exchange.http import SIM_KEY
from devnet.exchange.simulator import Simulator
from devnet.exchange.stream import MARKET_SLOTS, StreamHub
from devnet.exchange.user_stream import UserStreams
from devnet.exchange.ws_api import WS_API_PATH, WsApi
from devnet.exchange.wsconn import WS_METHOD

HUB_KEY: web.AppKey[StreamHub] = web.AppKey("hub", StreamHub)
USERS_KEY: web.AppKey[UserStreams] = web.AppKey("users", UserStreams)
WS_API_KEY: web.AppKey[WsApi] = web.AppKey("ws_api", WsApi)
_TASKS: web.AppKey[list[asyncio.Task[None]]] = web.AppKey("tasks", list)
_AT_ONCE = frozenset({FaultKind.STREAM_DISCONNECT, FaultKind.STREAM_EXPIRE})


def build_app(sim: Simulator) -> web.Application:
    app = web.Application()
    app[SIM_KEY] = sim
    hub = app[HUB_KEY] = StreamHub(sim)
    users = app[USERS_KEY] = UserStreams(sim, hub.deliverer)
    ws_api = app[WS_API_KEY] = WsApi(sim, users)
    r = app.router
    for module in (public, account, trading, capital, admin):
        module.add_routes(r)
    # Binance's stream path (/ws) re-rooted as is, and /stream/ws, which ccxt recognises as a spot stream by its
    # URL (with only spot markets loaded, either works).
    for prefix in ("/ws", "/stream/ws"):
        r.add_get(prefix, hub.handle)
        r.add_get(prefix + "/{n}", hub.handle)
    r.add_get(WS_API_PATH, ws_api.handle)
    app[_TASKS] = []
    app.on_startup.append(_start_background)
    app.on_cleanup.append(_stop_background)
    return app


async def act_on_stream_faults(app: web.Application) -> None:
    """Disconnects and expiries: on the connections and subscriptions older than the rules."""
    sim, hub, ws_api, users = app[SIM_KEY], app[HUB_KEY], app[WS_API_KEY], app[USERS_KEY]
    users.expire_faulted()
    if not sim.faults.any(frozenset({FaultKind.STREAM_DISCONNECT})):
        return
    for conn in [*hub.connections, *ws_api.sessions]:
        rule = sim.faults.take(
            FaultKind.STREAM_DISCONNECT,
            path=conn.path,
            method=WS_METHOD,
            account=conn.account,
            now_ms=sim.clock(),
            newer_than=conn.epoch,
        )
        if rule is not None:
            await conn.close()


async def _market_loop(sim: Simulator) -> None:
    # Each market moves once a tick, a tenth of the markets every tenth of it: the books do not all change (and
    # their diffs are not all published) in the same instant.
    slot = 0
    while True:
        await asyncio.sleep(float(sim.config.tick_seconds) / MARKET_SLOTS)
        sim.market.step(sim.config.tick_seconds, slot=slot, slots=MARKET_SLOTS)
        slot = (slot + 1) % MARKET_SLOTS


async def _stream_fault_loop(app: web.Application, wake: asyncio.Event) -> None:
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), 0.1)
        wake.clear()
        await act_on_stream_faults(app)


async def _start_background(app: web.Application) -> None:
    sim = app[SIM_KEY]
    sim.market.seed_books()
    tasks = app[_TASKS]
    if sim.config.run_market:
        tasks.append(asyncio.create_task(_market_loop(sim)))
    if sim.funds is not None:
        tasks.append(asyncio.create_task(sim.funds.run()))
    tasks.append(asyncio.create_task(app[HUB_KEY].run()))
    tasks.append(asyncio.create_task(app[USERS_KEY].run()))
    loop, wake = asyncio.get_running_loop(), asyncio.Event()

    def added(fault: Fault) -> None:
        # Rules may be added from a test's thread: a disconnect or expiry acts at once, on the loop.
        if fault.kind in _AT_ONCE:
            loop.call_soon_threadsafe(wake.set)

    sim.faults.on_add.append(added)
    tasks.append(asyncio.create_task(_stream_fault_loop(app, wake)))


async def _stop_background(app: web.Application) -> None:
    for task in app[_TASKS]:
        task.cancel()
    for task in app[_TASKS]:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await app[HUB_KEY].close()
    await app[WS_API_KEY].close()
