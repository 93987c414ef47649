"""Schemathesis against the executor's HTTP API (docs/api/executor-v1.yaml), in process on loopback: the aiohttp
application served from a thread, every request signed as the controller exactly as execution/executor_client.py
signs it (wire.control.sign_request over the method, path and query, audience, time, nonce and the exact body
bytes sent), so the fuzz reaches the handlers behind the gate; one example in four goes unsigned, and must be
refused 401 by every /v1/jobs operation.

Planted first, through Django's own ExecutorClient: a job started and provisioned with an exchange key of the
devnet simulator, running; that key's secret is the canary. The executor quotes through its configfs-tsm
provider over tests/executor's imitation of the kernel interface, so /v1/attestation answers too.

Checks on every response: no 5xx; status, content type, headers and body conform to the schema (errors to its
`Error`); the canary never appears in a response's body or headers nor in any log line (rendered by the production
formatter, at DEBUG); and the planted job outlives the fuzz.

Bounded: a fixed number of examples per operation, derandomized, no example database. The schema has no OpenAPI
links, so the operations are fuzzed one by one (a job id drawn at random names no job: the planted one's id is
given to a third of the examples instead, so status, report, credentials, resume and stop meet a real job).
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.transport import Response
from schemathesis.generation.stateful.state_machine import StepInput, StepOutput
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from devnet.exchange.fixtures import RunningExchange
from execution.executor_client import ExecutorClient
from executor.jobs.manager import JobManager
from executor.quote import ConfigfsTsmProvider
from mrmarket.controller import controller_key
from tests.execution.executor_thread import manager_of, running_executor
from tests.executor.harness import job_spec, live_exchange, trading_key
from tests.executor.test_attestation_providers import TsmImitation, _rmdir_with_files
from tests.fuzz.logs import Lines, capturing
from tests.fuzz.mutations import mutated
from tests.fuzz.schemas import operations, repeatable
from wire.control import sign_request

pytestmark = [pytest.mark.fuzz, pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = schemathesis.openapi.from_path(ROOT / "docs" / "api" / "executor-v1.yaml")
SCHEMA.config.generation.update(deterministic=True, with_security_parameters=False)
OPERATIONS = operations(SCHEMA)
EXAMPLES = 40  # per operation
STATEFUL_SCENARIOS = 25  # sequences of up to 6 calls
PLANTED = "job-fuzz-canary"
UNAVAILABLE = {"no_capacity"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@dataclass
class Executor:
    url: str
    audience: str  # the executor's identity key: the audience every signed request names
    secret: str  # the canary: the planted job's exchange secret
    session: requests.Session
    client: ExecutorClient
    manager: JobManager

    def signed(self, method: str, path_qs: str, body: bytes) -> dict[str, str]:
        """The controller's headers, as execution/executor_client.py makes them (Django's controller key)."""
        return sign_request(
            controller_key(),
            method=method,
            path_qs=path_qs,
            body=body,
            audience=self.audience,
            timestamp_ms=int(time.time() * 1000),
        )


@pytest.fixture(scope="module")
def exchange() -> Iterator[RunningExchange]:
    with live_exchange() as ex:
        yield ex


@pytest.fixture(scope="module")
def captured() -> Iterator[Lines]:
    with capturing() as lines:
        yield lines


@pytest.fixture(scope="module")
def quotes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConfigfsTsmProvider]:
    """The executor's configfs-tsm provider over the kernel interface's imitation (tests/executor): /v1/attestation
    answers with a quote, as in a TD."""
    root = tmp_path_factory.mktemp("tsm") / "report"
    root.mkdir()
    original = Path.rmdir

    def rmdir(self: Path) -> None:  # configfs removes an entry's files with it; a plain directory needs them gone
        if self.parent == root:
            _rmdir_with_files(self)
        original(self)

    with pytest.MonkeyPatch.context() as patch, TsmImitation(root):
        patch.setattr(Path, "rmdir", rmdir)
        yield ConfigfsTsmProvider(root, timeout_s=5)


@pytest.fixture(scope="module")
def executor(exchange: RunningExchange, captured: Lines, quotes: ConfigfsTsmProvider) -> Iterator[Executor]:
    """The executor in a thread (tests/execution/executor_thread.py), pinned to Django's controller key, and a job
    planted on it through Django's own client: started, its credentials sealed and delivered, running."""
    key = trading_key(exchange)
    state: dict[str, Any] = {}
    with (
        running_executor(exchange.base_url, holder=state, provider=quotes, streams=False) as url,
        ExecutorClient(url) as client,
        requests.Session() as session,
    ):
        health = client.health()
        ex = Executor(
            url=url,
            audience=health["signing_key"],
            secret=key.secret,
            session=session,
            client=client,
            manager=manager_of(state),
        )
        started = client.start(job_spec(PLANTED))
        client.deliver_credentials(
            PLANTED,
            sealing_key=health["sealing_key"],
            job_spec_digest=started["job_spec_digest"],
            credentials={"api_key": key.key, "secret": key.secret},
        )
        _wait_running(client)
        yield ex
        client.stop(PLANTED)


def _wait_running(client: ExecutorClient, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        state = client.status(PLANTED)["state"]
        if state == "running":
            return
        assert time.monotonic() < deadline, f"the planted job did not run (state {state})"
        time.sleep(0.2)


@functools.cache
def _cases(label: str) -> st.SearchStrategy[Case]:
    operation = OPERATIONS[label]
    strategies = [
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    ]
    if "{job_id}" in operation.path:
        strategies.append(operation.as_strategy(path_parameters={"job_id": PLANTED}))
    if label == "POST /v1/jobs/start":
        # The schema says little of a job spec (its required keys): valid specs one to three edits away reach
        # JobSpec.parse's every check, and the start behind it.
        strategies.append(mutated(job_spec("job-fuzz-start")).flatmap(lambda spec: operation.as_strategy(body=spec)))
    return st.one_of(strategies)


def send(case: Case, ex: Executor, *, sign: bool) -> requests.Response:
    """The case as requests prepares it, signed over the exact bytes and path that go out."""
    kwargs = case.as_transport_kwargs(base_url=ex.url)
    kwargs.pop("verify", None)
    kwargs.pop("cert", None)
    kwargs.pop("timeout", None)
    kwargs.pop("allow_redirects", None)
    prepared = ex.session.prepare_request(requests.Request(**kwargs))
    raw = prepared.body or b""
    body = raw if isinstance(raw, bytes) else str(raw).encode()
    prepared.body = body
    prepared.headers["Content-Length"] = str(len(body))
    if sign:
        prepared.headers.update(ex.signed(prepared.method or "GET", prepared.path_url, body))
    return ex.session.send(prepared, timeout=10)


@pytest.mark.parametrize("label", sorted(OPERATIONS))
@repeatable(max_examples=EXAMPLES)
@given(data=st.data())
def test_the_executor_api(label: str, data: st.DataObject, executor: Executor, captured: Lines) -> None:
    case = data.draw(_cases(label), label="case")
    sign = data.draw(st.integers(0, 3), label="signed") > 0
    seen = len(captured.snapshot())
    response = send(case, executor, sign=sign)
    check(case, response, executor, captured, signed=sign, seen=seen)


def check(
    case: Case, response: requests.Response, executor: Executor, captured: Lines, *, signed: bool, seen: int
) -> None:
    headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    assert executor.secret not in response.text, f"the canary in the body of {case.method} {case.path}"
    assert executor.secret not in headers, f"the canary in the headers of {case.method} {case.path}"
    if case.path.startswith("/v1/jobs") and not signed:
        assert response.status_code == 401, (case.method, case.formatted_path, response.status_code)
    checks = CHECKS
    if response.status_code >= 500:
        # Only a typed refusal the fuzz provokes itself: 503 `no_capacity` once it has started max_jobs jobs.
        assert response.status_code == 503, (case.method, case.formatted_path, response.status_code, response.text)
        assert response.json()["error"]["code"] in UNAVAILABLE, response.text
        checks = [c for c in CHECKS if c is not not_a_server_error]
    case.validate_response(response, checks=checks)
    for line in captured.snapshot()[seen:]:
        assert executor.secret not in line, f"the canary in a log line after {case.method} {case.path}"


def test_the_planted_job_outlived_the_fuzz(executor: Executor, captured: Lines) -> None:
    """Runs after the fuzz (same module): the planted job is still known, in a state of the schema (the fuzz signs
    as the controller, so it may have revoked or stopped it), and no line ever held the canary (the job's own logs
    included)."""
    status = executor.client.status(PLANTED)
    states = {"pending_credentials", "starting", "running", "halted", "stopping", "stopped", "revoked", "failed"}
    assert status["state"] in states, status
    lines = captured.snapshot()
    assert lines
    assert not [line for line in lines if executor.secret in line]
    assert json.dumps(status).find(executor.secret) == -1


def test_the_executor_api_stateful(executor: Executor, captured: Lines) -> None:
    """Sequences along the links schemathesis infers (the document declares none): a job started, then its status,
    reports, credentials, resume and stop by the id the start returned; each step signed and checked as above."""
    machine = SCHEMA.as_state_machine()
    steps: list[tuple[str, int, bool]] = []

    class Workflow(machine):  # type: ignore[valid-type, misc]
        def setup(self) -> None:
            super().setup()
            # Each sequence meets the same executor (Hypothesis replays sequences): the jobs earlier ones started
            # are forgotten. They never got credentials (random bytes open no seal), so nothing of theirs runs.
            for job_id in [j for j in executor.manager.jobs if j != PLANTED]:
                runner = executor.manager.jobs.pop(job_id)
                assert runner._task is None, job_id

        def step(self, input: StepInput) -> StepOutput:
            case = input.case
            if case.operation.label == "POST /v1/jobs/start":
                # Half the starts (chosen by the drawn body, so a replay makes the same choice) a spec that is
                # accepted, its job id from that body: the links then have a job to follow.
                drawn = hashlib.sha256(json.dumps(case.body, sort_keys=True, default=repr).encode()).hexdigest()
                if int(drawn, 16) % 2 == 0:
                    case.body = job_spec(f"job-fuzz-{drawn[:8]}")
            seen = len(captured.snapshot())
            response = send(case, executor, sign=True)
            check(case, response, executor, captured, signed=True, seen=seen)
            linked = input.transition is not None and input.is_applied
            steps.append((case.operation.label, response.status_code, linked))
            return StepOutput(Response.from_requests(response, verify=False), case)

    Workflow.run(settings=repeatable(max_examples=STATEFUL_SCENARIOS, stateful_step_count=6))
    assert len(steps) >= STATEFUL_SCENARIOS
    assert any(linked for *_, linked in steps), f"no step followed a link: {sorted(set(steps))}"
