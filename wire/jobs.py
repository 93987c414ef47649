"""Job specs: schema `mrmarket.jobspec/v1`, what Django asks an executor to run. Its digest (canonical JSON,
SHA-256) is carried by every report of the job (`job_spec_digest`), so a report proves which spec it ran.

The strategy's own parameters are checked by the executor's strategy registry, not here: the wire contract
fixes the envelope, each strategy its parameters.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from wire import schema as s
from wire.canonical import digest
from wire.errors import SchemaError
from wire.reports import SYMBOL_RE

JOBSPEC_SCHEMA = "mrmarket.jobspec/v1"

RISK = s.obj(
    {
        "max_open_orders": s.integer(minimum=1),
        "max_orders_per_second": s.integer(minimum=1),
        "max_exposure_quote": s.decimal(positive=True),
        "max_loss_quote": s.decimal(positive=True),
        "max_drawdown_quote": s.decimal(positive=True),
        "max_consecutive_rejects": s.integer(minimum=1),
        "stale_book_seconds": s.integer(minimum=1),
        "dead_man_seconds": s.integer(minimum=1),
    }
)
JOBSPEC = s.obj(
    {
        "schema": s.one_of(JOBSPEC_SCHEMA),
        "job_id": s.string(pattern=s.ID_RE),
        "exchange": s.string(pattern=re.compile(r"[a-z0-9_]{1,32}")),
        "symbol": s.string(pattern=SYMBOL_RE),
        "strategy": s.obj(
            {"name": s.string(pattern=re.compile(r"[a-z0-9_]{1,32}")), "params": s.mapping(s.string(), s.anything())}
        ),
        "risk": RISK,
        "report_interval_seconds": s.integer(minimum=10),
        "sample_seconds": s.integer(minimum=1),
    }
)


def validate_job_spec(spec: Any) -> None:
    JOBSPEC(spec, "spec")
    if spec["report_interval_seconds"] % spec["sample_seconds"]:
        raise SchemaError("must divide report_interval_seconds", path="spec.sample_seconds")


def job_spec_digest(spec: dict[str, Any]) -> str:
    validate_job_spec(spec)
    return digest(spec)


def client_order_prefix(job_id: str) -> str:
    """`mm` + 10 hex characters of SHA-256(job id): the prefix of the client order id of every order the job
    places (12 characters, the same on every run of the job). The executor names its orders so; the controller
    recognises a lost job's orders on the exchange by it."""
    return "mm" + hashlib.sha256(job_id.encode()).hexdigest()[:10]
