"""Controller authentication for job control (ADR 0011): signed requests from the one configured Ed25519 key,
addressed to this executor.

The controller key comes only from configuration (`EXECUTOR_CONTROLLER_KEY`), which is bound into every quote
(ADR 0012): Django refuses an executor whose attested controller key is not its own, and the executor never
learns a key from a request (no trust on first use). Requests from any other key, addressed to another
executor's identity key (audience), outside the clock skew, or repeating a nonce already seen are refused with
401 before any handler runs.

Replay after a restart: the audience is this process's identity key, generated in TD memory at boot and never
persisted, so a request signed for the previous boot names a key nobody holds any more and is refused; within
one boot the nonce cache covers the skew window twice over. That is why the cache may live in memory.
"""

from __future__ import annotations

import time

from aiohttp import web

from executor.api.errors import ApiError
from executor.logging import get_logger
from wire.control import (
    AUDIENCE_HEADER,
    KEY_HEADER,
    MAX_SKEW_MS,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify_request,
)
from wire.errors import WireError

log = get_logger("executor.auth")


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class WrongAudience(Unauthorized):
    code = "wrong_audience"


class ControllerAuth:
    def __init__(self, controller_key: str | None, *, audience: str) -> None:
        self.controller_key = controller_key.lower() if controller_key else None
        self.audience = audience
        self._seen: dict[str, int] = {}

    async def check(self, request: web.Request) -> str:
        key = request.headers.get(KEY_HEADER, "").lower()
        audience = request.headers.get(AUDIENCE_HEADER, "").lower()
        stamp = request.headers.get(TIMESTAMP_HEADER, "")
        nonce = request.headers.get(NONCE_HEADER, "")
        signature = request.headers.get(SIGNATURE_HEADER, "").lower()
        if not key or not audience or not stamp or not nonce or not signature:
            raise Unauthorized(
                "job control needs a signed request (X-Controller-Key, -Audience, -Timestamp, -Nonce, -Signature)"
            )
        if self.controller_key is None:
            raise Unauthorized("this executor has no controller key configured: it obeys nobody")
        if key != self.controller_key:
            raise Unauthorized("the request is signed by a controller key this executor does not trust")
        if audience != self.audience:
            raise WrongAudience("the request is addressed to another executor (or to this one before a restart)")
        try:
            timestamp = int(stamp)
        except ValueError:
            raise Unauthorized("X-Controller-Timestamp must be integer milliseconds") from None
        now = int(time.time() * 1000)
        if abs(now - timestamp) > MAX_SKEW_MS:
            raise Unauthorized(f"the request's timestamp is over {MAX_SKEW_MS // 1000} s from this executor's clock")
        body = await request.read()
        try:
            verify_request(
                key,
                method=request.method,
                path_qs=request.path_qs,
                body=body,
                audience=audience,
                timestamp_ms=timestamp,
                nonce=nonce,
                signature_hex=signature,
            )
        except WireError:
            raise Unauthorized("the request's signature does not verify") from None
        self._prune(now)
        if nonce in self._seen:
            raise Unauthorized("this signed request was already received (replay)")
        self._seen[nonce] = timestamp
        return key

    def _prune(self, now: int) -> None:
        for seen in [n for n, ts in self._seen.items() if now - ts > 2 * MAX_SKEW_MS]:
            del self._seen[seen]
