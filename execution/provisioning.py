"""Which executor runs a job, and the one gate that establishes the keys credentials are sealed to.

`provisioning_identity` is the only way code here learns which key to seal credentials to and which key the
job's reports must be signed with; `pick_executor` chooses among the configured executors and those EasyEnclave
discovers.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.utils.module_loading import import_string

from execution.executor_client import ExecutorClient, controller_key
from execution.models import MMOrder
from mrmarket.errors import ApplicationError


class ProvisioningRefused(ApplicationError):
    code = "provisioning_refused"
    status = 409


@dataclass(frozen=True)
class ExecutorIdentity:
    """The keys credentials are sealed to and reports must be signed with, and how they were established."""

    url: str
    signing_key: str
    sealing_key: str
    attested: bool
    evidence_id: int | None = None


def unattested_identity(client: ExecutorClient) -> ExecutorIdentity:
    """The executor's keys as it reports them, without attestation: refused unless the profile allows it."""
    if not settings.EXECUTOR_ALLOW_UNATTESTED:
        raise ProvisioningRefused("executors must be attested before they receive credentials")
    health = client.health()
    if health.get("controller_key") != controller_key().public_hex:
        raise ProvisioningRefused("the executor obeys another controller key than this Django's")
    return ExecutorIdentity(client.base_url, health["signing_key"], health["sealing_key"], attested=False)


def provisioning_identity(client: ExecutorClient) -> ExecutorIdentity:
    """The gate: the only way code here learns which key to seal credentials to."""
    gate = import_string(settings.EXECUTOR_ATTESTATION_GATE)
    identity: ExecutorIdentity = gate(client)
    return identity


def pick_executor(*, exchange: str | None = None) -> str:
    """The executor for a new job: among the configured ones and those EasyEnclave discovers for the exchange
    (only once its control plane verified), by the registry's selection (capacity, then reputation, then
    round-robin; never a revoked or failed one). Each is still attested before anything is sent to it."""
    from attestation.easyenclave import EasyEnclaveError, discovered_executor_urls
    from attestation.selection import NoExecutorAvailable, select_executor
    from execution.errors import ExecutorNotConfigured, RoutingRefused

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
