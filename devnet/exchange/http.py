"""The REST plumbing: Binance's request pipeline around each handler (request faults, weight limits, key and
signature checks, permissions), its JSON and error bodies, and the usage headers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from devnet.exchange.access import authorize, request_fault
from devnet.exchange.domain.errors import ExchangeError
from devnet.exchange.faults import Fault, FaultKind
from devnet.exchange.keys import ApiKey, Permission, split_signature
from devnet.exchange.params import Params
from devnet.exchange.simulator import Simulator

SIM_KEY: web.AppKey[Simulator] = web.AppKey("sim", Simulator)


class Req(Params):
    """A REST request's parameters, its key once authenticated, and what the handler reports for the headers."""

    def __init__(self, request: web.Request, params: dict[str, str], key: ApiKey | None) -> None:
        super().__init__(params)
        self.request = request
        self.key = key

    @property
    def account(self) -> str:
        assert self.key is not None
        return self.key.account_id


Handler = Callable[[Simulator, Req], Awaitable[Any]]
View = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        text=json.dumps(data, separators=(",", ":")), status=status, content_type="application/json", headers=headers
    )


def error_response(exc: ExchangeError) -> web.Response:
    return json_response({"code": exc.code, "msg": exc.msg}, status=exc.http_status)


async def _params(request: web.Request) -> tuple[dict[str, str], str, str]:
    raw_query = request.rel_url.raw_query_string
    raw_body = await request.text() if request.can_read_body else ""
    params = dict(parse_qsl(raw_query, keep_blank_values=True))
    if raw_body:
        params.update(parse_qsl(raw_body, keep_blank_values=True))
    return params, raw_query, raw_body


def _authorize(sim: Simulator, request: web.Request, params: dict[str, str], raw_query: str, raw_body: str,
               security: Permission) -> ApiKey:  # fmt: skip
    signed_q, sig_q = split_signature(raw_query)
    signed_b, sig_b = split_signature(raw_body)
    # Binance signs the query string followed by the body (totalParams).
    return authorize(
        sim,
        request.headers.get("X-MBX-APIKEY"),
        signed=signed_q + signed_b if sig_b is not None else signed_q,
        signature=sig_b if sig_b is not None else sig_q,
        timestamp=params.get("timestamp"),
        recv_window=params.get("recvWindow"),
        security=security,
        cancel=request.method == "DELETE",
    )


def endpoint(security: Permission | None) -> Callable[[Handler], View]:
    """Wraps a handler with Binance's request pipeline: request faults, key and signature checks, permissions,
    and the error body."""

    def wrap(handler: Handler) -> View:
        async def view(request: web.Request) -> web.StreamResponse:
            sim = request.app[SIM_KEY]
            known = sim.keys.get(request.headers.get("X-MBX-APIKEY"))
            path, method = request.path, request.method
            fault = await request_fault(sim, path=path, method=method, account=known.account_id if known else None)
            if fault is not None:
                return await fault_response(fault)
            used, over, retry = sim.limits.weigh(request.remote or "-", method, path, sim.clock())
            if over is not None:
                answer = error_response(over)
                answer.headers["Retry-After"] = str(retry)
                answer.headers["X-MBX-USED-WEIGHT-1M"] = str(used)
                return answer
            req: Req | None = None
            try:
                params, raw_query, raw_body = await _params(request)
                key = None
                if security is not None:
                    key = _authorize(sim, request, params, raw_query, raw_body, security)
                req = Req(request, params, key)
                result = await handler(sim, req)
            except ExchangeError as exc:
                response: web.StreamResponse = error_response(exc)
                if exc.http_status == 429:
                    response.headers["Retry-After"] = str(exc.retry_after or 1)
            else:
                response = result if isinstance(result, web.StreamResponse) else json_response(result)
            response.headers["X-MBX-USED-WEIGHT-1M"] = str(used)
            if req is not None and req.order_count is not None:
                response.headers["X-MBX-ORDER-COUNT-10S"] = str(req.order_count)
            return response

        return view

    return wrap


async def fault_response(fault: Fault) -> web.Response:
    """A failing request fault as a load balancer or Binance's front would answer it over HTTP."""
    if fault.kind is FaultKind.HANG:
        await asyncio.sleep(fault.hang_ms / 1000)
        return web.Response(status=504, text="Gateway Timeout")
    if fault.kind is FaultKind.HTTP_5XX:
        return web.Response(status=fault.status, text=f"<html><body><h1>{fault.status} Server Error</h1></body></html>")
    if fault.kind is FaultKind.RATE_LIMIT:
        return json_response(rate_limit_body(), status=429, headers={"Retry-After": str(fault.retry_after)})
    return json_response(MAINTENANCE_BODY, status=503)


MAINTENANCE_BODY = {"code": 1, "msg": "System is under maintenance."}


def rate_limit_body() -> dict[str, Any]:
    return {
        "code": -1003,
        "msg": "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. "
        "Please use WebSocket Streams for live updates to avoid polling the API.",
    }
