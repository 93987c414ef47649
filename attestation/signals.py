"""Signals of the attestation app: how the apps above it learn of trust decisions without attestation knowing them.

`executors_lost_trust` is sent by `services.executors_revoke`, inside the transaction that marks the executors
(kwargs: `urls`, `state` — `revoked` or `failed` — and `reason`). A receiver reads what it needs in that
transaction, in a savepoint of its own (`transaction.atomic()`: its failure must not abort the revocation; the
sender logs it and goes on), and defers its effects to commit (`transaction.on_commit`), so nothing acts on a
revocation that rolled back.

The event is a prompt, not the only guard: whoever runs jobs on executors also checks their standing
(`selectors.executor_trust_withdrawn`) on its own schedule, so a lost event delays a revocation, never cancels it.
"""

from __future__ import annotations

from django.dispatch import Signal

executors_lost_trust = Signal()
