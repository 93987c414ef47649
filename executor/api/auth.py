"""Controller authentication for job control (ADR 0011): signed requests from one pinned Ed25519 key.

The key is pinned from `EXECUTOR_CONTROLLER_KEY` or, when that is unset, by the first request that carries a
valid signature (trust on first use; the pinned key is shown by `/v1/health` so an operator can compare it
with the controller's). Requests from any other key, outside the clock skew, or repeating a nonce already seen
are refused with 401 before any handler runs.
"""

from __future__ import annotations

import time

from aiohttp import web

from executor.api.errors import ApiError
from executor.logging import get_logger
from wire.control import KEY_HEADER, MAX_SKEW_MS, NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_request
from wire.errors import WireError

log = get_logger("executor.auth")


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class ControllerAuth:
    def __init__(self, pinned_key: str | None = None) -> None:
        self.pinned_key = pinned_key
        self.pinned_by = "configuration" if pinned_key else None
        self._seen: dict[str, int] = {}

    async def check(self, request: web.Request) -> str:
        key = request.headers.get(KEY_HEADER, "").lower()
        stamp = request.headers.get(TIMESTAMP_HEADER, "")
        nonce = request.headers.get(NONCE_HEADER, "")
        signature = request.headers.get(SIGNATURE_HEADER, "").lower()
        if not key or not stamp or not nonce or not signature:
            raise Unauthorized("job control needs a signed request (X-Controller-Key, -Timestamp, -Nonce, -Signature)")
        if self.pinned_key is not None and key != self.pinned_key:
            raise Unauthorized("the request is signed by a controller key this executor does not trust")
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
        if self.pinned_key is None:
            self.pinned_key, self.pinned_by = key, "first contact"
            log.warning("controller_key_pinned", controller_key=key)
        return key

    def _prune(self, now: int) -> None:
        for seen in [n for n, ts in self._seen.items() if now - ts > 2 * MAX_SKEW_MS]:
            del self._seen[seen]
