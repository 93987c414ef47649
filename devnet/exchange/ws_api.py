"""Binance's spot WebSocket API at `/ws-api/v3`: requests `{"id", "method", "params"}`, answers
`{"id", "status": 200, "result": ..., "rateLimits": [...]}` or `{"id", "status": 4xx, "error": {"code", "msg"}}`.

Methods: ping, time, session.status, order.place, order.test, order.cancel, openOrders.cancelAll,
userDataStream.subscribe.signature, userDataStream.unsubscribe. Signed methods carry apiKey, timestamp,
(recvWindow) and signature in `params`: the HMAC is over the other params sorted by key as `k=v&…` (what ccxt's
sign_params signs), checked by the same code as REST, with the same errors. Orders go through orders.py, the
REST path. Request faults match the path `/ws-api/v3/<method>` with method "WS" (see faults.py).

Each request is served in its own task, in arrival order up to its first wait (a latency fault), so a slow
request does not hold up the next one, as on Binance.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from devnet.exchange import orders
from devnet.exchange.access import authorize, request_fault
from devnet.exchange.domain.errors import ExchangeError
from devnet.exchange.faults import Fault, FaultKind
from devnet.exchange.http import MAINTENANCE_BODY, rate_limit_body
from devnet.exchange.keys import ApiKey, Permission
from devnet.exchange.params import Params
from devnet.exchange.stream import refusal
from devnet.exchange.user_stream import UserStreams
from devnet.exchange.wsconn import WS_METHOD, Connection, new_socket

if TYPE_CHECKING:
    from devnet.exchange.simulator import Simulator

WS_API_PATH = "/ws-api/v3"
INTERNAL_MSG = "Internal error; unable to process your request. Please try again."
INTERNAL_ERROR: dict[str, Any] = {"code": -1001, "msg": INTERNAL_MSG}


class Session:
    """A WebSocket API connection's state."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.next_subscription = 0
        self.tasks: set[asyncio.Task[None]] = set()


class Call(Params):
    def __init__(self, session: Session, req_id: Any, method: str, params: dict[str, str]) -> None:
        super().__init__(params)
        self.session = session
        self.id = req_id
        self.method = method
        self.key: ApiKey | None = None

    @property
    def path(self) -> str:
        return f"{WS_API_PATH}/{self.method}"

    def route(self) -> orders.Route:
        assert self.key is not None
        return orders.Route(self.key.account_id, self.path, WS_METHOD)


Method = Callable[["WsApi", Call], Awaitable[Any]]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def signed_payload(params: dict[str, str]) -> str:
    return "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "signature")


class WsApi:
    def __init__(self, sim: Simulator, users: UserStreams) -> None:
        self.sim = sim
        self.users = users
        self.sessions: dict[Connection, Session] = {}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        refused = refusal(self.sim, request.path)
        if refused is not None:
            return refused
        ws = new_socket()
        await ws.prepare(request)
        conn = Connection(self.sim, ws, request.path)
        session = self.sessions[conn] = Session(conn)
        try:
            async for text in conn.messages():
                task = asyncio.create_task(self._serve(session, text, request.remote or "-"))
                session.tasks.add(task)
                task.add_done_callback(session.tasks.discard)
        finally:
            self.users.unsubscribe(conn)
            self.sessions.pop(conn, None)
            for task in list(session.tasks):
                task.cancel()
            await conn.close()
        return ws

    async def _serve(self, session: Session, text: str, ip: str) -> None:
        try:
            # Numbers kept as they were written: they are signed as text.
            data = json.loads(text, parse_int=str, parse_float=str)
            req_id, method, raw = data.get("id"), str(data["method"]), data.get("params") or {}
            params = {str(k): _text(v) for k, v in raw.items() if v is not None}
        except (ValueError, KeyError, TypeError, AttributeError):
            session.conn.send_json({"id": None, "status": 400, "error": {"code": -1000, "msg": "Invalid JSON."}})
            return
        call = Call(session, req_id, method, params)
        answer = await self._answer(call, ip)
        if answer is not None:
            session.conn.send_json(answer)

    async def _answer(self, call: Call, ip: str) -> dict[str, Any] | None:
        known = self.sim.keys.get(call.get("apiKey"))
        fault = await request_fault(
            self.sim, path=call.path, method=WS_METHOD, account=known.account_id if known else None
        )
        if fault is not None:
            return await self._fault_answer(call, fault)
        used, over, retry = self.sim.limits.weigh(ip, WS_METHOD, call.path, self.sim.clock())
        limits = [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000,
                   "count": used}]  # fmt: skip
        try:
            if over is not None:
                over.retry_after = retry
                raise over
            handler = METHODS.get(call.method)
            if handler is None:
                raise ExchangeError(-1020, "Unknown method.")
            result = await handler(self, call)
        except ExchangeError as exc:
            return self._error(call, exc, limits)
        except _Silent:
            return None
        if call.order_count is not None:
            limits.append({"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100,
                           "count": call.order_count})  # fmt: skip
        return {"id": call.id, "status": 200, "result": result, "rateLimits": limits}

    def _ban_data(self, retry_after_s: int) -> dict[str, int]:
        # Binance's WebSocket API says when the ban ends (epoch ms) next to its own time, not for how long.
        now = self.sim.clock()
        return {"serverTime": now, "retryAfter": now + retry_after_s * 1000}

    def _error(self, call: Call, exc: ExchangeError, limits: list[dict[str, Any]]) -> dict[str, Any]:
        error: dict[str, Any] = {"code": exc.code, "msg": exc.msg}
        if exc.http_status == 429:
            error["data"] = self._ban_data(exc.retry_after or 1)
        return {"id": call.id, "status": exc.http_status, "error": error, "rateLimits": limits}

    async def _fault_answer(self, call: Call, fault: Fault) -> dict[str, Any] | None:
        if fault.kind is FaultKind.HANG:
            await asyncio.sleep(fault.hang_ms / 1000)
            return None  # the client's timeout ends it
        if fault.kind is FaultKind.HTTP_5XX:
            return {"id": call.id, "status": fault.status, "error": INTERNAL_ERROR}
        if fault.kind is FaultKind.RATE_LIMIT:
            error = {**rate_limit_body(), "data": self._ban_data(fault.retry_after)}
            return {"id": call.id, "status": 429, "error": error}
        return {"id": call.id, "status": 503, "error": MAINTENANCE_BODY}

    def authorize(self, call: Call, security: Permission) -> ApiKey:
        call.key = authorize(
            self.sim,
            call.get("apiKey"),
            signed=signed_payload(call.params),
            signature=call.get("signature"),
            timestamp=call.get("timestamp"),
            recv_window=call.get("recvWindow"),
            security=security,
            cancel=call.method.endswith("cancel") or call.method.endswith("cancelAll"),
        )
        return call.key

    async def close(self) -> None:
        for conn in list(self.sessions):
            await conn.close()


class _Silent(Exception):
    """The answer is lost (a lost cancel ack): nothing is sent back."""


async def _ping(api: WsApi, call: Call) -> Any:
    return {}


async def _time(api: WsApi, call: Call) -> Any:
    return {"serverTime": api.sim.clock()}


async def _session_status(api: WsApi, call: Call) -> Any:
    now = api.sim.clock()
    subs = api.users.subscriptions(call.session.conn)
    return {"apiKey": None, "authorizedSince": None, "connectedSince": call.session.conn.opened_ms,
            "returnRateLimits": True, "serverTime": now, "userDataStream": bool(subs)}  # fmt: skip


async def _order_place(api: WsApi, call: Call) -> Any:
    api.authorize(call, Permission.TRADE)
    return orders.place(api.sim, call, call.route())


async def _order_test(api: WsApi, call: Call) -> Any:
    api.authorize(call, Permission.TRADE)
    return orders.place(api.sim, call, call.route(), test=True)


async def _lost(fault: Fault) -> None:
    if fault.mode == "5xx":
        raise ExchangeError(-1001, INTERNAL_MSG, http_status=502)
    await asyncio.sleep(fault.hang_ms / 1000)
    raise _Silent


async def _order_cancel(api: WsApi, call: Call) -> Any:
    api.authorize(call, Permission.TRADE)
    done = orders.cancel(api.sim, call, call.route())
    if done.lost is not None:
        await _lost(done.lost)
    return done.answer


async def _cancel_all(api: WsApi, call: Call) -> Any:
    api.authorize(call, Permission.TRADE)
    done = orders.cancel_all(api.sim, call, call.route())
    if done.lost is not None:
        await _lost(done.lost)
    return done.answer


async def _subscribe_signature(api: WsApi, call: Call) -> Any:
    key = api.authorize(call, Permission.READ)
    session = call.session
    subscription_id = session.next_subscription
    session.next_subscription += 1
    api.users.subscribe(session.conn, key.account_id, subscription_id)
    return {"subscriptionId": subscription_id}


async def _unsubscribe(api: WsApi, call: Call) -> Any:
    wanted = call.integer("subscriptionId")
    ended = api.users.unsubscribe(call.session.conn, wanted)
    if wanted is not None and not ended:
        raise ExchangeError(-2035, "User Data Stream subscription not found.")
    return {}


METHODS: dict[str, Method] = {
    "ping": _ping,
    "time": _time,
    "session.status": _session_status,
    "order.place": _order_place,
    "order.test": _order_test,
    "order.cancel": _order_cancel,
    "openOrders.cancelAll": _cancel_all,
    "userDataStream.subscribe.signature": _subscribe_signature,
    "userDataStream.unsubscribe": _unsubscribe,
}
