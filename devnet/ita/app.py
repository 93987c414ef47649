"""The Intel Trust Authority stand-in's HTTP API: the subset a relying party and an attester use.

    GET  /certs                    → the JWKS the tokens are signed under (ITA serves it on its portal host)
    POST /appraisal/v2/attest      → {"token": JWT}; body {"tdx": {"quote": base64}}, header `x-api-key`

The appraisal verifies the quote the way ITA does — the DCAP chain, collateral and TCB — here under the dev
quote authority's root, and returns a token with the quote's measurements, REPORTDATA and TCB status (v2 layout,
PS384). Errors: 401 without the right API key, 400 for a body or quote it cannot appraise. Faults for tests:
`POST /_devnet/ita/fault {"fault": "down" | "other_report_data" | null}`; requests are counted at
`GET /_devnet/ita/requests`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from collections import Counter
from collections.abc import Callable

from aiohttp import web

from attestation.domain.quote import verify_quote
from devnet.ita.authority import DevTokenAuthority
from devnet.tdx.authority import DevQuoteAuthority

STATS_KEY = web.AppKey("ita_stats", Counter)
FAULTS = ("down", "other_report_data")


def build_ita_app(
    tokens: DevTokenAuthority,
    quotes: DevQuoteAuthority,
    *,
    api_key: str,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    app = web.Application()
    stats: Counter[str] = Counter()
    app[STATS_KEY] = stats
    state: dict[str, str | None] = {"fault": None}

    async def certs(request: web.Request) -> web.Response:
        stats["certs"] += 1
        if state["fault"] == "down":
            return web.json_response({"error": "service unavailable"}, status=503)
        return web.json_response(tokens.jwks())

    async def attest(request: web.Request) -> web.Response:
        stats["attest"] += 1
        if state["fault"] == "down":
            return web.json_response({"error": "service unavailable"}, status=503)
        if not hmac.compare_digest(request.headers.get("x-api-key", ""), api_key):
            return web.json_response({"error": "invalid api key"}, status=401)
        try:
            body = await request.json()
            raw = base64.b64decode(body["tdx"]["quote"], validate=True)
        except (ValueError, KeyError, TypeError, binascii.Error):
            return web.json_response({"error": 'body must be {"tdx": {"quote": base64}}'}, status=400)
        now = int(clock())
        verdict = verify_quote(raw, quotes.collateral_json(now=now), now=now, root_ca_der=quotes.root_ca_der)
        if not verdict.ok or verdict.fields is None:
            return web.json_response({"error": f"quote appraisal failed: {verdict.reason}"}, status=400)
        fields = verdict.fields
        report_data = "00" * 64 if state["fault"] == "other_report_data" else fields.report_data
        token = tokens.appraisal_token(
            mrtd=fields.mrtd,
            rtmrs=fields.rtmrs,
            report_data=report_data,
            tcb_status=verdict.tcb_status or "",
            advisory_ids=verdict.advisory_ids,
            debug=fields.debug,
            now=now,
        )
        return web.json_response({"token": token})

    async def fault(request: web.Request) -> web.Response:
        body = await request.json()
        name = body.get("fault") if isinstance(body, dict) else None
        if name is not None and name not in FAULTS:
            return web.json_response({"error": f"fault must be one of {FAULTS} or null"}, status=400)
        state["fault"] = name
        return web.json_response({"fault": name})

    async def requests(request: web.Request) -> web.Response:
        return web.json_response(dict(stats))

    app.router.add_get("/certs", certs)
    app.router.add_post("/appraisal/v2/attest", attest)
    app.router.add_post("/_devnet/ita/fault", fault)
    app.router.add_get("/_devnet/ita/requests", requests)
    return app
