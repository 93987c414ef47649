"""Job control (signed by the controller) and the open endpoints: attestation and capacity.

POST   /v1/jobs/start                 job spec → 201 (new) or 200 (same job id and spec again)
POST   /v1/jobs/stop                  {"job_id"} → 202, the job cancels its orders and stops
GET    /v1/jobs/{job_id}/status
GET    /v1/jobs/{job_id}/report       ?after=<sequence>&limit=<n>: signed reports after the cursor
POST   /v1/jobs/{job_id}/credentials  {"sealed_b64"}: the exchange key sealed to this executor
DELETE /v1/jobs/{job_id}/credentials  revoke: cancel, wipe the key, end the job
POST   /v1/jobs/{job_id}/resume       a halted job quotes again
GET    /v1/attestation?nonce=<hex>    evidence binding the nonce, this executor's keys and its runtime
                                      configuration (open)
GET    /v1/capacity                   (open)

A refusal of the job manager (`JobError`) becomes the API's error response in `job_error_middleware`.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from aiohttp import web

from executor.api.errors import ApiError
from executor.api.keys import AUTH_KEY, CONFIG_KEY, IDENTITY_KEY, ITA_KEY, MANAGER_KEY, PROVIDER_KEY, RUNTIME_KEY
from executor.ita import ItaUnavailable
from executor.jobs.manager import JobManager
from executor.logging import get_logger
from executor.quote import QuoteUnavailable
from executor.strategy.registry import STRATEGIES
from wire.attestation import BindingError, report_data, runtime_config_digest
from wire.canonical import parse
from wire.errors import WireError

log = get_logger("executor.api")
routes = web.RouteTableDef()


async def _json(request: web.Request) -> Any:
    try:
        return parse(await request.read())
    except (WireError, ValueError, UnicodeDecodeError) as exc:
        raise ApiError(f"the body is not valid JSON: {exc}", code="invalid_json") from None


async def _authorized(request: web.Request) -> JobManager:
    await request.app[AUTH_KEY].check(request)
    return request.app[MANAGER_KEY]


@routes.post("/v1/jobs/start")
async def start(request: web.Request) -> web.Response:
    manager = await _authorized(request)
    spec = await _json(request)
    if not isinstance(spec, dict):
        raise ApiError("the body must be a job spec object", code="invalid_job_spec", status=422)
    runner, created = await manager.start(spec)
    return web.json_response(runner.status(), status=201 if created else 200)


@routes.post("/v1/jobs/stop")
async def stop(request: web.Request) -> web.Response:
    manager = await _authorized(request)
    body = await _json(request)
    job_id = body.get("job_id") if isinstance(body, dict) else None
    if not isinstance(job_id, str):
        raise ApiError('the body must be {"job_id": …}', code="invalid_request", status=422)
    runner = manager.stop(job_id)
    return web.json_response(runner.status(), status=202)


@routes.get("/v1/jobs/{job_id}/status")
async def status(request: web.Request) -> web.Response:
    manager = await _authorized(request)
    return web.json_response(manager.get(request.match_info["job_id"]).status())


def _int_param(request: web.Request, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(f"{name} must be an integer", code="invalid_request", status=422) from None
    if not low <= value <= high:
        raise ApiError(f"{name} must be between {low} and {high}", code="invalid_request", status=422)
    return value


@routes.get("/v1/jobs/{job_id}/report")
async def reports(request: web.Request) -> web.Response:
    manager = await _authorized(request)
    after = _int_param(request, "after", None, -1, 10**12)
    limit = _int_param(request, "limit", 100, 1, 1000) or 100
    runner = manager.get(request.match_info["job_id"])
    items = runner.reporter.after(after if after != -1 else None, limit=limit) if runner.reporter else []
    total = runner.reporter.count if runner.reporter else 0
    return web.json_response(
        {
            "job_id": runner.job_id,
            "state": str(runner.state),
            "reports": [r.as_json() for r in items],
            "latest_sequence": total - 1 if total else None,
        }
    )


@routes.post("/v1/jobs/{job_id}/credentials")
async def credentials(request: web.Request) -> web.Response:
    manager = await _authorized(request)
    body = await _json(request)
    sealed_b64 = body.get("sealed_b64") if isinstance(body, dict) else None
    if not isinstance(sealed_b64, str):
        raise ApiError('the body must be {"sealed_b64": …}', code="invalid_request", status=422)
    try:
        sealed = base64.b64decode(sealed_b64, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError("sealed_b64 is not base64", code="invalid_request", status=422) from None
    runner = manager.deliver_credentials(request.match_info["job_id"], sealed)
    return web.json_response(runner.status(), status=202)


@routes.delete("/v1/jobs/{job_id}/credentials")
async def revoke(request: web.Request) -> web.Response:
    manager = await _authorized(request)
    runner = await manager.revoke(request.match_info["job_id"])
    return web.json_response(runner.status())


@routes.post("/v1/jobs/{job_id}/resume")
async def resume(request: web.Request) -> web.Response:
    manager = await _authorized(request)
    runner = manager.resume(request.match_info["job_id"])
    return web.json_response(runner.status(), status=202)


@routes.get("/v1/attestation")
async def attestation(request: web.Request) -> web.Response:
    identity = request.app[IDENTITY_KEY]
    runtime = request.app[RUNTIME_KEY]
    nonce = request.query.get("nonce", "").lower()
    try:
        data = report_data(nonce=nonce, runtime_config_digest=runtime_config_digest(runtime), **identity.public())
    except BindingError:
        raise ApiError("nonce must be 64 hex characters (32 bytes)", code="invalid_nonce", status=422) from None
    provider = request.app[PROVIDER_KEY]
    try:
        quote = await provider.quote(data)
    except QuoteUnavailable as exc:
        raise ApiError(exc.message, code="attestation_unavailable", status=503) from None
    config = request.app[CONFIG_KEY]
    evidence = {
        "evidence_type": "tdx-quote-v4",
        "provider": provider.name,
        "nonce": nonce,
        **identity.public(),
        "runtime_config": runtime,
        "report_data": data.hex(),
        "quote_b64": base64.b64encode(quote).decode(),
        "build_version": config.build_version,
    }
    appraiser = request.app.get(ITA_KEY)
    if appraiser is not None:
        try:
            evidence["ita_token"] = await appraiser.token(quote)
        except ItaUnavailable as exc:
            log.warning("ita_appraisal_failed", reason=exc.message)
    return web.json_response(evidence)


@routes.get("/v1/capacity")
async def capacity(request: web.Request) -> web.Response:
    manager = request.app[MANAGER_KEY]
    return web.json_response({**manager.capacity(), "strategies": sorted(STRATEGIES)})
