"""Intel Trust Authority appraisal: the executor can attach ITA's token for its quote to its evidence.

When `EXECUTOR_ITA_URL` and `EXECUTOR_ITA_API_KEY` are set, `GET /v1/attestation` sends the quote it just made to
`POST {EXECUTOR_ITA_URL}/appraisal/v2/attest` (`{"tdx": {"quote": <base64>}}`, header `x-api-key`) and adds the
answer's `token` as `ita_token`. The token's `tdx_report_data` is the quote's REPORTDATA, so it binds the same
nonce and keys. A failed appraisal is logged (never with the key) and the evidence goes out with the quote alone:
Django verifies the quote itself and decides whether it also needs a token.
"""

from __future__ import annotations

import base64

import aiohttp


class ItaUnavailable(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ItaAppraiser:
    def __init__(self, url: str, api_key: str, *, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._api_key = api_key
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"ItaAppraiser({self.url!r})"

    async def token(self, quote: bytes) -> str:
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
