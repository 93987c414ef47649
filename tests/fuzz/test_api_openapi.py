"""Schemathesis against the Django API (docs/api/openapi-v1.yaml), in process on the test database, once per
operation for each caller: anonymous, and a knox token of each role (operator, creator, auditor, staff).

Checks on every response: no 5xx; the response conforms to the schema (status, content type, headers, body) where
the schema documents it, and every error is the API's one error shape `{code, message, extra, request_id}`; a
refused request (4xx) leaves every table of the project as it was, the ledger included (a digest of each table's
rows before and after); and a canary exchange secret, enrolled for the operator through the API like any key, never
appears in a response's body or headers, nor in any log line (rendered by the production formatter, at DEBUG).

Bounded: a fixed number of examples per operation and caller, derandomized (the same requests on every run), no
example database. Loopback only: the exchange is the devnet simulator on 127.0.0.1; no chain is configured, so the
operations that need one answer 503 (a typed refusal). The schema has no OpenAPI links; schemathesis' link
inference is tried in test_api_openapi_stateful below.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from django.apps import apps
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection, transaction
from django.urls import resolve
from hypothesis import given
from hypothesis import strategies as st
from knox.models import AuthToken
from rest_framework.test import APIClient
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.transport import Response
from schemathesis.generation.stateful.state_machine import StepInput, StepOutput
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from devnet.exchange.fixtures import RunningExchange, run_exchange
from devnet.exchange.keys import Permission
from mrmarket.api.permissions import PUBLIC
from mrmarket.roles import Role
from tests.factories import user_with
from tests.fuzz.logs import Lines, capturing
from tests.fuzz.schemas import operations, repeatable

pytestmark = [pytest.mark.fuzz, pytest.mark.slow, pytest.mark.django_db]

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = schemathesis.openapi.from_path(ROOT / "docs" / "api" / "openapi-v1.yaml")
SCHEMA.config.update(base_url="http://localhost")
SCHEMA.config.generation.update(deterministic=True, with_security_parameters=False)
EXAMPLES = 10  # per operation and caller
STATEFUL_SCENARIOS = 25  # sequences of up to 6 calls
CALLERS = ("anonymous", *(role.value for role in Role))

# Tables a refused request may write by design: failed logins are counted (django-axes) and sessions touched.
MAY_CHANGE_ON_REFUSAL_PREFIXES = ("axes_", "django_session")
ERROR_KEYS = {"code", "message", "extra", "request_id"}
# The 503s a request may meet here, each a typed refusal: the chain's node refuses connections (it is not running).
UNAVAILABLE = {"chain_unavailable"}
NO_NODE = "http://127.0.0.1:9"  # the discard port: nothing listens, the connection is refused at once


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningExchange]:
    with run_exchange() as running:
        yield running


@pytest.fixture
def captured() -> Iterator[Lines]:
    with capturing() as lines:
        yield lines


@pytest.fixture
def wsgi() -> Iterator[WSGIHandler]:
    """Django's WSGI application, serving inside the test's transaction: like Django's test client, requests do not
    close the connection when they end (that would end the transaction the test runs in)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@dataclass
class World:
    tokens: dict[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()


@pytest.fixture
def world(settings: Any, sim: RunningExchange, captured: Lines) -> World:
    """A user of each role with a token, and the operator's exchange key (its secret the canary) enrolled through
    the API, then an order on it: the objects the operations act on exist."""
    settings.EXCHANGE_API_URLS = {"binance": sim.base_url}
    settings.CHAIN_RPC_URL = NO_NODE
    settings.CUSTODY_ASSETS = {"USDT": {"token": "0x" + "ab" * 20, "decimals": 6}}
    world = World()
    users = {role.value: user_with(role) for role in Role}
    for name, user in users.items():
        world.tokens[name] = AuthToken.objects.create(user)[1]
    key = sim.sim.create_account(permissions=frozenset({Permission.TRADE}))
    operator = APIClient()
    operator.credentials(HTTP_AUTHORIZATION=f"Token {world.tokens[Role.OPERATOR.value]}")
    body = {"exchange": "binance", "label": "fuzz", "role": "trading", "api_key": key.key, "secret": key.secret}
    enrolled = operator.post("/api/v1/execution/exchange-accounts", body, format="json")
    assert enrolled.status_code == 201, enrolled.content
    order = {
        "exchange_account_id": enrolled.json()["id"],
        "symbol": "MMT/USDT",
        "funding_asset": "USDT",
        "funding_amount": str(500 * 10**6),
    }
    created = operator.post("/api/v1/execution/mm-orders", order, format="json")
    assert created.status_code == 201, created.content
    # The canary: the exchange secret (64 random hex characters, the exchange checks signatures with it), and
    # each caller's API token (a credential too; the token endpoint answers new ones, never these).
    world.secrets = (key.secret, *world.tokens.values())
    assert len(key.secret) == 64
    return world


def table_digests() -> dict[str, str]:
    """Each project table's rows, digested (ordered, so equal contents give equal digests)."""
    tables = sorted(
        m._meta.db_table
        for m in apps.get_models(include_auto_created=True)
        if m._meta.managed and not m._meta.db_table.startswith(MAY_CHANGE_ON_REFUSAL_PREFIXES)
    )
    select = ", ".join(
        f"(SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {connection.ops.quote_name(t)} t)"
        for t in tables
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {select}")
        row = cursor.fetchone()
    return dict(zip(tables, row, strict=True))


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _headers(caller: str, world: World) -> dict[str, str]:
    return {} if caller == "anonymous" else {"Authorization": f"Token {world.tokens[caller]}"}


def check_one(case: Any, caller: str, world: World, wsgi: WSGIHandler, captured: Lines) -> Response:
    before = table_digests()
    response = case.call(app=wsgi, headers=_headers(caller, world))
    text = response.text if isinstance(response.text, str) else ""
    headers = "\n".join(f"{k}: {', '.join(v)}" for k, v in response.headers.items())
    for secret in world.secrets:
        assert secret not in text, f"a secret in the body of {case.method} {case.path}"
        assert secret not in headers, f"a secret in the headers of {case.method} {case.path}"
    if 400 <= response.status_code < 600:
        after = table_digests()
        changed = sorted(t for t in before if before[t] != after[t])
        assert not changed, f"{case.method} {case.formatted_path} refused {response.status_code} but wrote {changed}"
        if "json" in response.headers.get("content-type", [""])[0]:
            body = response.json()
            assert isinstance(body, dict), body
            assert set(body) >= ERROR_KEYS, body
            assert isinstance(body["code"], str), body
            assert body["code"], body
    checks = CHECKS
    if response.status_code >= 500:
        # Only a typed refusal because a dependency does not answer (no chain here): 503 with the error shape.
        assert response.status_code == 503, f"{case.method} {case.formatted_path}: {response.status_code}"
        body = response.json()
        assert body.get("code") in UNAVAILABLE, body
        checks = [c for c in CHECKS if c is not not_a_server_error]
    case.validate_response(response, checks=checks)
    new, captured.scanned = captured.lines[captured.scanned :], len(captured.lines)
    for line in new:
        for secret in world.secrets:
            assert secret not in line, f"a secret in a log line after {case.method} {case.path}: {line[:300]}"
    return response


def _allowed_callers(operation: APIOperation) -> tuple[str, ...]:
    """Who may call the operation (the view's `allowed_roles`), and anonymous (refused by each protected one). A
    role a protected operation refuses is refused before anything runs; tests/core/test_api_access.py shows that
    for every role and operation, so the fuzz spends its examples where the request is let through."""
    match = resolve(re.sub(r"\{[^}]+\}", "1", operation.path))
    view = getattr(match.func, "view_class", None) or getattr(match.func, "cls", None)
    allowed = getattr(view, "allowed_roles", None)
    assert allowed is not None, operation.label
    if allowed == PUBLIC:
        return CALLERS
    return ("anonymous", *sorted(str(role) for role in allowed))


OPERATIONS = operations(SCHEMA)
MATRIX = [
    pytest.param(label, caller, id=f"{label}-{caller}")
    for label, operation in OPERATIONS.items()
    for caller in _allowed_callers(operation)
]


@functools.cache
def _cases(label: str) -> st.SearchStrategy[Case]:
    operation = OPERATIONS[label]
    return st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )


def test_the_matrix_covers_every_operation_and_role() -> None:
    assert len(OPERATIONS) >= 30
    pairs = {(label, caller) for label, caller in (p.values for p in MATRIX)}
    assert {label for label, _ in pairs} == set(OPERATIONS)
    assert {caller for _, caller in pairs} == set(CALLERS)
    assert all((label, "anonymous") in pairs for label in OPERATIONS)


def test_the_table_digest_sees_a_write(world: World) -> None:
    """The refusal check can fail: one row written changes its table's digest, and only that table's."""
    before = table_digests()
    user_with(Role.AUDITOR)
    after = table_digests()
    assert sorted(t for t in before if before[t] != after[t]) == ["auth_user", "auth_user_groups"]


@pytest.mark.parametrize(("label", "caller"), MATRIX)
@repeatable(max_examples=EXAMPLES)
@given(data=st.data())
def test_the_api(
    label: str, caller: str, data: st.DataObject, world: World, wsgi: WSGIHandler, captured: Lines
) -> None:
    case = data.draw(_cases(label), label="case")
    check_one(case, caller, world, wsgi, captured)


def test_the_api_stateful(world: World, wsgi: WSGIHandler, captured: Lines) -> None:
    """Sequences of calls along the links schemathesis infers from the schema (the document declares none: an
    id a response returns is what a later path takes, e.g. an exchange account enrolled, then an order on it
    created, read, funded, stopped), each step under the same checks as above. As the operator: the one caller
    whose operations create what later ones take (a creator's prepare needs the chain, absent here)."""
    caller = Role.OPERATOR.value
    machine = SCHEMA.as_state_machine()
    steps: list[tuple[str, int, bool]] = []  # operation, status, whether it took a value from an earlier response

    class Workflow(machine):  # type: ignore[valid-type, misc]
        # Each sequence starts from the same database (Hypothesis replays sequences): a savepoint, rolled back.
        def setup(self) -> None:
            super().setup()
            self.savepoint = transaction.savepoint()

        def teardown(self) -> None:
            transaction.savepoint_rollback(self.savepoint)
            super().teardown()

        def step(self, input: StepInput) -> StepOutput:
            response = check_one(input.case, caller, world, wsgi, captured)
            linked = input.transition is not None and input.is_applied
            steps.append((input.case.operation.label, response.status_code, linked))
            return StepOutput(response, input.case)

    Workflow.run(settings=repeatable(max_examples=STATEFUL_SCENARIOS, stateful_step_count=6))
    assert len(steps) >= STATEFUL_SCENARIOS
    assert sum(linked for *_, linked in steps) >= 5, f"few steps followed a link: {sorted(set(steps))}"
    assert any(linked and status < 300 for _, status, linked in steps), sorted(set(steps))
