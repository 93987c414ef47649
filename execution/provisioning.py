"""Which executor runs a job, the one gate that establishes the keys credentials are sealed to, and whether an
executor still holds the trust its jobs were provisioned under.

`provisioning_identity` is the only way code here learns which key to seal credentials to and which key the
job's reports must be signed with: the attestation app's gate, in every profile. `pick_executor` chooses among the
configured executors and those EasyEnclave discovers; `executor_lost_trust` is the standing check every job sync
makes.
"""

from __future__ import annotations

from django.conf import settings

from attestation.easyenclave import EasyEnclaveError, discovered_executor_urls
from attestation.gate import attested_identity
from attestation.interface import ExecutorIdentity
from attestation.selection import NoExecutorAvailable, select_executor
from attestation.selectors import executor_trust_withdrawn
from execution.errors import ExecutorNotConfigured, RoutingRefused
from execution.executor_client import ExecutorClient
from execution.models import MMOrder


def provisioning_identity(client: ExecutorClient) -> ExecutorIdentity:
    """The gate: a fresh attestation of the executor behind `client`, before anything is sealed to it."""
    return attested_identity(client)


def executor_lost_trust(order: MMOrder) -> bool:
    """Whether the order's executor lost its standing (failed its last verification, or revoked): its job must
    wipe its credentials and stop. Checked on every sync, so that a revocation reaches the job even when its
    event (`attestation.signals.executors_lost_trust`) was lost. An executor that is merely unreachable keeps its
    jobs: not answering is not evidence against its build."""
    return bool(order.executor_url) and executor_trust_withdrawn(url=order.executor_url)


def pick_executor(*, exchange: str | None = None) -> str:
    """The executor for a new job: among the configured ones and those EasyEnclave discovers for the exchange
    (only once its control plane verified), by the registry's selection (capacity, then reputation, then
    round-robin; never a revoked or failed one). Each is still attested before anything is sent to it."""
    try:
        discovered = discovered_executor_urls(exchange=exchange)
    except EasyEnclaveError as exc:
        raise RoutingRefused(exc.message, extra={"cause": exc.code, **exc.extra}) from None
    candidates = list(dict.fromkeys([*settings.EXECUTOR_URLS, *discovered]))
    try:
        return select_executor(candidates)
    except NoExecutorAvailable as exc:
        raise ExecutorNotConfigured(str(exc)) from None


def client_for(order: MMOrder) -> ExecutorClient:
    return ExecutorClient(order.executor_url)
