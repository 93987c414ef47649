"""The jobs of this executor: start (idempotent by job id), credentials, stop, resume, revoke, and capacity.

A start with a job id already known returns that job when the spec is the same (same digest) and is refused
(`job_conflict`) when it differs: a retried start never runs a job twice. A spec is parsed (`wire.jobs.JobSpec`)
before the exchange is asked for its market list, so a bad spec is refused without a call. A job waits in
`pending_credentials` until its exchange key arrives sealed to this executor's X25519 key; the sealed payload
names the job it is for, the digest of the spec it may trade and the controller that sealed it, so a key sealed
for one job (or for another spec under the same job id, or by another controller) is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any

from executor.engine.runner import TERMINAL, Credentials, JobRunner, JobState, RunnerSettings
from executor.exchange import Gateway, Transient
from executor.identity import Identity
from executor.jobs.spec import JobSpecError, accept_job, parse_spec
from executor.logging import get_logger
from wire.canonical import parse
from wire.errors import WireError
from wire.jobs import JobSpec

MARKETS_TTL_S = 300.0
log = get_logger("executor.jobs")


class JobError(Exception):
    def __init__(self, code: str, message: str, *, status: int) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


MarketsLookup = Callable[[str], Awaitable[frozenset[str]]]


class JobManager:
    def __init__(
        self,
        *,
        identity: Identity,
        settings: RunnerSettings,
        max_jobs: int,
        exchange_api_urls: dict[str, str] | None = None,
        markets_lookup: MarketsLookup | None = None,
        controller_key: str | None = None,
    ) -> None:
        self.identity = identity
        self.controller_key = controller_key.lower() if controller_key else None
        self.settings = settings
        self.max_jobs = max_jobs
        self.exchange_api_urls = exchange_api_urls or {}
        self.jobs: dict[str, JobRunner] = {}
        self._markets: dict[str, tuple[float, frozenset[str]]] = {}
        self._markets_lookup = markets_lookup or self._load_markets
        self._lock = asyncio.Lock()

    def active(self) -> list[JobRunner]:
        return [j for j in self.jobs.values() if j.state not in TERMINAL]

    def capacity(self) -> dict[str, Any]:
        active = len(self.active())
        return {"max_jobs": self.max_jobs, "active_jobs": active, "available": max(self.max_jobs - active, 0)}

    async def _load_markets(self, exchange_id: str) -> frozenset[str]:
        cached = self._markets.get(exchange_id)
        if cached is not None and time.monotonic() - cached[0] < MARKETS_TTL_S:
            return cached[1]
        gateway = Gateway(exchange_id, base_url=self.exchange_api_urls.get(exchange_id))
        try:
            symbols = await gateway.markets()
        finally:
            await gateway.close()
        self._markets[exchange_id] = (time.monotonic(), symbols)
        return symbols

    async def start(self, raw: Any) -> tuple[JobRunner, bool]:
        async with self._lock:
            try:
                spec = parse_spec(raw)  # before anything is asked of the exchange: a bad spec costs no call
            except JobSpecError as exc:
                self._same_or_conflict(raw, None)
                raise JobError(exc.code, exc.message, status=422) from None
            existing = self._same_or_conflict(raw, spec)
            if existing is not None:
                return existing, False
            if len(self.active()) >= self.max_jobs:
                raise JobError("no_capacity", f"this executor runs its maximum of {self.max_jobs} jobs", status=503)
            try:
                markets = await self._markets_lookup(spec.exchange)
            except Transient:
                raise JobError(
                    "exchange_unavailable", f"{spec.exchange} did not answer its market list", status=503
                ) from None
            except ValueError as exc:
                raise JobError("invalid_job_spec", str(exc), status=422) from None
            try:
                accepted = accept_job(spec, markets=markets)
            except JobSpecError as exc:
                raise JobError(exc.code, exc.message, status=422) from None
            runner = JobRunner(
                spec=accepted.spec,
                strategy=accepted.strategy,
                signing_key=self.identity.signing,
                settings=self.settings_for(spec.exchange),
            )
            self.jobs[runner.job_id] = runner
            log.info("job_accepted", job_id=runner.job_id, symbol=runner.symbol)
            return runner, True

    def _same_or_conflict(self, raw: Any, spec: JobSpec | None) -> JobRunner | None:
        """The job already known under the spec's job id when `spec` is its very spec (a retried start); a
        `job_conflict` when that id runs another spec (or `spec` did not parse); None for a new job id."""
        job_id = raw.get("job_id") if isinstance(raw, dict) else None
        existing = self.jobs.get(job_id) if isinstance(job_id, str) else None
        if existing is None:
            return None
        if spec is None or spec.digest() != existing.spec_digest:
            raise JobError("job_conflict", f"job {job_id} exists with another spec", status=409)
        return existing

    def settings_for(self, exchange_id: str) -> RunnerSettings:
        return dataclasses.replace(self.settings, exchange_base_url=self.exchange_api_urls.get(exchange_id))

    def get(self, job_id: str) -> JobRunner:
        runner = self.jobs.get(job_id)
        if runner is None:
            raise JobError("unknown_job", f"no job {job_id} on this executor", status=404)
        return runner

    def deliver_credentials(self, job_id: str, sealed: bytes) -> JobRunner:
        runner = self.get(job_id)
        if runner.state is not JobState.PENDING_CREDENTIALS:
            raise JobError("credentials_not_expected", f"job {job_id} is {runner.state}", status=409)
        try:
            payload = parse(self.identity.sealing.open(sealed))
        except WireError:
            message = "the credentials do not open with this executor's sealing key"
            raise JobError("bad_seal", message, status=422) from None
        if not isinstance(payload, dict) or not isinstance(payload.get("api_key"), str) or not payload.get("secret"):
            raise JobError("bad_credentials", "sealed credentials need api_key and secret", status=422)
        if payload.get("job_id") != job_id:
            raise JobError("credentials_for_another_job", "the sealed credentials name another job", status=422)
        if payload.get("job_spec_digest") != runner.spec_digest:
            message = "the sealed credentials are for another job spec than the one this job runs"
            raise JobError("credentials_for_another_spec", message, status=422)
        if self.controller_key is None or payload.get("controller_key") != self.controller_key:
            message = "the sealed credentials name another controller than the one this executor obeys"
            raise JobError("credentials_from_another_controller", message, status=422)
        runner.provide(Credentials(payload["api_key"], str(payload["secret"]), payload.get("password") or None))
        return runner

    def stop(self, job_id: str) -> JobRunner:
        runner = self.get(job_id)
        runner.request_stop()
        return runner

    def resume(self, job_id: str) -> JobRunner:
        runner = self.get(job_id)
        if runner.state is not JobState.HALTED:
            raise JobError("not_halted", f"job {job_id} is {runner.state}, not halted", status=409)
        runner.resume()
        return runner

    async def revoke(self, job_id: str) -> JobRunner:
        runner = self.get(job_id)
        await runner.revoke()
        return runner

    async def shutdown(self, timeout: float = 30.0) -> None:
        """Process exit: stop every job (cancelling its orders) within `timeout`, then drop what is left."""
        for runner in self.jobs.values():
            runner.request_stop()
        waits = [r.wait() for r in self.jobs.values() if r._task is not None]
        with contextlib.suppress(TimeoutError, Exception):
            await asyncio.wait_for(asyncio.gather(*waits, return_exceptions=True), timeout)
        for runner in self.jobs.values():
            if runner._task is not None and not runner._task.done():
                runner._task.cancel()
