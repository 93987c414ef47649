"""Thin Celery tasks of the attestation app: ids in, one service call, retries with backoff."""

from celery import shared_task
from django.conf import settings

from attestation import collateral, gate, services
from attestation.easyenclave import EasyEnclaveClient, EasyEnclaveError
from attestation.errors import EvidenceRefused, EvidenceUnavailable
from attestation.evidence import EvidenceClient
from attestation.models import ExecutorRecord
from attestation.selectors import platform_quotes
from mrmarket.controller import controller_key
from mrmarket.observability.logging import get_logger

log = get_logger(__name__)


@shared_task(name="attestation.reattest_executors", ignore_result=True)
def reattest_executors() -> None:
    """Beat: verify every known executor again (fresh nonce, current collateral, current allowlist) and refresh
    its capacity. One that fails verification goes through the revocation path allowlist removal uses (its jobs
    wipe their credentials and stop, its reports are refused) and is not chosen until it passes again; one that
    does not answer is only left out of selection (`services.executor_checked`)."""
    for executor_id in ExecutorRecord.objects.exclude(state=ExecutorRecord.State.REVOKED).values_list("pk", flat=True):
        reattest_executor.delay(executor_id)


@shared_task(name="attestation.reattest_executor", ignore_result=True)
def reattest_executor(executor_id: int) -> None:
    """One executor's scheduled check, through the attestation app's own client of its public endpoints. It
    declining to attest fails the check (the gate revokes a trusted one); silence only leaves it out of
    selection."""
    # Without a controller key Django can control no executor, and the fault is ours: the task fails, no
    # executor is marked failed for it.
    controller_key()
    executor = ExecutorRecord.objects.get(pk=executor_id)
    with EvidenceClient(executor.url) as client:
        try:
            gate.attested_identity(client)
            capacity = client.capacity()
        except (gate.AttestationFailed, EvidenceUnavailable, EvidenceRefused) as exc:
            log.warning("reattestation_failed", executor=executor.url, code=exc.code)
            services.executor_checked(
                executor_id=executor_id, ok=False, unreachable=isinstance(exc, EvidenceUnavailable)
            )
            return
    services.executor_checked(executor_id=executor_id, ok=True, capacity=int(capacity.get("available", 0)))


@shared_task(name="attestation.refresh_collateral", ignore_result=True)
def refresh_collateral() -> None:
    """Beat: fetch the DCAP collateral again for every platform a live executor attested from (PCCS only)."""
    if settings.ATTESTATION_COLLATERAL_FILE or not settings.ATTESTATION_PCCS_URL:
        return
    for quote in platform_quotes():
        outcome = collateral.refresh(quote)
        if outcome.ok:
            log.info("collateral_refreshed", platform=outcome.platform[-16:], seconds_left=outcome.seconds_left)
        else:
            log.warning(
                "collateral_refresh_failed",
                platform=outcome.platform[-16:],
                cached_seconds_left=outcome.seconds_left,
                error=outcome.error,
            )


@shared_task(name="attestation.verify_control_plane", ignore_result=True)
def verify_control_plane() -> None:
    """Beat: verify the EasyEnclave control plane afresh (our nonce, its quote, its allowlisted measurement) before
    the cached verdict lapses, so discovery and the status page always read a current one. A failure leaves no
    verdict (discovery is refused until one passes) and is logged by the client (`control_plane_refused`)."""
    if not settings.EASYENCLAVE_URL:
        return
    try:
        EasyEnclaveClient().verify_control_plane()
    except EasyEnclaveError as exc:
        log.warning("control_plane_check_failed", code=exc.code)
