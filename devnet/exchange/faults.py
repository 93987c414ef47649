"""Fault injection: rules set at runtime (admin endpoint or tests), each scoped to an endpoint and/or an account.

A rule matches a request when its `endpoint` (an exact path such as "/api/v3/order", or a prefix ending in
"*") and `method` match, and its `account` (when set) is the account owning the request's API key. `count`
limits how many requests it affects (then it is removed); `until_ms` ends it at a wall-clock time
(maintenance windows).

Every time a rule acts on a request the registry records a `FaultEvent` (which rule, which request, when), so a
test can wait for the fault to have happened — or for a counting rule to have seen the next request — instead of
sleeping through a window and hoping.

WebSocket API requests are matched by the path `/ws-api/v3/<method>` (e.g. endpoint "/ws-api/v3/order.place",
or "/ws-api/v3*" for all of them) and the method "WS": the request faults (latency, hang, http_5xx, rate_limit,
maintenance) and the order faults (insufficient_balance, partial_fill_only, lost_cancel_ack) act on them as on
REST (`/api/v3/order` with POST / DELETE). A hang, or a lost cancel ack in "hang" mode, never answers; the
failing ones answer the WebSocket API's error form, `{"id", "status", "error": {"code", "msg"}}`.

Stream faults act on open WebSocket connections (the public streams `/ws…`, `/stream/ws…` and the WebSocket API
`/ws-api/v3`), matched by `endpoint` against the connection's path, `account` against the account whose user
data stream it has subscribed, `event` against the Binance event type ("executionReport", "depthUpdate", …) and
`symbol` against the event's symbol ("BTCUSDT"):

- stream_disconnect: closes the matching connections open when the rule was added (`count` = connections
  closed); connections opened later are left alone, so a client can reconnect.
- stream_stall: while the rule is active nothing more is sent on matching connections — events, WebSocket API
  answers and pongs are lost silently, like a dead TCP path (each lost message is one use of `count`).
- stream_drop: matching events are not delivered (`count` = deliveries dropped).
- stream_delay: matching events are delivered `latency_ms` late; what follows on the connection waits behind
  them, so order is kept.
- stream_gap: the depth stream of `symbol` loses one diff: the next event has U > the previous u + 1, and a
  client must resync from the REST snapshot (`count` = gaps).
- stream_expire: user data subscriptions made before the rule was added end: the connection gets
  `{"subscriptionId": N, "event": {"e": "eventStreamTerminated", "E": ms}}` and no more of the account's events
  on it; a new subscribe works (`count` = subscriptions ended).

A 5xx or maintenance rule covering a stream path refuses new connections there and drops open ones: a stream
that never comes back while the rule lasts.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any


class FaultKind(StrEnum):
    LATENCY = "latency"  # delay the answer by `latency_ms`
    HANG = "hang"  # never answer within the client's timeout (held `hang_ms`, then the connection is dropped)
    HTTP_5XX = "http_5xx"  # answer `status` (500, 502, 503, 504) with a non-JSON body, like a load balancer
    RATE_LIMIT = "rate_limit"  # 429 with Retry-After and Binance's -1003 body
    MAINTENANCE = "maintenance"  # 503 "System is under maintenance."
    PARTIAL_FILL_ONLY = "partial_fill_only"  # orders never fill beyond `fraction` of their quantity
    INSUFFICIENT_BALANCE = "insufficient_balance"  # new orders and withdrawals rejected for balance
    LOST_CANCEL_ACK = "lost_cancel_ack"  # the cancel happens, but its answer is lost (hang or 5xx)
    WITHDRAWAL_FAILURE = "withdrawal_failure"  # accepted withdrawals end failed (refunded), nothing on chain
    DEPOSIT_DELAY = "deposit_delay"  # deposits stay pending (not credited) while the rule is active
    STREAM_DISCONNECT = "stream_disconnect"  # close matching open WebSocket connections at once
    STREAM_STALL = "stream_stall"  # matching connections stay open but nothing is sent on them
    STREAM_DROP = "stream_drop"  # matching events are not delivered
    STREAM_DELAY = "stream_delay"  # matching events are delivered `latency_ms` late, order kept
    STREAM_GAP = "stream_gap"  # the depth stream of `symbol` skips one diff
    STREAM_EXPIRE = "stream_expire"  # the account's user data subscription ends (eventStreamTerminated)


# Faults that act inside the request (engine or funds flow) rather than instead of it.
REQUEST_FAULTS = frozenset(
    {FaultKind.LATENCY, FaultKind.HANG, FaultKind.HTTP_5XX, FaultKind.RATE_LIMIT, FaultKind.MAINTENANCE}
)


STREAM_KINDS = frozenset(
    {
        FaultKind.STREAM_DISCONNECT,
        FaultKind.STREAM_STALL,
        FaultKind.STREAM_DROP,
        FaultKind.STREAM_DELAY,
        FaultKind.STREAM_GAP,
        FaultKind.STREAM_EXPIRE,
    }
)


class FaultError(ValueError):
    pass


@dataclass
class Fault:
    kind: FaultKind
    endpoint: str = "*"
    method: str | None = None
    account: str | None = None
    count: int | None = None
    until_ms: int | None = None
    latency_ms: int = 0
    hang_ms: int = 30_000
    status: int = 503
    retry_after: int = 1
    fraction: Decimal = Decimal("0.5")
    mode: str = "hang"  # lost_cancel_ack: "hang" or "5xx"
    event: str | None = None  # stream faults: a Binance event type ("executionReport", "depthUpdate", …)
    symbol: str | None = None  # stream faults: the event's symbol ("BTCUSDT"; "BTC/USDT" is read the same)
    fault_id: int = field(default=0)

    def matches(
        self,
        path: str,
        method: str,
        account: str | None,
        now_ms: int,
        event: str | None = None,
        symbol: str | None = None,
    ) -> bool:
        if self.until_ms is not None and now_ms >= self.until_ms:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self.account is not None and self.account != account:
            return False
        if self.event is not None and self.event != event:
            return False
        if self.symbol is not None and self.symbol.replace("/", "").upper() != (symbol or "").upper():
            return False
        if self.endpoint.endswith("*"):
            return path.startswith(self.endpoint[:-1])
        return path == self.endpoint

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["kind"] = str(self.kind)
        out["fraction"] = str(self.fraction)
        return out


_FIELDS: Mapping[str, Callable[[Any], Any]] = {
    "endpoint": str,
    "method": str,
    "account": str,
    "count": int,
    "until_ms": int,
    "latency_ms": int,
    "hang_ms": int,
    "status": int,
    "retry_after": int,
    "fraction": lambda v: Decimal(str(v)),
    "mode": str,
    "event": str,
    "symbol": str,
}


def parse_fault(data: Mapping[str, Any]) -> Fault:
    """A fault from its JSON form; unknown or malformed fields raise `FaultError`."""
    try:
        kind = FaultKind(data["kind"])
    except (KeyError, ValueError):
        raise FaultError(f"kind must be one of {[k.value for k in FaultKind]}") from None
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key == "kind" or value is None:
            continue
        conv = _FIELDS.get(key)
        if conv is None:
            raise FaultError(f"unknown field {key!r}")
        try:
            kwargs[key] = conv(value)
        except (TypeError, ValueError, InvalidOperation):
            raise FaultError(f"bad value for {key!r}") from None
    fault = Fault(kind=kind, **kwargs)
    if fault.kind is FaultKind.HTTP_5XX and not 500 <= fault.status <= 599:
        raise FaultError("status must be 5xx")
    if not Decimal(0) < fault.fraction < Decimal(1):
        raise FaultError("fraction must be between 0 and 1")
    if fault.mode not in ("hang", "5xx"):
        raise FaultError("mode must be 'hang' or '5xx'")
    if fault.count is not None and fault.count < 1:
        raise FaultError("count must be at least 1")
    return fault


@dataclass(frozen=True)
class FaultEvent:
    """One request a rule acted on: `detail` names what it acted on when the path does not (a cancelled
    order's client id, say)."""

    fault_id: int
    kind: FaultKind
    path: str
    method: str
    account: str | None
    at_ms: int
    detail: str = ""


EVENTS_KEPT = 50_000  # a long demo run must not grow without bound; a test reads far fewer


class FaultRegistry:
    def __init__(self) -> None:
        self._faults: dict[int, Fault] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._events: deque[FaultEvent] = deque(maxlen=EVENTS_KEPT)
        self._last_id = 0
        # Called (from the adding thread) after a rule is added: the stream hubs act on disconnects and expiries
        # at once rather than on their next round.
        self.on_add: list[Callable[[Fault], None]] = []

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            fault.fault_id = next(self._ids)
            self._last_id = fault.fault_id
            self._faults[fault.fault_id] = fault
        for callback in self.on_add:
            callback(fault)
        return fault

    @property
    def last_id(self) -> int:
        """The id of the newest rule: a connection or subscription remembers it to tell older rules from newer."""
        return self._last_id

    def any(self, kinds: frozenset[FaultKind]) -> bool:
        """Whether a rule of these kinds exists (a cheap check before matching on a hot path)."""
        faults = self._faults
        return bool(faults) and any(f.kind in kinds for f in list(faults.values()))

    def remove(self, fault_id: int) -> bool:
        with self._lock:
            return self._faults.pop(fault_id, None) is not None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def list(self) -> list[Fault]:
        with self._lock:
            return list(self._faults.values())

    def take(
        self,
        kinds: frozenset[FaultKind] | FaultKind,
        *,
        path: str,
        method: str,
        account: str | None,
        now_ms: int,
        detail: str = "",
        event: str | None = None,
        symbol: str | None = None,
        newer_than: int | None = None,
    ) -> Fault | None:
        """The first active rule of these kinds matching the request; counts one use of it and records it.
        `newer_than`: only rules added after that rule id (those that came after a connection or subscription)."""
        wanted = kinds if isinstance(kinds, frozenset) else frozenset({kinds})
        with self._lock:
            for fault in list(self._faults.values()):
                if newer_than is not None and fault.fault_id <= newer_than:
                    continue
                if fault.kind in wanted and fault.matches(path, method, account, now_ms, event, symbol):
                    if fault.count is not None:
                        fault.count -= 1
                        if fault.count <= 0:
                            del self._faults[fault.fault_id]
                    self._events.append(
                        FaultEvent(fault.fault_id, fault.kind, path, method.upper(), account, now_ms, detail)
                    )
                    return fault
            return None

    def events(self, *, fault_id: int | None = None, kind: FaultKind | None = None) -> tuple[FaultEvent, ...]:
        """The requests rules acted on, oldest first; those of one rule or one kind when asked."""
        with self._lock:
            return tuple(
                e
                for e in self._events
                if (fault_id is None or e.fault_id == fault_id) and (kind is None or e.kind is kind)
            )

    def active(self, kind: FaultKind, *, account: str | None, now_ms: int) -> Fault | None:
        """A matching rule of this kind for an account, without using it up (states such as deposit delay)."""
        with self._lock:
            for fault in self._faults.values():
                scoped = fault.account is None or fault.account == account
                if fault.kind is kind and scoped and (fault.until_ms is None or now_ms < fault.until_ms):
                    return fault
            return None
