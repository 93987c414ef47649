"""The EasyEnclave control-plane stand-in: the HTTP API of EasyEnclave's Python control plane (design 1, as of
upstream commit 829f8a9), the subset Mr.Market's client uses, so `attestation.easyenclave` runs unchanged.

    POST   /api/v1/register                      register (or refresh) a service
    GET    /api/v1/services?name=&tags=a,b&environment=&mrtd=&health_status=&include_down=&nonce=N
                                                 → {"services": [...], "total", "query", "nonce", "timestamp",
                                                 "signature"}: signed by the control plane's attested key
    GET    /api/v1/services/{id}                 one service
    DELETE /api/v1/services/{id}                 deregister
    GET    /api/v1/attestation?nonce=N           → {"timestamp", "nonce", "signing_key", "quote_b64", "measurements"}:
                                                 the control plane's own TDX quote whose REPORTDATA binds N and
                                                 its signing key

What upstream's design-1 control plane lacks and this one does, as the real one would have to for Mr.Market to
use it (docs/easyenclave.md): an Ed25519 key generated at start (inside the TD, for the real one), bound with the
verifier's nonce in the quote's REPORTDATA, and a signature by it over every discovery answer, which echoes
the query and the requester's fresh nonce (`wire/control_plane.py`) — so the list is bound to the attested TD.

The quote is a real DCAP quote from the dev quote authority (`devnet/tdx`) for the control plane's MRTD. Health:
every `health_interval` seconds each service's endpoints are probed at `health_path`; two failures in a row make
it `unhealthy`, and discovery leaves unhealthy services out unless `include_down=true`. Upstream, as here, does not
verify anything a registration claims (`mrtd`, `attestation_json`, `intel_ta_token`): the relying party does.

Faults for tests (`POST /_devnet/easyenclave/faults`): answer attestation for another nonce, with another MRTD,
or binding another key than the one it names; answer discovery unsigned, signed by a key the quote never
bound, replaying an earlier signed answer, or altered after signing. `GET /_devnet/easyenclave/requests` counts
the API calls per route.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from devnet.tdx.authority import DevQuoteAuthority
from wire.control_plane import SIGNATURE_TAG, report_data, signed_payload
from wire.keys import SigningKey

NONCE_HEX = 64
UNHEALTHY_AFTER = 2
REGISTRATION_FIELDS = (
    "name",
    "description",
    "source_repo",
    "source_commit",
    "compose_hash",
    "endpoints",
    "mrtd",
    "attestation_json",
    "intel_ta_token",
    "tags",
)


@dataclass
class ControlPlaneConfig:
    mrtd: bytes
    rtmrs: tuple[bytes, bytes, bytes, bytes] = (b"\0" * 48,) * 4
    health_path: str = "/health"
    health_interval: float = 5.0
    health_timeout: float = 2.0


@dataclass
class Faults:
    quote_other_nonce: bool = False  # the quote binds another nonce (a replayed quote)
    answer_other_nonce: bool = False  # the answer names another nonce
    other_mrtd: bytes | None = None
    quote_other_key: bool = False  # the quote binds another key than the answer names
    discovery_unsigned: bool = False  # a discovery answer without a signature
    discovery_forged: bool = False  # signed by a key no quote of ours bound
    discovery_replayed: bool = False  # the previous signed answer again (another request's nonce)
    discovery_tampered: bool = False  # a service added after signing


@dataclass
class Service:
    service_id: str
    fields: dict[str, Any]
    registered_at: str
    health_status: str = "unknown"
    last_health_check: str | None = None
    failures: int = 0

    def public(self) -> dict[str, Any]:
        return {
            "service_id": self.service_id,
            **self.fields,
            "registered_at": self.registered_at,
            "last_health_check": self.last_health_check,
            "health_status": self.health_status,
        }


@dataclass
class ControlPlane:
    config: ControlPlaneConfig
    authority: DevQuoteAuthority
    services: dict[str, Service] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    requests: Counter[str] = field(default_factory=Counter)  # "GET /api/v1/services" → count, for tests
    key: SigningKey = field(default_factory=SigningKey.generate)  # inside the TD, for the real one
    last_answer: dict[str, Any] | None = None

    def register(self, body: dict[str, Any]) -> Service:
        fields = _validated(body)
        for existing in self.services.values():  # the same name at the same endpoints is the same service
            if existing.fields["name"] == fields["name"] and existing.fields["endpoints"] == fields["endpoints"]:
                existing.fields = fields
                return existing
        service = Service(uuid.uuid4().hex, fields, _now())
        self.services[service.service_id] = service
        return service

    def find(self, query: dict[str, str]) -> list[Service]:
        tags = {t for t in query.get("tags", "").split(",") if t}
        include_down = query.get("include_down", "false").lower() == "true"
        out = []
        for s in self.services.values():
            f = s.fields
            if query.get("name") and f["name"] != query["name"]:
                continue
            if tags and not tags <= set(f["tags"]):
                continue
            if query.get("environment") and query["environment"] not in f["endpoints"]:
                continue
            if query.get("mrtd") and f["mrtd"].lower() != query["mrtd"].lower():
                continue
            if query.get("health_status") and s.health_status != query["health_status"]:
                continue
            if s.health_status == "unhealthy" and not include_down and not query.get("health_status"):
                continue
            q = query.get("q", "").lower()
            if q and q not in (f["name"] + " " + f["description"]).lower():
                continue
            out.append(s)
        return out

    def attestation(self, nonce: str) -> dict[str, Any]:
        if len(nonce) != NONCE_HEX or not all(c in "0123456789abcdef" for c in nonce):
            raise ValueError(f"nonce must be {NONCE_HEX} lower-case hex characters")
        answered = "0" * len(nonce) if self.faults.quote_other_nonce else nonce
        bound = SigningKey.generate().public_hex if self.faults.quote_other_key else self.key.public_hex
        mrtd = self.faults.other_mrtd or self.config.mrtd
        quote = self.authority.quote(report_data(nonce=answered, signing_key=bound), mrtd=mrtd, rtmrs=self.config.rtmrs)
        return {
            "timestamp": _now(),
            "nonce": "f" * len(nonce) if self.faults.answer_other_nonce else nonce,
            "signing_key": self.key.public_hex,
            "quote_b64": base64.b64encode(quote).decode(),
            "measurements": {"mrtd": mrtd.hex(), **{f"rtmr{i}": r.hex() for i, r in enumerate(self.config.rtmrs)}},
        }

    def discovery(self, query: dict[str, str]) -> dict[str, Any]:
        """The services `query` selects, signed for the requester's nonce (which the answer echoes, with the
        query as read here); without a nonce, unsigned."""
        query = dict(query)
        nonce = query.pop("nonce", None)
        if nonce is None:  # someone browsing: the list, unsigned (a relying party always sends a nonce)
            found = [s.public() for s in self.find(query)]
            return {"services": found, "total": len(found)}
        if len(nonce) != NONCE_HEX:
            raise ValueError(f"nonce must be {NONCE_HEX} hex characters")
        if self.faults.discovery_replayed and self.last_answer is not None:
            return self.last_answer
        found = [s.public() for s in self.find(query)]
        answer: dict[str, Any] = {
            "services": found,
            "total": len(found),
            "query": query,
            "nonce": nonce,
            "timestamp": _now(),
        }
        if not self.faults.discovery_unsigned:
            signer = SigningKey.generate() if self.faults.discovery_forged else self.key
            answer["signature"] = signer.sign(signed_payload(answer), tag=SIGNATURE_TAG)
        if self.faults.discovery_tampered:
            hostile = {"service_id": "hostile", "name": query.get("name", ""), "endpoints": {}, "tags": []}
            answer = {**answer, "services": [*found, hostile], "total": len(found) + 1}
        self.last_answer = answer
        return answer

    async def probe(self, session: aiohttp.ClientSession) -> None:
        for service in list(self.services.values()):
            healthy = True
            for url in service.fields["endpoints"].values():
                try:
                    async with session.get(url.rstrip("/") + self.config.health_path) as response:
                        healthy = healthy and response.status == 200
                except (aiohttp.ClientError, TimeoutError):
                    healthy = False
            service.last_health_check = _now()
            service.failures = 0 if healthy else service.failures + 1
            if healthy:
                service.health_status = "healthy"
            elif service.failures >= UNHEALTHY_AFTER:
                service.health_status = "unhealthy"


def _now() -> str:
    return datetime.now(tz=UTC).isoformat()


def _validated(body: dict[str, Any]) -> dict[str, Any]:
    unknown = set(body) - set(REGISTRATION_FIELDS)
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("name is required")
    endpoints = body.get("endpoints")
    if (
        not isinstance(endpoints, dict)
        or not endpoints
        or not all(isinstance(k, str) and isinstance(v, str) and v.startswith("http") for k, v in endpoints.items())
    ):
        raise ValueError("endpoints must map environment names to http(s) URLs")
    tags = body.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ValueError("tags must be a list of strings")
    text = {k: body.get(k, "") for k in ("description", "source_repo", "source_commit", "compose_hash", "mrtd")}
    if not all(isinstance(v, str) for v in text.values()):
        raise ValueError("description, source_repo, source_commit, compose_hash and mrtd are strings")
    return {
        "name": name,
        **text,
        "endpoints": dict(endpoints),
        "tags": list(tags),
        "attestation_json": body.get("attestation_json"),
        "intel_ta_token": body.get("intel_ta_token"),
    }


CONTROL_PLANE_KEY = web.AppKey("control_plane", ControlPlane)


def build_control_plane_app(control_plane: ControlPlane) -> web.Application:
    cp = control_plane

    @web.middleware
    async def count(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path.startswith("/api/"):
            route = request.match_info.route.resource
            cp.requests[f"{request.method} {route.canonical if route else request.path}"] += 1
        return await handler(request)

    app = web.Application(middlewares=[count])
    app[CONTROL_PLANE_KEY] = control_plane

    def error(status: int, detail: str) -> web.Response:
        return web.json_response({"detail": detail}, status=status)  # FastAPI's error shape

    async def register(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("the body is a JSON object")
            return web.json_response(cp.register(body).public())
        except ValueError as exc:
            return error(422, str(exc))

    async def list_services(request: web.Request) -> web.Response:
        try:
            return web.json_response(cp.discovery(dict(request.query)))
        except ValueError as exc:
            return error(422, str(exc))

    async def get_service(request: web.Request) -> web.Response:
        service = cp.services.get(request.match_info["service_id"])
        return web.json_response(service.public()) if service else error(404, "Service not found")

    async def delete_service(request: web.Request) -> web.Response:
        if cp.services.pop(request.match_info["service_id"], None) is None:
            return error(404, "Service not found")
        return web.json_response({"status": "deleted"})

    async def attestation(request: web.Request) -> web.Response:
        try:
            return web.json_response(cp.attestation(request.query.get("nonce", "")))
        except ValueError as exc:
            return error(422, str(exc))

    async def set_faults(request: web.Request) -> web.Response:
        body = await request.json()
        cp.faults = Faults(
            quote_other_nonce=bool(body.get("quote_other_nonce", False)),
            answer_other_nonce=bool(body.get("answer_other_nonce", False)),
            other_mrtd=bytes.fromhex(body["other_mrtd"]) if body.get("other_mrtd") else None,
            **{
                name: bool(body.get(name, False))
                for name in (
                    "quote_other_key",
                    "discovery_unsigned",
                    "discovery_forged",
                    "discovery_replayed",
                    "discovery_tampered",
                )
            },
        )
        return web.json_response({"ok": True})

    async def health_loop(app: web.Application) -> AsyncIterator[None]:
        async def loop() -> None:
            timeout = aiohttp.ClientTimeout(total=cp.config.health_timeout)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                while True:
                    await cp.probe(session)
                    await asyncio.sleep(cp.config.health_interval)

        task = asyncio.create_task(loop())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.router.add_post("/api/v1/register", register)
    app.router.add_get("/api/v1/services", list_services)
    app.router.add_get("/api/v1/services/{service_id}", get_service)
    app.router.add_delete("/api/v1/services/{service_id}", delete_service)
    app.router.add_get("/api/v1/attestation", attestation)

    async def requests(request: web.Request) -> web.Response:
        return web.json_response(dict(cp.requests))

    app.router.add_post("/_devnet/easyenclave/faults", set_faults)
    app.router.add_get("/_devnet/easyenclave/requests", requests)
    app.cleanup_ctx.append(health_loop)
    return app
