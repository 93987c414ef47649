"""Execution's receivers of other apps' signals, connected in `ExecutionConfig.ready`.

`attestation.signals.executors_lost_trust`: every job on an executor that lost its trust is told, once the
revocation commits, to wipe its credentials and stop (`tasks.revoke_job`). Should this be lost (a worker died
before the task ran, the broker dropped it), the next sync of each job finds the executor's standing gone and
revokes all the same (`provisioning.executor_lost_trust`).
"""

from __future__ import annotations

import functools
from typing import Any

from django.db import transaction

from execution.models import MMOrder
from execution.tasks import revoke_job


def jobs_revoke_on_lost_trust(*, urls: list[str], **_: Any) -> None:
    # In a savepoint of the revoking transaction: a failure here leaves the revocation itself standing.
    with transaction.atomic():
        orders = MMOrder.objects.filter(executor_url__in=urls).exclude(job_id="").values_list("pk", flat=True)
        for order_id in orders:
            transaction.on_commit(functools.partial(revoke_job.delay, order_id))
