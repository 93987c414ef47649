"""Intel Trust Authority appraisal: the executor can attach ITA's token for its quote to its evidence.

When `EXECUTOR_ITA_URL` and `EXECUTOR_ITA_API_KEY` are set, `GET /v1/attestation` sends the quote it just made to
`POST {EXECUTOR_ITA_URL}/appraisal/v2/attest` (`{"tdx": {"quote": <base64>}}`, header `x-api-key`) and adds the
answer's `token` as `ita_token`. The token's `tdx_report_data` is the quote's REPORTDATA, so it binds the same
nonce and keys. A failed appraisal is logged (never with the key) and the evidence goes out with the quote alone:
Django verifies the quote itself and decides whether it also needs a token.

`/v1/attestation` is open, so anyone could make us spend the ITA quota: at most `max_per_minute` appraisals are
asked for in any 60 s (default 30, far above what re-attestation needs); beyond that the quote goes alone.
"""

from __future__ import annotations

import base64
import time
from collections import deque
from collections.abc import Callable

import aiohttp


class ItaUnavailable(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ItaAppraiser:
    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        timeout_s: float = 10.0,
        max_per_minute: int = 30,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url.rstrip("/")
        self._api_key = api_key
        self.timeout_s = timeout_s
        self.max_per_minute = max_per_minute
        self._clock = clock
        self._asked: deque[float] = deque()

    def _take_slot(self) -> None:
        now = self._clock()
        while self._asked and now - self._asked[0] >= 60:
            self._asked.popleft()
        if len(self._asked) >= self.max_per_minute:
            raise ItaUnavailable(f"ITA appraisals limited to {self.max_per_minute} a minute; quote sent alone")
        self._asked.append(now)

    def __repr__(self) -> str:
        return f"ItaAppraiser({self.url!r})"

    async def token(self, quote: bytes) -> str:
        self._take_slot()
        body = {"tdx": {"quote": base64.b64encode(quote).decode()}}
        headers = {"x-api-key": self._api_key, "Accept": "application/json"}
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(f"{self.url}/appraisal/v2/attest", json=body, headers=headers) as response,
            ):
                if response.status != 200:
                    raise ItaUnavailable(f"ITA refused the appraisal: HTTP {response.status}")
                answer = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise ItaUnavailable(f"ITA did not answer ({type(exc).__name__})") from None
        token = answer.get("token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or token.count(".") != 2:
            raise ItaUnavailable("ITA's answer has no token")
        return token
