"""What every request goes through before its handler, on either transport (REST or the WebSocket API): the
request faults of its path, then the API key, the signature and the key's permission for the action."""

from __future__ import annotations

import asyncio

from devnet.exchange.domain import errors
from devnet.exchange.domain.errors import ExchangeError
from devnet.exchange.faults import REQUEST_FAULTS, Fault, FaultKind
from devnet.exchange.keys import ApiKey, Permission, verify
from devnet.exchange.simulator import Simulator

FAILING_REQUEST_FAULTS = REQUEST_FAULTS - {FaultKind.LATENCY}


async def request_fault(sim: Simulator, *, path: str, method: str, account: str | None) -> Fault | None:
    """Latency first (slept here), then at most one failing fault, which the caller answers its own way."""
    delay = sim.faults.take(FaultKind.LATENCY, path=path, method=method, account=account, now_ms=sim.clock())
    if delay is not None:
        await asyncio.sleep(delay.latency_ms / 1000)
    return sim.faults.take(FAILING_REQUEST_FAULTS, path=path, method=method, account=account, now_ms=sim.clock())


def authorize(
    sim: Simulator,
    api_key: str | None,
    *,
    signed: str,
    signature: str | None,
    timestamp: str | None,
    recv_window: str | None,
    security: Permission,
    cancel: bool,
) -> ApiKey:
    """The key, once its format, existence, the request's timestamp window and signature and the permission
    check out; Binance's error otherwise (-2014/-2015, -1021, -1022, -2010/-2011/-1002)."""
    key = sim.keys.authenticate(api_key)
    verify(key, signed=signed, signature=signature, timestamp=timestamp, recv_window=recv_window, now_ms=sim.clock())
    if not key.can(security):
        raise permission_error(security, cancel=cancel)
    return key


def permission_error(permission: Permission, *, cancel: bool) -> ExchangeError:
    if permission is Permission.WITHDRAW:
        return errors.no_withdraw_permission()
    # A key without "Enable Spot & Margin Trading": new orders are rejected (-2010), cancels too (-2011).
    return errors.cancel_trading_disabled() if cancel else errors.trading_disabled()
