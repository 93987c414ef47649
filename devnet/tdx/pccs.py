"""A stand-in for a PCCS (Intel's Provisioning Certificate Caching Service), serving the dev authority's collateral.

It speaks the subset of the PCS/PCCS v4 HTTP API that a verifier fetches collateral with (the paths
`dcap_qvl.get_collateral` asks for), so Django's production collateral path — a configured
`ATTESTATION_PCCS_URL`, fetch, cache until `nextUpdate`, beat refresh — runs unchanged against the devnet:

    GET /sgx/certification/v4/pckcrl?ca=platform|processor&encoding=der
        → the PCK CRL (DER); header SGX-PCK-CRL-Issuer-Chain (URL-encoded PEM)
    GET /tdx/certification/v4/tcb?fmspc=HEX
        → {"tcbInfo": {...}, "signature": "hex"}; header TCB-Info-Issuer-Chain
    GET /tdx/certification/v4/qe/identity
        → {"enclaveIdentity": {...}, "signature": "hex"}; header SGX-Enclave-Identity-Issuer-Chain
    GET /sgx/certification/v4/rootcacrl
        → the root CA CRL (hex of the DER, as PCCS serves it)

Collateral is issued for the current time on each request (valid 30 days), like a live PCS. Every request is
counted per path (`GET /_devnet/pccs/requests`) so tests can see what was fetched and when the cache answered.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from urllib.parse import quote

from aiohttp import web

from devnet.tdx.authority import FMSPC, DevQuoteAuthority

STATS_KEY = web.AppKey("pccs_stats", Counter)


def build_pccs_app(authority: DevQuoteAuthority, *, clock: Callable[[], float] = time.time) -> web.Application:
    app = web.Application()
    stats: Counter[str] = Counter()
    app[STATS_KEY] = stats

    def collateral() -> dict[str, str]:
        return dict(json.loads(authority.collateral_json(now=int(clock()))))

    def chain_header(pem: str) -> str:
        return quote(pem, safe="")

    async def pck_crl(request: web.Request) -> web.Response:
        stats["pckcrl"] += 1
        if request.query.get("ca") not in ("platform", "processor"):
            return web.json_response({"error": "ca must be platform or processor"}, status=400)
        c = collateral()
        headers = {"SGX-PCK-CRL-Issuer-Chain": chain_header(c["pck_crl_issuer_chain"])}
        if request.query.get("encoding") == "der":
            return web.Response(body=bytes.fromhex(c["pck_crl"]), headers=headers)
        return web.Response(text=c["pck_crl"], headers=headers)

    async def tcb_info(request: web.Request) -> web.Response:
        stats["tcb"] += 1
        if request.query.get("fmspc", "").lower() != FMSPC.hex():
            return web.json_response({"error": "unknown fmspc"}, status=404)
        c = collateral()
        body = '{"tcbInfo":' + c["tcb_info"] + ',"signature":"' + c["tcb_info_signature"] + '"}'
        headers = {"TCB-Info-Issuer-Chain": chain_header(c["tcb_info_issuer_chain"])}
        return web.Response(text=body, content_type="application/json", headers=headers)

    async def qe_identity(request: web.Request) -> web.Response:
        stats["qe_identity"] += 1
        c = collateral()
        body = '{"enclaveIdentity":' + c["qe_identity"] + ',"signature":"' + c["qe_identity_signature"] + '"}'
        headers = {"SGX-Enclave-Identity-Issuer-Chain": chain_header(c["qe_identity_issuer_chain"])}
        return web.Response(text=body, content_type="application/json", headers=headers)

    async def root_ca_crl(request: web.Request) -> web.Response:
        stats["rootcacrl"] += 1
        return web.Response(text=collateral()["root_ca_crl"])

    async def requests(request: web.Request) -> web.Response:
        return web.json_response(dict(stats))

    app.router.add_get("/sgx/certification/v4/pckcrl", pck_crl)
    app.router.add_get("/tdx/certification/v4/tcb", tcb_info)
    app.router.add_get("/tdx/certification/v4/qe/identity", qe_identity)
    app.router.add_get("/sgx/certification/v4/rootcacrl", root_ca_crl)
    app.router.add_get("/_devnet/pccs/requests", requests)
    return app
